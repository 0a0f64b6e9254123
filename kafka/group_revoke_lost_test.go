package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRevokeAfterClientDroppedAll: runnel takes a partition from a Kafka
// member (a native member joined) while its cooperative client drops
// every partition as lost, as franz-go does at a heartbeat that cannot
// reach the server, and joins again saying it owns none. The revoke must
// end at that join: the client is given the partition it keeps, and the
// native member gets the other. Before, the server took a cooperative
// client to hold its last assignment whatever it said, so the revoke
// waited for the client to join once more; having lost nothing in its
// eyes, it never did, and the native member never got the partition
// (TestGroupResumeStale failed so now and then, a server restart having
// cut the client's heartbeat).
func TestRevokeAfterClientDroppedAll(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts, group = 2, "rlg"
	ts.createTopic("rl", parts)
	// Version 1 names the partitions the client owns: none, at its first
	// join and after it dropped them all.
	meta := (&kmsg.ConsumerMemberMetadata{Version: 1, Topics: []string{"rl"}}).AppendTo(nil)
	join := rawJoin(group, "", 30*time.Second, 10*time.Second)
	join.ProtocolType = consumerProtocol
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: meta}}
	a := ts.raw()
	ja := joinNew(t, a, join)
	if ja.ErrorCode != 0 {
		t.Fatalf("raw join: %v", codeName(ja.ErrorCode))
	}
	given := func(gen int32) []int32 {
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Version, sync.Group, sync.MemberID, sync.Generation = 3, group, ja.MemberID, gen
		sr := a.request(sync).(*kmsg.SyncGroupResponse)
		var got kmsg.ConsumerMemberAssignment
		if sr.ErrorCode != 0 || got.ReadFrom(sr.MemberAssignment) != nil || len(got.Topics) != 1 {
			return nil
		}
		return got.Topics[0].Partitions
	}
	waitFor(t, "the raw member to be given both partitions", func() bool { return len(given(ja.Generation)) == parts })

	native, err := ts.log.Consumer("rl", &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	poll := func() {
		if _, err := native.TryPoll(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "runnel to take a partition from the raw member, which asks for a rebalance", func() bool {
		poll()
		return rawHeartbeat(a, group, ja.MemberID, ja.Generation) == errRebalancing
	})

	join.MemberID = ja.MemberID
	j2 := a.request(join).(*kmsg.JoinGroupResponse)
	if j2.ErrorCode != 0 {
		t.Fatalf("rejoin: %v", codeName(j2.ErrorCode))
	}
	var got []int32
	waitFor(t, "the raw member to be given one partition and the native member the other", func() bool {
		poll()
		if got == nil {
			if got = given(j2.Generation); len(got) != 1 {
				got = nil
				return false
			}
		}
		ps := native.Partitions()
		return len(ps) == 1 && !slices.Contains(got, int32(ps[0]))
	})
}
