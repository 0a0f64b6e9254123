package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsReplicaAssignment: a manual assignment that puts each
// partition's one replica on broker 0, which is what runnel does anyway
// (kafka-topics.sh --replica-assignment 0,0,0), makes a topic of as many
// partitions, as in Kafka; one naming another broker, two replicas, a gap
// in the partitions, or a count or factor beside it is refused with
// Kafka's codes, and makes nothing.
func TestCreateTopicsReplicaAssignment(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	assignment := func(replicas ...[]int32) []kmsg.CreateTopicsRequestTopicReplicaAssignment {
		var as []kmsg.CreateTopicsRequestTopicReplicaAssignment
		for p, r := range replicas {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(p), r
			as = append(as, a)
		}
		return as
	}
	create := func(name string, partitions int32, factor int16, as []kmsg.CreateTopicsRequestTopicReplicaAssignment) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor, rt.ReplicaAssignment = name, partitions, factor, as
		req.Topics = append(req.Topics, rt)
		return rc.request(req).(*kmsg.CreateTopicsResponse).Topics[0]
	}
	zero := []int32{0}
	got := create("assigned", -1, -1, assignment(zero, zero, zero))
	if got.ErrorCode != 0 || got.NumPartitions != 3 || got.ReplicationFactor != 1 {
		t.Fatalf("three partitions on broker 0: code %d (%v), %d partitions, factor %d", got.ErrorCode, orNull(got.ErrorMessage), got.NumPartitions, got.ReplicationFactor)
	}
	if cfg, err := ts.log.TopicConfig("assigned"); err != nil || cfg.Partitions != 3 {
		t.Fatalf("topic made: %+v %v", cfg, err)
	}
	gap := assignment(zero, zero)
	gap[1].Partition = 2
	for _, c := range []struct {
		what       string
		partitions int32
		factor     int16
		as         []kmsg.CreateTopicsRequestTopicReplicaAssignment
		want       *kerr.Error
	}{
		{"another broker", -1, -1, assignment(zero, []int32{1}), kerr.InvalidReplicaAssignment},
		{"two replicas", -1, -1, assignment([]int32{0, 0}), kerr.InvalidReplicaAssignment},
		{"no replica", -1, -1, assignment([]int32{}), kerr.InvalidReplicaAssignment},
		{"a gap in the partitions", -1, -1, gap, kerr.InvalidReplicaAssignment},
		{"a partition count beside it", 1, -1, assignment(zero), kerr.InvalidRequest},
		{"a replication factor beside it", -1, 1, assignment(zero), kerr.InvalidRequest},
	} {
		got := create("refused", c.partitions, c.factor, c.as)
		if got.ErrorCode != c.want.Code {
			t.Errorf("%s: %v (%v), want %v", c.what, kerr.ErrorForCode(got.ErrorCode), orNull(got.ErrorMessage), c.want)
		}
	}
	if _, err := ts.log.TopicConfig("refused"); err == nil {
		t.Error("a refused assignment made its topic")
	}
}

// TestTopicNamedTwice: CreateTopics and DeleteTopics refuse every entry
// of a topic a request names twice with INVALID_REQUEST and act on none,
// as Kafka does, where the first entry was acted on and the second was
// answered as if it came in a later request.
func TestTopicNamedTwice(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	create := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"twice", "once", "twice"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		create.Topics = append(create.Topics, rt)
	}
	for _, rt := range rc.request(create).(*kmsg.CreateTopicsResponse).Topics {
		want := kerr.InvalidRequest.Code
		if rt.Topic == "once" {
			want = 0
		}
		if rt.ErrorCode != want {
			t.Errorf("CreateTopics of %s: %v, want %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	if _, err := ts.log.TopicConfig("twice"); err == nil {
		t.Error("CreateTopics made the topic it named twice")
	}

	ts.createTopic("twice", 1)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TopicNames = 5, []string{"twice", "once", "twice"}
	for _, rt := range rc.request(del).(*kmsg.DeleteTopicsResponse).Topics {
		want := kerr.InvalidRequest.Code
		if *rt.Topic == "once" {
			want = 0
		}
		if rt.ErrorCode != want {
			t.Errorf("DeleteTopics of %s: %v, want %v", *rt.Topic, kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	if _, err := ts.log.TopicConfig("twice"); err != nil {
		t.Errorf("DeleteTopics deleted the topic it named twice: %v", err)
	}
}
