package kafka

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFixedTopicConfigs: a Kafka topic config runnel has no setting for
// is taken by CreateTopics, AlterConfigs and IncrementalAlterConfigs when
// its value asks for what runnel does anyway (as tools send Kafka's
// defaults: KafkaJS users min.insync.replicas=1, UIs and Terraform
// cleanup.policy=delete), changes nothing, and is reported read-only with
// runnel's value; a value runnel cannot honour is refused with
// INVALID_CONFIG and a message naming the config and why, by all three.
func TestFixedTopicConfigs(t *testing.T) {
	ts := startServer(t, nil)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	ts.createTopic("altered", 1)
	ts.createTopic("plain", 1)
	defaults, err := ts.log.TopicConfig("plain")
	if err != nil {
		t.Fatal(err)
	}
	maxBytes := strconv.Itoa(ts.srv.opts.MaxMessageBytes)

	accepted := []struct{ name, value string }{
		{"cleanup.policy", "delete"},
		{"compression.type", "producer"},
		{"compression.type", "uncompressed"},
		{"max.message.bytes", maxBytes},
		{"max.message.bytes", "1048588"}, // Kafka's default, which tools send
		{"message.timestamp.type", "CreateTime"},
		{"min.insync.replicas", "1"},
		{"unclean.leader.election.enable", "false"},
	}
	refused := []struct{ name, value, why string }{
		{"cleanup.policy", "compact", "compaction"},
		{"cleanup.policy", "delete,compact", "compaction"},
		{"compression.type", "gzip", "uncompressed"},
		{"compression.type", "zstd", "uncompressed"},
		{"max.message.bytes", "2000000", maxBytes},
		{"message.timestamp.type", "LogAppendTime", "CreateTime"},
		{"min.insync.replicas", "2", "one replica"},
		{"min.insync.replicas", "0", "one replica"},
		{"unclean.leader.election.enable", "true", "one replica"},
		{"segment.ms", "60000", "not supported"},
	}
	reported := map[string]string{
		"cleanup.policy": "delete", "compression.type": "uncompressed", "max.message.bytes": maxBytes,
		"message.timestamp.type": "CreateTime", "min.insync.replicas": "1", "unclean.leader.election.enable": "false",
	}

	create := func(topic, name, value string) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = name, kmsg.StringPtr(value)
		rt.Configs = append(rt.Configs, c)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, ts.client())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	described := func(topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		req.Resources = append(req.Resources, r)
		resp, err := req.RequestWith(ctx, ts.client())
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs of %s: %v %+v", topic, err, resp)
		}
		got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			got[c.Name] = c
		}
		return got
	}
	unchanged := func(what, topic string) {
		t.Helper()
		if cfg, err := ts.log.TopicConfig(topic); err != nil || cfg != defaults {
			t.Errorf("%s: the topic's runnel config is %+v (%v), want the defaults", what, cfg, err)
		}
		got := described(topic)
		for name, want := range reported {
			c := got[name]
			if c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDefaultConfig || !c.ReadOnly {
				t.Errorf("%s: %s described as %s (source %v, read-only %v), want %q, the default, read-only", what, name, orNull(c.Value), c.Source, c.ReadOnly, want)
			}
		}
	}
	// alter returns the server's message and the error.
	alter := func(incremental bool, name, value string) (string, error) {
		t.Helper()
		f := adm.AlterTopicConfigsState
		if incremental {
			f = adm.AlterTopicConfigs
		}
		resps, err := f(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}}, "altered")
		if err != nil {
			t.Fatal(err)
		}
		return resps[0].ErrMessage, resps[0].Err
	}

	for i, c := range accepted {
		what := c.name + "=" + c.value
		topic := "accepted-" + strconv.Itoa(i)
		if rt := create(topic, c.name, c.value); rt.ErrorCode != 0 {
			t.Errorf("CreateTopics with %s: %v %s", what, kerr.ErrorForCode(rt.ErrorCode), orNull(rt.ErrorMessage))
			continue
		}
		unchanged("created with "+what, topic)
		for _, incremental := range []bool{false, true} {
			if msg, err := alter(incremental, c.name, c.value); err != nil {
				t.Errorf("altering to %s (incremental %v): %v %s", what, incremental, err, msg)
			}
			unchanged("altered to "+what, "altered")
		}
	}
	for i, c := range refused {
		what := c.name + "=" + c.value
		topic := "refused-" + strconv.Itoa(i)
		rt := create(topic, c.name, c.value)
		if rt.ErrorCode != kerr.InvalidConfig.Code || rt.ErrorMessage == nil ||
			!strings.Contains(*rt.ErrorMessage, c.name) || !strings.Contains(*rt.ErrorMessage, c.why) {
			t.Errorf("CreateTopics with %s: %v %s, want INVALID_CONFIG naming %s and %q", what, kerr.ErrorForCode(rt.ErrorCode), orNull(rt.ErrorMessage), c.name, c.why)
		}
		if _, err := ts.log.TopicConfig(topic); !errors.Is(err, runnel.ErrTopicNotFound) {
			t.Errorf("CreateTopics with %s made the topic (%v)", what, err)
		}
		for _, incremental := range []bool{false, true} {
			msg, err := alter(incremental, c.name, c.value)
			if !isCode(err, kerr.InvalidConfig) || !strings.Contains(msg, c.name) || !strings.Contains(msg, c.why) {
				t.Errorf("altering to %s (incremental %v): %v %s, want INVALID_CONFIG naming %s and %q", what, incremental, err, msg, c.name, c.why)
			}
		}
		unchanged("refused "+what, "altered")
	}
}

// orNull quotes a nullable string, or says null.
func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}
