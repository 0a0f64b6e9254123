package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetDelete: kadm's DeleteOffsets (Kafka's OffsetDelete) makes a
// group's committed offsets for the partitions named none, in runnel's
// group too; it is refused while a Kafka member subscribes to the topic,
// for an unknown group and for an unknown partition.
func TestOffsetDelete(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("od", 2)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	p, err := ts.log.Producer("od", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for part := range 2 {
			if _, err := p.Send(ctx, runnel.Record{Partition: part, Value: fmt.Appendf(nil, "%d/%d", part, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "od", Partition: 0, At: 3, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: "od", Partition: 1, At: 4, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "odg", commits); err != nil {
		t.Fatal(err)
	}
	committed := func() []int64 {
		t.Helper()
		info, err := ts.log.DescribeGroup("odg")
		if err != nil || len(info.Topics) != 1 {
			t.Fatalf("DescribeGroup: %+v, %v", info, err)
		}
		var out []int64
		for _, gp := range info.Topics[0].Partitions {
			out = append(out, gp.Committed)
		}
		return out
	}

	if _, err := adm.DeleteOffsets(ctx, "nogroup", kadm.TopicsSet{"od": {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteOffsets of an unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}
	// A Kafka member subscribed to the topic.
	m := ts.member("m", nil, groupOpts("odg", "od")...)
	waitFor(t, "the member to be given partitions", func() bool { return len(m.owned()) > 0 })
	res, err := adm.DeleteOffsets(ctx, "odg", kadm.TopicsSet{"od": {0: {}, 7: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res["od"][0]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Errorf("partition 0 while a member consumes the topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	if err := res["od"][7]; !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("partition 7 of 2: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	m.halt()
	m.cl.Close()

	waitFor(t, "the member to leave", func() bool {
		res, err := adm.DeleteOffsets(ctx, "odg", kadm.TopicsSet{"od": {0: {}}})
		return err == nil && res["od"][0] == nil
	})
	if got := committed(); got[0] != -1 || got[1] != 4 {
		t.Errorf("committed after deleting partition 0: %v, want [-1 4]", got)
	}
	fetched, err := adm.FetchOffsets(ctx, "odg")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("od", 0); ok && o.At >= 0 {
		t.Errorf("OffsetFetch of the deleted partition: %+v, want none", o)
	}
	if o, ok := fetched.Lookup("od", 1); !ok || o.At != 4 {
		t.Errorf("OffsetFetch of the other partition: %+v, want 4", o)
	}
	// A new member starts partition 0 from its reset policy (the
	// start), partition 1 from its commit.
	n := ts.member("n", nil, groupOpts("odg", "od")...)
	want := map[string]int{"0/0": 1, "0/1": 1, "0/2": 1, "0/3": 1, "0/4": 1, "1/4": 1}
	waitFor(t, "the new member to read 6 records", func() bool { return len(n.consumed()) >= len(want) })
	if got := n.consumed(); !maps.Equal(got, want) {
		t.Errorf("the new member read %v, want %v", got, want)
	}
}

// TestOffsetDeleteJoinedMembers: a Kafka member that has joined (and not
// yet synced) and subscribes to the topic refuses OffsetDelete; a group of
// another protocol (Kafka Connect's) with members gets NON_EMPTY_GROUP,
// since which topics it uses is not known.
func TestOffsetDeleteJoinedMembers(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("odj", 1)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "odj", Partition: 0, At: 0, LeaderEpoch: -1})
	for _, g := range []string{"cg", "connect"} {
		if err := adm.CommitAllOffsets(ctx, g, commits); err != nil {
			t.Fatal(err)
		}
	}
	join := func(group, protocolType string) {
		t.Helper()
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"odj"}
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 1, group, 30000, 30000
		req.ProtocolType = protocolType
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		if resp := ts.raw().request(req).(*kmsg.JoinGroupResponse); resp.ErrorCode != 0 {
			t.Fatalf("JoinGroup %s: code %d", group, resp.ErrorCode)
		}
	}
	join("cg", consumerProtocol)
	res, err := adm.DeleteOffsets(ctx, "cg", kadm.TopicsSet{"odj": {0: {}}})
	if err != nil || !errors.Is(res["odj"][0], kerr.GroupSubscribedToTopic) {
		t.Errorf("DeleteOffsets with a member joined, not synced: %v, %v; want GROUP_SUBSCRIBED_TO_TOPIC", res, err)
	}
	join("connect", "connect")
	if _, err := adm.DeleteOffsets(ctx, "connect", kadm.TopicsSet{"odj": {0: {}}}); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Errorf("DeleteOffsets of a Connect group with members: %v, want NON_EMPTY_GROUP", err)
	}
	info, err := ts.log.DescribeGroup("cg")
	if err != nil || info.Topics[0].Partitions[0].Committed != 0 {
		t.Errorf("the refused groups' commits: %+v, %v", info, err)
	}
}
