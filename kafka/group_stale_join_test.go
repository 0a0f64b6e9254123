package kafka

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStaleJoinKeepsHeld: a client's JoinGroup that lingered (sent on a
// connection the client then gave up, read by the server only after the
// client's retry of it had joined and synced: a server paused, or slow
// to read) reaches the server while runnel takes a partition from the
// member for a native one. What it says the client holds is older than
// the assignment the client was given since — its generation
// (ConsumerMemberMetadata v2+, as franz-go and the Java client send it)
// is before the one the client was answered an assignment in — so it
// must not lower what the server takes the client to hold: the partition
// stays the Kafka member's until the client itself lets go of it in a
// rebalance, and then passes to the native member. Before, the stale
// join replaced what the client held with what it said, and the server
// released the partition at once while the client, given it, read it.
//
// The lingering JoinGroup is the member's rejoin at its first
// generation, claiming nothing: an eager client's, and a cooperative
// one's that dropped everything as lost (franz-go does at a heartbeat
// that cannot reach the server).
func TestStaleJoinKeepsHeld(t *testing.T) {
	for _, protocol := range []string{cooperativeProtocol, "range"} {
		t.Run(protocol, func(t *testing.T) { testStaleJoin(t, protocol) })
	}
}

func testStaleJoin(t *testing.T, protocol string) {
	ts := startServer(t, fastGroups)
	const parts, topic, group = 2, "sj", "sjg"
	ts.createTopic(topic, parts)
	k := newRawConsumer(t, ts, group, topic, protocol)
	all := []int32{0, 1}
	j := k.join(-1, nil)
	waitFor(t, "the member to be given both partitions", func() bool { return slices.Equal(k.given(j.Generation), all) })
	stale := k.joinRequest(j.Generation, nil)
	j = k.join(j.Generation, nil)
	waitFor(t, "the member to be given both partitions again", func() bool { return slices.Equal(k.given(j.Generation), all) })

	native := pollNative(t, ts.log, topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	waitFor(t, "runnel to take a partition from the Kafka member, which waits for its client", func() bool { return revoking(ts.srv, group) })

	r := k.rc.request(stale).(*kmsg.JoinGroupResponse)
	t.Logf("the stale join was answered %v, generation %d", codeName(r.ErrorCode), r.Generation)
	if owners, ok := k.ownsAllAfterTicks(ts); !ok {
		t.Fatalf("after the stale JoinGroup, the partitions' runnel owners are %q; the client, given both, has let go of neither", owners)
	}

	// The client's own rejoin lets go of what it lost, and the native
	// member gets it.
	owned := all
	if protocol != cooperativeProtocol {
		owned = nil
	}
	j = k.join(j.Generation, owned)
	var kept []int32
	waitFor(t, "the member to be given one partition", func() bool {
		kept = k.given(j.Generation)
		return len(kept) == 1
	})
	if protocol == cooperativeProtocol {
		k.join(j.Generation, kept)
	}
	waitFor(t, "the native member to get the other partition", func() bool {
		ps := native.partitions()
		return len(ps) == 1 && int32(ps[0]) != kept[0]
	})
}

// TestJoinAtNoGenerationLetsGo: a JoinGroup at generation -1 says
// nothing of when it was sent — librdkafka's range and roundrobin send
// -1 at every join — so it is never taken for a stale one: an eager
// client's rejoin at -1 after it was given both partitions lets go of
// them, and the one runnel takes for a native member passes on.
func TestJoinAtNoGenerationLetsGo(t *testing.T) {
	ts := startServer(t, fastGroups)
	const topic, group = "ng", "ngg"
	ts.createTopic(topic, 2)
	k := newRawConsumer(t, ts, group, topic, "range")
	j := k.join(-1, nil)
	waitFor(t, "the member to be given both partitions", func() bool { return len(k.given(j.Generation)) == 2 })
	native := pollNative(t, ts.log, topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	waitFor(t, "runnel to take a partition from the Kafka member", func() bool { return revoking(ts.srv, group) })
	k.join(-1, nil)
	waitFor(t, "the native member to get a partition", func() bool { return len(native.partitions()) == 1 })
}

// TestStaleJoinRevokeEnds: a cooperative client whose SyncGroup answer
// was lost (librdkafka then keeps claiming the generation of the last
// assignment it had) joins as if it had never been given what the server
// answered, and the server, taking the join for one sent before, keeps
// holding what it gave. The client is then given only a partition it
// did not know it had lost, so it does not join again by itself: the
// revoke that waits for it must ask for another rebalance, or the
// native member never gets the partition. The client here is given
// nothing first (its topic does not exist yet), then both partitions in
// the answer it loses, then one.
func TestStaleJoinRevokeEnds(t *testing.T) {
	ts := startServer(t, fastGroups)
	const topic, group = "lx", "lxg"
	k := newRawConsumer(t, ts, group, topic, cooperativeProtocol)
	j := k.join(-1, nil)
	if ps, ok := k.sync(j.Generation); !ok || len(ps) > 0 {
		t.Fatalf("first sync: %v %v, want nothing given", ps, ok)
	}
	first := j.Generation
	ts.createTopic(topic, 2)
	waitFor(t, "the member to take the new topic's partitions and ask for a rebalance", func() bool {
		return rawHeartbeat(k.rc, group, k.id, j.Generation) == errRebalancing
	})
	j = k.join(first, nil)
	waitFor(t, "the member to be given both partitions, an answer its client loses", func() bool { return len(k.given(j.Generation)) == 2 })

	native := pollNative(t, ts.log, topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	waitFor(t, "runnel to take a partition from the member, which asks for a rebalance", func() bool {
		return revoking(ts.srv, group) && rawHeartbeat(k.rc, group, k.id, j.Generation) == errRebalancing
	})
	j = k.join(first, nil) // as librdkafka does, having lost the answer
	var kept []int32
	waitFor(t, "the member to be given one partition", func() bool {
		kept = k.given(j.Generation)
		return len(kept) == 1
	})
	// The client lost nothing it knew of, and joins only when told to.
	waitFor(t, "a rebalance to be asked for", func() bool {
		return rawHeartbeat(k.rc, group, k.id, j.Generation) == errRebalancing
	})
	k.join(j.Generation, kept)
	waitFor(t, "the native member to get the other partition", func() bool {
		ps := native.partitions()
		return len(ps) == 1 && int32(ps[0]) != kept[0]
	})
}

// rawConsumer is a consumer-protocol group member driven by raw requests,
// with ConsumerMemberMetadata v3 as franz-go and the Java client send it.
type rawConsumer struct {
	t                          *testing.T
	rc                         *rawConn
	group, topic, protocol, id string
}

func newRawConsumer(t *testing.T, ts *testServer, group, topic, protocol string) *rawConsumer {
	return &rawConsumer{t: t, rc: ts.raw(), group: group, topic: topic, protocol: protocol}
}

// joinRequest is the member's JoinGroup in generation gen, owning owned.
func (k *rawConsumer) joinRequest(gen int32, owned []int32) *kmsg.JoinGroupRequest {
	req := rawJoin(k.group, k.id, 30*time.Second, time.Minute)
	req.ProtocolType = consumerProtocol
	meta := kmsg.ConsumerMemberMetadata{Version: 3, Topics: []string{k.topic}, Generation: gen}
	if len(owned) > 0 {
		meta.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: k.topic, Partitions: owned}}
	}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: k.protocol, Metadata: meta.AppendTo(nil)}}
	return req
}

