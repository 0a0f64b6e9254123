package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreatePartitionsGroupConsumer: kadm adds 3 partitions to a topic of
// 1 that a franz-go group consumer reads; Metadata shows 4, OffsetFetch
// answers 0 for the group in the new ones, franz-go's producer writes to
// them through the server, and the consumer takes them and reads every
// record.
func TestCreatePartitionsGroupConsumer(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("cp", 1)
	produceSpread(t, ts.log, "cp", 1, 10, "old")
	// franz-go learns the new partitions' leader from Metadata, which it
	// asks again at most every MetadataMinAge (5 s by default) once it is
	// assigned partitions it does not know, and adds them to its next
	// fetch, after the one in flight (FetchMaxWait, 5 s by default).
	fast := []kgo.Opt{kgo.MetadataMinAge(50 * time.Millisecond), kgo.FetchMaxWait(50 * time.Millisecond)}
	m := ts.member("m", fast, groupOpts("cpgrp", "cp")...)
	waitFor(t, "the old records consumed", func() bool { return m.consumedSpread(1, 10, "old") })

	adm := kadm.NewClient(ts.client())
	resps, err := adm.CreatePartitions(context.Background(), 3, "cp")
	if err != nil {
		t.Fatal(err)
	}
	if r := resps["cp"]; r.Err != nil {
		t.Fatalf("CreatePartitions: %v (%s)", r.Err, r.ErrMessage)
	}
	details, err := adm.ListTopics(context.Background(), "cp")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["cp"].Partitions); n != 4 {
		t.Errorf("Metadata after the growth: %d partitions, want 4", n)
	}
	if cfg, err := ts.log.TopicConfig("cp"); err != nil || cfg.Partitions != 4 {
		t.Errorf("the topic: %+v, %v", cfg, err)
	}
	// The group existed before the new partitions: everything in them is
	// new to it, so its committed offset there is 0, and a member that
	// resets to the end reads what was produced before it took them.
	offs, err := adm.FetchOffsets(context.Background(), "cpgrp")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(1); p < 4; p++ {
		if o, ok := offs.Lookup("cp", p); !ok || o.Err != nil || o.At != 0 {
			t.Errorf("OffsetFetch of new partition %d: %+v, %v; want committed 0", p, o, ok)
		}
	}

	prod := ts.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range 4 {
		for i := range 5 {
			r := &kgo.Record{Topic: "cp", Partition: int32(p), Value: fmt.Appendf(nil, "new-%d-%d", p, i)}
			if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d: %v", p, err)
			}
		}
	}
	waitFor(t, "the member to own the new partitions", func() bool { return len(m.owned()) == 4 })
	waitFor(t, "every new record consumed", func() bool { return m.consumedSpread(4, 5, "new") })
}

// TestCreatePartitionsErrors: CreatePartitions at v0 and v3 with each
// kind of refusal, per topic, with a message; ValidateOnly and refused
// entries change nothing.
func TestCreatePartitionsErrors(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	ts.createTopic("a", 2)
	ts.createTopic("b", 1)
	zero := []int32{0}
	for _, version := range []int16{0, 3} {
		for _, c := range []struct {
			what     string
			topics   []string
			count    int32
			replicas [][]int32 // nil: no assignment
			validate bool
			want     *kerr.Error
		}{
			{"fewer", []string{"a"}, 1, nil, false, kerr.InvalidPartitions},
			{"as many", []string{"a"}, 2, nil, false, kerr.InvalidPartitions},
			{"too many", []string{"a"}, 1<<16 + 1, nil, false, kerr.InvalidPartitions},
			{"unknown topic", []string{"nope"}, 3, nil, false, kerr.UnknownTopicOrPartition},
			{"named twice", []string{"a", "a"}, 3, nil, false, kerr.InvalidRequest},
			{"another broker", []string{"a"}, 3, [][]int32{{1}}, false, kerr.InvalidReplicaAssignment},
			{"two replicas", []string{"a"}, 3, [][]int32{{0, 0}}, false, kerr.InvalidReplicaAssignment},
			{"too few assignments", []string{"a"}, 4, [][]int32{zero}, false, kerr.InvalidReplicaAssignment},
			{"validate only", []string{"a"}, 9, nil, true, nil},
		} {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Version, req.TimeoutMillis, req.ValidateOnly = version, 10_000, c.validate
			for _, name := range c.topics {
				rt := kmsg.NewCreatePartitionsRequestTopic()
				rt.Topic, rt.Count = name, c.count
				for _, r := range c.replicas {
					a := kmsg.NewCreatePartitionsRequestTopicAssignment()
					a.Replicas = r
					rt.Assignment = append(rt.Assignment, a)
				}
				req.Topics = append(req.Topics, rt)
			}
			resp := rc.request(req).(*kmsg.CreatePartitionsResponse)
			if len(resp.Topics) != len(c.topics) {
				t.Fatalf("v%d %s: %d topics answered", version, c.what, len(resp.Topics))
			}
			want := int16(0)
			if c.want != nil {
				want = c.want.Code
			}
			for _, rt := range resp.Topics {
				if rt.ErrorCode != want || want != 0 && rt.ErrorMessage == nil {
					t.Errorf("v%d %s: %v (%s), want %v with a message", version, c.what, kerr.ErrorForCode(rt.ErrorCode), orNull(rt.ErrorMessage), c.want)
				}
			}
			if cfg, err := ts.log.TopicConfig("a"); err != nil || cfg.Partitions != 2 {
				t.Fatalf("v%d %s: topic a now %+v, %v", version, c.what, cfg, err)
			}
		}
	}

	// An assignment a one-broker Kafka takes: one replica on broker 0 for
	// each partition added; b grows beside a refused entry.
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version, req.TimeoutMillis = 1, 10_000
	for _, name := range []string{"a", "b"} {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, 3
		if name == "a" {
			rt.Count = 1
		}
		for range 2 {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = zero
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := rc.request(req).(*kmsg.CreatePartitionsResponse)
	if code := resp.Topics[1].ErrorCode; code != 0 || resp.Topics[0].ErrorCode != kerr.InvalidPartitions.Code {
		t.Errorf("a shrink beside a growth on broker 0: %d, %d", resp.Topics[0].ErrorCode, code)
	}
	for name, want := range map[string]int{"a": 2, "b": 3} {
		if cfg, err := ts.log.TopicConfig(name); err != nil || cfg.Partitions != want {
			t.Errorf("topic %s: %+v, %v; want %d partitions", name, cfg, err, want)
		}
	}
}
