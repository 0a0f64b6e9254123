package kafka

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeConfigsSynonymsAndDocumentation: DescribeConfigs answers
// what Kafka's broker does beside the values, which kafka-configs.sh
// --describe --all prints and Kafka UIs show: each config's synonyms when
// asked (v1+), the value it has from where, then its default, so that a
// tool shows the default beside an override; and its documentation when
// asked (v3+). A broker config at its default is DEFAULT_CONFIG, one the
// server's options set STATIC_BROKER_CONFIG.
func TestDescribeConfigsSynonymsAndDocumentation(t *testing.T) {
	ts := startServer(t, &Options{MaxMessageBytes: 2000})
	if err := ts.log.CreateTopic("syn", runnel.TopicConfig{Partitions: 1, RetentionBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	type syn struct {
		Key, Value string
		Source     kmsg.ConfigSource
	}
	synonyms := func(rcs kadm.ResourceConfigs, err error) map[string][]syn {
		t.Helper()
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("DescribeConfigs: %v %+v", err, rcs)
		}
		got := map[string][]syn{}
		for _, c := range rcs[0].Configs {
			got[c.Key] = []syn{}
			for _, s := range c.Synonyms {
				got[c.Key] = append(got[c.Key], syn{s.Key, *s.Value, s.Source})
			}
		}
		return got
	}
	dyn, def, static := kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigSourceDefaultConfig, kmsg.ConfigSourceStaticBrokerConfig
	got := synonyms(adm.DescribeTopicConfigs(ctx, "syn"))
	want := map[string][]syn{
		"retention.bytes":   {{"retention.bytes", "1048576", dyn}, {"retention.bytes", "-1", def}},
		"retention.ms":      {{"retention.ms", "-1", def}},
		"segment.bytes":     {{"segment.bytes", strconv.Itoa(runnel.DefaultSegmentBytes), def}},
		"cleanup.policy":    {{"cleanup.policy", "delete", def}},
		"max.message.bytes": {{"max.message.bytes", "2000", def}},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, got[name]); diff != "" {
			t.Errorf("topic config %s's synonyms (-want +got):\n%s", name, diff)
		}
	}
	got = synonyms(adm.DescribeBrokerConfigs(ctx, 0))
	want = map[string][]syn{
		"message.max.bytes": {{"message.max.bytes", "2000", static}, {"message.max.bytes", "1048588", def}},
		"num.partitions":    {{"num.partitions", "1", def}},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, got[name]); diff != "" {
			t.Errorf("broker config %s's synonyms (-want +got):\n%s", name, diff)
		}
	}

	// Documentation and synonyms only when asked.
	for _, ask := range []bool{false, true} {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms, req.IncludeDocumentation = ask, ask
		for _, r := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, "syn"}, {kmsg.ConfigResourceTypeBroker, "0"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = r.typ, r.name
			req.Resources = append(req.Resources, rr)
		}
		resp, err := req.RequestWith(ctx, ts.client())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Resources {
			if r.ErrorCode != 0 || len(r.Configs) == 0 {
				t.Fatalf("%s: code %d, %d configs", r.ResourceName, r.ErrorCode, len(r.Configs))
			}
			for _, c := range r.Configs {
				if hasDoc := c.Documentation != nil && *c.Documentation != ""; hasDoc != ask {
					t.Errorf("asked %v: %s's documentation %s", ask, c.Name, orNull(c.Documentation))
				}
				if hasSyn := len(c.ConfigSynonyms) > 0; hasSyn != ask {
					t.Errorf("asked %v: %s's synonyms %+v", ask, c.Name, c.ConfigSynonyms)
				}
			}
		}
	}
}

// TestDescribeConfigsClusterDefaults: the broker resource named "" is the
// cluster's dynamic defaults (kafka-configs.sh --entity-type brokers
// --entity-default, kadm's DescribeBrokerConfigs with no ids), not any
// broker's configs: Kafka's broker answers it with the defaults set by
// AlterConfigs, which runnel's settings, serve's flags, never are, so an
// empty list and no error. It got the server's static configs, which a
// tool then showed as cluster-wide overrides. Broker 0 keeps them.
func TestDescribeConfigsClusterDefaults(t *testing.T) {
	ts := startServer(t, &Options{MaxMessageBytes: 2000})
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	rcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(rcs) != 1 {
		t.Fatalf("DescribeBrokerConfigs(): %v %+v", err, rcs)
	}
	if rc := rcs[0]; rc.Name != "" || rc.Err != nil || len(rc.Configs) != 0 {
		var names []string
		for _, c := range rc.Configs {
			names = append(names, c.Key)
		}
		t.Errorf("cluster defaults: name %q, err %v, configs %v, want none", rc.Name, rc.Err, names)
	}
	rcs, err = adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("DescribeBrokerConfigs(0): %v %+v", err, rcs)
	}
	got := map[string]string{}
	for _, c := range rcs[0].Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["message.max.bytes"] != "2000" {
		t.Errorf("broker 0's message.max.bytes: %q, want 2000", got["message.max.bytes"])
	}
}

// TestDescribeConfigsEmptyNames: a resource asked for with an empty list
// of config names gets all its configs, as from Kafka's broker, which
// takes an empty list as it takes null; a list that names configs gets
// those.
func TestDescribeConfigsEmptyNames(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("names", 1)
	rc := ts.raw()
	for _, version := range []int16{0, 4} {
		for _, c := range []struct {
			names []string
			want  int // configs answered; 0 for all the topic's
		}{{nil, 0}, {[]string{}, 0}, {[]string{"retention.ms", "no.such.config"}, 1}} {
			req := kmsg.NewPtrDescribeConfigsRequest()
			req.Version = version
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, "names", c.names
			req.Resources = append(req.Resources, r)
			resp := rc.request(req).(*kmsg.DescribeConfigsResponse)
			if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
				t.Fatalf("v%d names %#v: %+v", version, c.names, resp.Resources)
			}
			got, want := len(resp.Resources[0].Configs), c.want
			if want == 0 {
				want = len(ts.srv.topicConfigs(runnel.TopicConfig{Partitions: 1}))
			}
			if got != want {
				t.Errorf("v%d names %#v: %d configs, want %d", version, c.names, got, want)
			}
		}
	}
}
