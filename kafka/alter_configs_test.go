package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAlterConfigs: IncrementalAlterConfigs sets and resets a topic's
// configs in runnel, where another Log on the directory reads them;
// AlterConfigs replaces the whole set; what runnel cannot do is refused
// and changes nothing; ValidateOnly changes nothing.
func TestAlterConfigs(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("cf", 2)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	other, err := runnel.Open(ts.log.Dir(), nil) // another process's view
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	config := func() runnel.TopicConfig {
		t.Helper()
		info, err := other.DescribeTopic("cf")
		if err != nil {
			t.Fatal(err)
		}
		return info.Config
	}
	alter := func(validate bool, cs ...kadm.AlterConfig) error {
		t.Helper()
		f := adm.AlterTopicConfigs
		if validate {
			f = adm.ValidateAlterTopicConfigs
		}
		resps, err := f(ctx, cs, "cf")
		if err != nil {
			t.Fatal(err)
		}
		return resps[0].Err
	}
	set := func(name, value string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: &value}
	}

	if err := alter(false, set("retention.ms", "60000"), set("segment.bytes", "1048576")); err != nil {
		t.Fatal(err)
	}
	if c := config(); c.RetentionAge != time.Minute || c.SegmentBytes != 1<<20 || c.Partitions != 2 {
		t.Fatalf("after SET: %+v", c)
	}
	if err := alter(false, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); err != nil {
		t.Fatal(err)
	}
	if c := config(); c.RetentionAge != 0 || c.SegmentBytes != 1<<20 {
		t.Fatalf("after DELETE of retention.ms: %+v", c)
	}

	// Refused, changing nothing.
	before := config()
	for _, c := range []struct {
		what string
		cs   []kadm.AlterConfig
		want *kerr.Error
	}{
		{"a segment below runnel's least", []kadm.AlterConfig{set("retention.ms", "1000"), set("segment.bytes", "100")}, kerr.InvalidConfig},
		{"a config runnel lacks", []kadm.AlterConfig{set("retention.ms", "1000"), set("segment.ms", "60000")}, kerr.InvalidConfig},
		{"compaction", []kadm.AlterConfig{set("cleanup.policy", "compact")}, kerr.InvalidConfig},
		{"a number that is not", []kadm.AlterConfig{set("retention.bytes", "lots")}, kerr.InvalidConfig},
		{"one config twice", []kadm.AlterConfig{set("retention.ms", "1000"), set("retention.ms", "2000")}, kerr.InvalidRequest},
	} {
		if err := alter(false, c.cs...); !isCode(err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	if err := alter(true, set("retention.ms", "1000")); err != nil {
		t.Errorf("ValidateOnly of a good change: %v", err)
	}
	if err := alter(true, set("segment.bytes", "100")); !isCode(err, kerr.InvalidConfig) {
		t.Errorf("ValidateOnly of a segment below runnel's least: %v", err)
	}
	if c := config(); c != before {
		t.Fatalf("refused and validated changes altered the topic: %+v, was %+v", c, before)
	}

	// AlterConfigs replaces the set: what it does not name is reset.
	resps, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kmsg.StringPtr("1048576")}}, "cf")
	if err != nil || resps[0].Err != nil {
		t.Fatalf("AlterConfigs: %v %v", err, resps)
	}
	if c := config(); c.RetentionBytes != 1<<20 || c.SegmentBytes != runnel.DefaultSegmentBytes || c.RetentionAge != 0 {
		t.Fatalf("after AlterConfigs: %+v", c)
	}

	// Other resources.
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "1000")}, "nosuch")
	if err != nil || !isCode(resps[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v %v", err, resps)
	}
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("message.max.bytes", "1")}, 0)
	if err != nil || !isCode(resps[0].Err, kerr.InvalidRequest) {
		t.Errorf("broker configs: %v %v", err, resps)
	}
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "cf"
	twice := kmsg.NewPtrIncrementalAlterConfigsRequest()
	twice.Resources = append(twice.Resources, rr, rr)
	for _, r := range ts.raw().request(twice).(*kmsg.IncrementalAlterConfigsResponse).Resources {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("a topic named twice in one request: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}

	// CreateTopics' ValidateOnly refuses what creating would.
	cr, err := adm.ValidateCreateTopics(ctx, 1, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("100")}, "small")
	if err != nil || !isCode(cr["small"].Err, kerr.InvalidConfig) {
		t.Errorf("ValidateOnly CreateTopics of a segment below runnel's least: %v %v", err, cr["small"].Err)
	}
}

