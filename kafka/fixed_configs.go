package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka topic configs runnel has no setting for, because it does one
// thing only: a one-broker runnel keeps one replica of each partition,
// stores records uncompressed, deletes old segments and never compacts.
// Tools send them with Kafka's defaults (KafkaJS users send
// min.insync.replicas=1 and compression.type=producer, UIs and Terraform
// cleanup.policy=delete), so CreateTopics, AlterConfigs and
// IncrementalAlterConfigs take a value that asks for what runnel does and
// refuse any other with INVALID_CONFIG, saying why. Nothing is stored:
// DescribeConfigs reports each read-only at runnel's value, as the
// default, whatever was sent.

// fixedConfig is one such config.
type fixedConfig struct {
	name  string
	value string   // what runnel does, as DescribeConfigs reports it
	also  []string // other values asking for nothing runnel does not do
	typ   kmsg.ConfigType
	why   string // why no other value can be honoured
}

// fixedTopicConfigs lists them, by name.
func (s *Server) fixedTopicConfigs() []fixedConfig {
	return []fixedConfig{
		{name: "cleanup.policy", value: "delete", typ: kmsg.ConfigTypeList,
			why: "runnel only deletes old segments (no compaction)"},
		// producer, Kafka's default, keeps the producer's codec; the
		// records are the same uncompressed, only the fetched bytes differ.
		{name: "compression.type", value: "uncompressed", also: []string{"producer"}, typ: kmsg.ConfigTypeString,
			why: "runnel stores records uncompressed (a produced batch is decompressed) and fetches return them so"},
		{name: "max.message.bytes", value: strconv.Itoa(s.opts.MaxMessageBytes), typ: kmsg.ConfigTypeInt,
			why: "every topic takes the batches the server takes (kafka.Options.MaxMessageBytes)"},
		{name: "message.timestamp.type", value: "CreateTime", typ: kmsg.ConfigTypeString,
			why: "records keep the producer's timestamps"},
		{name: "min.insync.replicas", value: "1", typ: kmsg.ConfigTypeInt,
			why: "runnel is one broker with one replica of each partition"},
		{name: "unclean.leader.election.enable", value: "false", typ: kmsg.ConfigTypeBoolean,
			why: "runnel is one broker with one replica of each partition, which no other can replace"},
	}
}

// check refuses a value runnel cannot honour; nil (the default) is what
// runnel does.
func (fc fixedConfig) check(value *string) error {
	if value == nil || *value == fc.value || slices.Contains(fc.also, *value) {
		return nil
	}
	if fc.typ == kmsg.ConfigTypeList && len(listItems(*value)) == 0 {
		// Kafka keeps every segment of a topic with no cleanup policy,
		// whatever its retention configs say.
		return fmt.Errorf("%s=%q: an empty %s is not one runnel can hold (%s); to keep every record, set retention.ms and retention.bytes to -1", fc.name, *value, fc.name, fc.why)
	}
	return fmt.Errorf("%s=%q: %s, so only %s", fc.name, *value, fc.why, strings.Join(append([]string{fc.value}, fc.also...), " or "))
}

// fixedTopicConfigNames names them, for an error's message.
func (s *Server) fixedTopicConfigNames() []string {
	var names []string
	for _, fc := range s.fixedTopicConfigs() {
		names = append(names, fc.name)
	}
	return names
}