// join joins (the first time, through MEMBER_ID_REQUIRED) and fails the
// test unless it succeeds.
func (k *rawConsumer) join(gen int32, owned []int32) *kmsg.JoinGroupResponse {
	k.t.Helper()
	req := k.joinRequest(gen, owned)
	var r *kmsg.JoinGroupResponse
	if k.id == "" {
		r = joinNew(k.t, k.rc, req)
		k.id = req.MemberID
	} else {
		r = k.rc.request(req).(*kmsg.JoinGroupResponse)
	}
	if r.ErrorCode != 0 {
		k.t.Fatalf("join in generation %d: %v", gen, codeName(r.ErrorCode))
	}
	return r
}

// given syncs in generation gen and returns the partitions given, sorted
// (nil if the sync failed).
func (k *rawConsumer) given(gen int32) []int32 {
	ps, _ := k.sync(gen)
	return ps
}

// sync syncs in generation gen; ok is false if the sync failed.
func (k *rawConsumer) sync(gen int32) (ps []int32, ok bool) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 3, k.group, k.id, gen
	sr := k.rc.request(req).(*kmsg.SyncGroupResponse)
	var got kmsg.ConsumerMemberAssignment
	if sr.ErrorCode != 0 || got.ReadFrom(sr.MemberAssignment) != nil {
		return nil, false
	}
	for _, tp := range got.Topics {
		ps = append(ps, tp.Partitions...)
	}
	slices.Sort(ps)
	return ps, true
}