// TestAlterConfigsListOps: IncrementalAlterConfigs' APPEND and SUBTRACT
// act on a list config as in Kafka, on the value runnel has:
// cleanup.policy is delete, so APPEND delete and SUBTRACT compact leave it
// so and succeed (what a tool making sure of a topic's policy sends);
// APPEND compact would ask for compaction and SUBTRACT delete for an
// empty policy, which runnel cannot honour (INVALID_CONFIG, saying why).
// On a config that is not a list both are INVALID_REQUEST, as in Kafka.
func TestAlterConfigsListOps(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("lo", 1)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	before, err := ts.log.TopicConfig("lo")
	if err != nil {
		t.Fatal(err)
	}
	op := func(o kadm.IncrementalOp, name, value string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: o, Name: name, Value: &value}
	}
	for _, c := range []struct {
		what     string
		change   kadm.AlterConfig
		want     *kerr.Error // nil: taken
		msgWants string
	}{
		{"APPEND delete", op(kadm.AppendConfig, "cleanup.policy", "delete"), nil, ""},
		{"SUBTRACT compact", op(kadm.SubtractConfig, "cleanup.policy", "compact"), nil, ""},
		{"APPEND compact", op(kadm.AppendConfig, "cleanup.policy", "compact"), kerr.InvalidConfig, "compaction"},
		{"APPEND delete,compact", op(kadm.AppendConfig, "cleanup.policy", "delete,compact"), kerr.InvalidConfig, "compaction"},
		{"SUBTRACT delete", op(kadm.SubtractConfig, "cleanup.policy", "delete"), kerr.InvalidConfig, "retention.ms"},
		{"APPEND to a number", op(kadm.AppendConfig, "retention.ms", "1000"), kerr.InvalidRequest, "not a list"},
		{"SUBTRACT from a fixed string", op(kadm.SubtractConfig, "compression.type", "gzip"), kerr.InvalidRequest, "not a list"},
		{"APPEND to a config runnel lacks", op(kadm.AppendConfig, "segment.ms", "1"), kerr.InvalidConfig, "not supported"},
	} {
		for _, validate := range []bool{true, false} {
			f := adm.AlterTopicConfigs
			if validate {
				f = adm.ValidateAlterTopicConfigs
			}
			resps, err := f(ctx, []kadm.AlterConfig{c.change}, "lo")
			if err != nil {
				t.Fatal(err)
			}
			r := resps[0]
			if c.want == nil && r.Err != nil || c.want != nil && (!isCode(r.Err, c.want) || !strings.Contains(r.ErrMessage, c.msgWants)) {
				t.Errorf("%s (validate only %v): %v %q, want %v with a message naming %q", c.what, validate, r.Err, r.ErrMessage, c.want, c.msgWants)
			}
		}
	}
	if cfg, err := ts.log.TopicConfig("lo"); err != nil || cfg != before {
		t.Errorf("after the list ops: %+v %v, want it unchanged %+v", cfg, err, before)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("lo", nil); err != nil {
		t.Fatal(err)
	} else if policy := configValue(v.Configs, "cleanup.policy"); policy != "delete" {
		t.Errorf("cleanup.policy described as %q, want delete", policy)
	}
}

// configValue is the value of config name in cs, or "" if missing.
func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}
