package kafka

import (
	"slices"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStaleRefusalKeepsHeld: a Heartbeat, SyncGroup or OffsetCommit of a
// member's older generation that lingered (sent on a connection its
// client then gave up, read late) is answered ILLEGAL_GENERATION, an
// answer the client never reads. The cooperative client, still reading
// both partitions it was given, joins again when runnel takes one of them
// for a native member (the server asks for a rebalance), claiming both,
// as it owns them. That refusal must not count as the client dropping
// what it had: the partition stays the Kafka member's until the client
// itself lets go of it in a rebalance, and then passes to the native
// member. Before, any refusal since the member's last join made that
// join clear what the client held, whatever it claimed, and the server
// released the partition at once while the client read it.
//
// A client that does read ILLEGAL_GENERATION does not need the refusal
// counted either: franz-go, librdkafka and the Java client then drop
// everything as lost and join claiming nothing (TestRevokeAfterClientDroppedAll),
// and librdkafka (an OffsetCommit's during a rebalance) and the Java client
// (for a generation it has moved past) ignore some refusals, keeping, and
// claiming, what they own.
func TestStaleRefusalKeepsHeld(t *testing.T) {
	for _, tc := range staleRequests {
		t.Run(tc.name, func(t *testing.T) { testStaleRefusal(t, tc.stale, false) })
	}
}

// TestStaleRefusalThenStaleJoin: as TestStaleRefusalKeepsHeld, but what
// reaches the server after the lingering request's refusal is a
// JoinGroup that lingered with it, of the member's first generation and
// claiming nothing (TestStaleJoinKeepsHeld's). Neither says anything of
// what the client holds now. Before, the refusal made the server take
// that join as said (a refused client's join was never taken as stale),
// and it released the partition at once while the client read it.
func TestStaleRefusalThenStaleJoin(t *testing.T) {
	for _, tc := range staleRequests {
		t.Run(tc.name, func(t *testing.T) { testStaleRefusal(t, tc.stale, true) })
	}
}

// staleRequests are the group requests a member's generation is checked
// in, each sent in generation gen: what ILLEGAL_GENERATION answers.
var staleRequests = []struct {
	name  string
	stale func(rc *rawConn, group, member, topic string, gen int32) int16
}{
	{"Heartbeat", func(rc *rawConn, group, member, _ string, gen int32) int16 {
		return rawHeartbeat(rc, group, member, gen)
	}},
	{"SyncGroup", staleConsumerSync},
	{"OffsetCommit", staleCommit},
}

func testStaleRefusal(t *testing.T, stale func(rc *rawConn, group, member, topic string, gen int32) int16, lingeringJoin bool) {
	ts := startServer(t, fastGroups)
	const topic, group = "sr", "srg"
	ts.createTopic(topic, 2)
	k := newRawConsumer(t, ts, group, topic, cooperativeProtocol)
	all := []int32{0, 1}
	j := k.join(-1, nil)
	waitFor(t, "the member to be given both partitions", func() bool { return slices.Equal(k.given(j.Generation), all) })
	old := j.Generation
	lingering := k.joinRequest(old, nil)
	j = k.join(j.Generation, all)
	waitFor(t, "the member to be given both partitions again", func() bool { return slices.Equal(k.given(j.Generation), all) })

	// Answered on a connection the client gave up: it never reads the
	// answer.
	abandoned := ts.raw()
	if code := stale(abandoned, group, k.id, topic, old); code != errIllegalGeneration {
		t.Fatalf("stale request in generation %d answered %v, want ILLEGAL_GENERATION", old, codeName(code))
	}

	native := pollNative(t, ts.log, topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	waitFor(t, "runnel to take a partition from the Kafka member, which asks its client to rebalance", func() bool {
		return revoking(ts.srv, group) && rawHeartbeat(k.rc, group, k.id, j.Generation) == errRebalancing
	})
	if lingeringJoin {
		r := abandoned.request(lingering).(*kmsg.JoinGroupResponse)
		t.Logf("the lingering join was answered %v, generation %d", codeName(r.ErrorCode), r.Generation)
	} else {
		// The client, told to rebalance, joins again owning both.
		j = k.join(j.Generation, all)
	}
	if owners, ok := k.ownsAllAfterTicks(ts); !ok {
		t.Fatalf("after the refusal and the join, the partitions' runnel owners are %q; the client, which never read the ILLEGAL_GENERATION, let go of neither", owners)
	}

	if lingeringJoin {
		j = k.join(j.Generation, all) // the client's own
	}
	// Given one, the client lets go of the other and joins again, and
	// the native member gets it.
	var kept []int32
	waitFor(t, "the member to be given one partition", func() bool {
		kept = k.given(j.Generation)
		return len(kept) == 1
	})
	k.join(j.Generation, kept)
	waitFor(t, "the native member to get the other partition", func() bool {
		ps := native.partitions()
		return len(ps) == 1 && int32(ps[0]) != kept[0]
	})
}

// staleConsumerSync is a consumer-protocol member's SyncGroup in
// generation gen.
func staleConsumerSync(rc *rawConn, group, member, _ string, gen int32) int16 {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 3, group, member, gen
	return rc.request(req).(*kmsg.SyncGroupResponse).ErrorCode
}

// staleCommit is a member's OffsetCommit in generation gen of offset 0
// of the topic's partition 0.
func staleCommit(rc *rawConn, group, member, topic string, gen int32) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 8, group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rc.request(req).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		rc.t.Fatalf("OffsetCommit answered %d topics for one", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}