// runnelSide is the runnel side of member id of group.
func runnelSide(t *testing.T, s *Server, group, id string) *runnelMember {
	t.Helper()
	s.groups.mu.Lock()
	g := s.groups.groups[group]
	s.groups.mu.Unlock()
	if g == nil {
		t.Fatalf("no group %s", group)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if m := g.members[id]; m != nil && m.rn != nil {
		return m.rn
	}
	t.Fatalf("group %s has no consumer member %s", group, id)
	return nil
}

// ownsAllAfterTicks reports whether the member owns every partition of
// its topic in runnel once its runnel side has acted on what the last
// JoinGroup left: it checks what its client holds at each of its ticks
// while it revokes, so two more ticks and it has.
func (k *rawConsumer) ownsAllAfterTicks(ts *testServer) (owners []string, ok bool) {
	k.t.Helper()
	rm := runnelSide(k.t, ts.srv, k.group, k.id)
	t0 := rm.tickCount()
	waitFor(k.t, "the Kafka member's runnel side to tick twice", func() bool { return rm.tickCount() >= t0+2 })
	owners = runnelOwners(k.t, ts.log, k.group, k.topic)
	return owners, !slices.ContainsFunc(owners, func(o string) bool { return o != MemberNamePrefix+k.id })
}

func (rm *runnelMember) tickCount() uint64 {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.ticks
}

// TestJoinDuringSyncAnswer: a lingering JoinGroup of a member read while
// the member's SyncGroup has computed its assignment but not answered it
// (the hook runs it there) sets what the client holds without what that
// SyncGroup gives, since the client sent it before; answered, the
// assignment would let the client read partitions the server does not
// count as held, which a revoke may then pass on. The SyncGroup must be
// answered REBALANCE_IN_PROGRESS instead: the client joins again. A
// second member that has not joined again keeps the group at the
// SyncGroup's generation meanwhile. Before, the SyncGroup was answered
// with the assignment.
func TestJoinDuringSyncAnswer(t *testing.T) {
	ts := startServer(t, fastGroups)
	const topic, group = "js", "jsg"
	ts.createTopic(topic, 2)
	k := newRawConsumer(t, ts, group, topic, "range")
	j := k.join(-1, nil)
	l := newRawConsumer(t, ts, group, topic, "range")
	lJoined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		req := l.joinRequest(-1, nil)
		r := l.rc.request(req).(*kmsg.JoinGroupResponse) // MEMBER_ID_REQUIRED
		req.MemberID = r.MemberID
		lJoined <- l.rc.request(req).(*kmsg.JoinGroupResponse)
	}()
	waitFor(t, "the second member to join, which starts a rebalance", func() bool {
		return rawHeartbeat(k.rc, group, k.id, j.Generation) == errRebalancing
	})
	j = k.join(j.Generation, nil)
	if r := <-lJoined; r.ErrorCode != 0 || r.Generation != j.Generation {
		t.Fatalf("second member's join: %v in generation %d, want %d", codeName(r.ErrorCode), r.Generation, j.Generation)
	}

	// The hook, on the server's goroutine, only says the assignment is
	// computed and waits to be let go: the test's goroutine sends the
	// lingering JoinGroup and waits for it to be read, and so is the one
	// that fails (a t.Fatalf on the server's goroutine would leave the
	// SyncGroup hanging instead of failing the test).
	assigned, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookSyncAssigned = func() {
		once.Do(func() {
			close(assigned)
			<-proceed
		})
	}
	t.Cleanup(func() { testHookSyncAssigned = nil })
	var release sync.Once
	letGo := func() { release.Do(func() { close(proceed) }) }
	t.Cleanup(letGo) // before the server's shutdown, which waits for the SyncGroup
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 3, group, k.id, j.Generation
	k.rc.send(req)
	select {
	case <-assigned:
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the SyncGroup to compute its assignment")
	}
	ts.raw().send(k.joinRequest(j.Generation-1, nil)) // it waits for the second member, which does not join again
	waitFor(t, "the lingering JoinGroup to be read", func() bool { return joining(ts.srv, group, k.id) })
	letGo()
	resp, err := k.rc.read(req)
	if err != nil {
		t.Fatalf("SyncGroup: %v", err)
	}
	if sr := resp.(*kmsg.SyncGroupResponse); sr.ErrorCode != errRebalancing {
		t.Fatalf("SyncGroup answered %v with %x after a JoinGroup of the member was read; want REBALANCE_IN_PROGRESS", codeName(sr.ErrorCode), sr.MemberAssignment)
	}
}

// joining reports whether member id of group waits in a JoinGroup.
func joining(s *Server, group, id string) bool {
	s.groups.mu.Lock()
	g := s.groups.groups[group]
	s.groups.mu.Unlock()
	if g == nil { // emptied and dropped: its members' sessions ended
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[id]
	return m != nil && m.join != nil
}
