package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic configs in Kafka's names. runnel has three that Kafka clients can
// set — retention.ms, retention.bytes and segment.bytes — and reports a
// few fixed ones so that tools showing a topic see what it does.

// topicConfig is one config as DescribeConfigs and CreateTopics report it.
type topicConfig struct {
	name     string
	value    string
	readOnly bool
	isSet    bool // differs from the default
	typ      kmsg.ConfigType
}

// topicConfigs lists a topic's configs.
func (s *Server) topicConfigs(cfg runnel.TopicConfig) []topicConfig {
	retMs, retBytes := int64(-1), int64(-1)
	if cfg.RetentionAge > 0 {
		retMs = cfg.RetentionAge.Milliseconds()
	}
	if cfg.RetentionBytes > 0 {
		retBytes = cfg.RetentionBytes
	}
	return []topicConfig{
		{name: "cleanup.policy", value: "delete", readOnly: true, typ: kmsg.ConfigTypeList},
		{name: "max.message.bytes", value: strconv.Itoa(s.opts.MaxMessageBytes), readOnly: true, typ: kmsg.ConfigTypeInt},
		{name: "message.timestamp.type", value: "CreateTime", readOnly: true, typ: kmsg.ConfigTypeString},
		{name: "retention.bytes", value: strconv.FormatInt(retBytes, 10), isSet: retBytes > 0, typ: kmsg.ConfigTypeLong},
		{name: "retention.ms", value: strconv.FormatInt(retMs, 10), isSet: retMs > 0, typ: kmsg.ConfigTypeLong},
		{name: "segment.bytes", value: strconv.FormatInt(cfg.SegmentBytes, 10), isSet: cfg.SegmentBytes != runnel.DefaultSegmentBytes, typ: kmsg.ConfigTypeInt},
	}
}

// applyTopicConfig sets one config given by name in cfg; a nil value
// means the default. Configs runnel does not have are refused, except
// the ones that ask for what runnel does anyway.
func applyTopicConfig(cfg *runnel.TopicConfig, name string, value *string) error {
	v := ""
	if value != nil {
		v = *value
	}
	num := func() (int64, error) {
		if value == nil {
			return -1, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not a number", name, v)
		}
		return n, nil
	}
	switch name {
	case "retention.ms":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.RetentionAge = 0
		if n > 0 {
			cfg.RetentionAge = time.Duration(n) * time.Millisecond
		}
	case "retention.bytes":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.RetentionBytes = max(n, 0)
	case "segment.bytes":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.SegmentBytes = max(n, 0)
	case "cleanup.policy":
		if value != nil && v != "delete" {
			return fmt.Errorf("cleanup.policy=%q: runnel only deletes old segments (no compaction)", v)
		}
	case "message.timestamp.type":
		if value != nil && v != "CreateTime" {
			return fmt.Errorf("message.timestamp.type=%q: records keep the producer's timestamps (CreateTime)", v)
		}
	default:
		return fmt.Errorf("config %q is not supported (runnel has retention.ms, retention.bytes and segment.bytes)", name)
	}
	return nil
}
