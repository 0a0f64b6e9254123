package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group protocol with raw requests, each case checked against
// what Kafka's group coordinator answers.

// rawJoin builds a JoinGroup v5 for a group of the non-consumer protocol
// type "other" (the leader's assignment is handed out as is).
func rawJoin(group, memberID string, session, rebalance time.Duration) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID = 5, group, memberID
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	req.ProtocolType = "other"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "p", Metadata: []byte("m")}}
	return req
}

// joinNew joins as a new member through the MEMBER_ID_REQUIRED round
// trip and returns the answer to the second join.
func joinNew(t *testing.T, rc *rawConn, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	t.Helper()
	r := rc.request(req).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join: %v member %q, want MEMBER_ID_REQUIRED with an id", kerr.ErrorForCode(r.ErrorCode), r.MemberID)
	}
	req.MemberID = r.MemberID
	return rc.request(req).(*kmsg.JoinGroupResponse)
}

func rawSync(group, memberID string, gen int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 5, group, memberID, gen
	req.ProtocolType, req.Protocol = kmsg.StringPtr("other"), kmsg.StringPtr("p")
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return req
}

func rawHeartbeat(rc *rawConn, group, memberID string, gen int32) int16 {
	rc.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 4, group, memberID, gen
	return rc.request(req).(*kmsg.HeartbeatResponse).ErrorCode
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

// TestRebalanceTimeoutDropsNonRejoiner: a member that keeps
// heartbeating but never rejoins once a rebalance began is dropped at the
// rebalance timeout, the one that rejoined completes the rebalance alone,
// and the dropped member is then told UNKNOWN_MEMBER_ID.
func TestRebalanceTimeoutDropsNonRejoiner(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "rto"
	a, b := ts.raw(), ts.raw()
	ja := joinNew(t, a, rawJoin(grp, "", 30*time.Second, 500*time.Millisecond))
	if ja.ErrorCode != 0 || ja.LeaderID != ja.MemberID {
		t.Fatalf("a's join: %v, leader %q", codeName(ja.ErrorCode), ja.LeaderID)
	}
	if r := a.request(rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: []byte("A")})).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "A" {
		t.Fatalf("a's sync: %v %q", codeName(r.ErrorCode), r.MemberAssignment)
	}
	// b joins: a rebalance starts; b's second join waits for a.
	breq := rawJoin(grp, "", 30*time.Second, 500*time.Millisecond)
	r := b.request(breq).(*kmsg.JoinGroupResponse)
	breq.MemberID = r.MemberID
	b.send(breq)
	waitFor(t, "a's heartbeat to say REBALANCE_IN_PROGRESS", func() bool {
		return rawHeartbeat(a, grp, ja.MemberID, ja.Generation) == kerr.RebalanceInProgress.Code
	})
	// a keeps heartbeating (its session does not run out) but does not
	// rejoin: b's join completes after the rebalance timeout, without a.
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		resp, err := b.read(breq)
		if err != nil {
			done <- nil
			return
		}
		done <- resp.(*kmsg.JoinGroupResponse)
	}()
	var jb *kmsg.JoinGroupResponse
	deadline := time.After(60 * time.Second)
	for jb == nil {
		select {
		case jb = <-done:
			if jb == nil {
				t.Fatal("b's join: no answer")
			}
		case <-deadline:
			t.Fatal("b's join did not complete after a's rebalance timeout")
		case <-time.After(100 * time.Millisecond):
			rawHeartbeat(a, grp, ja.MemberID, ja.Generation)
		}
	}
	if jb.ErrorCode != 0 || jb.LeaderID != jb.MemberID || len(jb.Members) != 1 || jb.Generation <= ja.Generation {
		t.Fatalf("b's join: %v leader %q members %d gen %d, want b alone as leader past gen %d",
			codeName(jb.ErrorCode), jb.LeaderID, len(jb.Members), jb.Generation, ja.Generation)
	}
	if code := rawHeartbeat(a, grp, ja.MemberID, ja.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("dropped member's heartbeat: %v, want UNKNOWN_MEMBER_ID", codeName(code))
	}
	if sr := b.request(rawSync(grp, jb.MemberID, jb.Generation, map[string][]byte{jb.MemberID: []byte("B")})).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "B" {
		t.Fatalf("b's sync: %v %q", codeName(sr.ErrorCode), sr.MemberAssignment)
	}
	if code := rawHeartbeat(b, grp, jb.MemberID, jb.Generation); code != 0 {
		t.Fatalf("b's heartbeat in the stable group: %v", codeName(code))
	}
}

// TestSessionTimeoutRemoves: a member whose heartbeats stop is
// removed after its session timeout; the other then rebalances alone.
func TestSessionTimeoutRemoves(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "sto"
	a, b := ts.raw(), ts.raw()
	ja := joinNew(t, a, rawJoin(grp, "", 300*time.Millisecond, 30*time.Second))
	a.request(rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: []byte("A")}))
	// b joins with a long session; a stops heartbeating.
	breq := rawJoin(grp, "", 30*time.Second, 30*time.Second)
	breq.MemberID = b.request(breq).(*kmsg.JoinGroupResponse).MemberID
	jb := b.request(breq).(*kmsg.JoinGroupResponse)
	if jb.ErrorCode != 0 || len(jb.Members) != 1 || jb.LeaderID != jb.MemberID {
		t.Fatalf("b's join after a's session ran out: %v leader %q members %d", codeName(jb.ErrorCode), jb.LeaderID, len(jb.Members))
	}
	if code := rawHeartbeat(a, grp, ja.MemberID, ja.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %v, want UNKNOWN_MEMBER_ID", codeName(code))
	}
}

// TestGroupErrorCodes: the codes Kafka gives for a stale generation,
// an unknown member and an unknown group on Heartbeat, SyncGroup and
// OffsetCommit.
func TestGroupErrorCodes(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("ec", 1)
	const grp = "ecg"
	a := ts.raw()
	ja := joinNew(t, a, rawJoin(grp, "", 30*time.Second, 30*time.Second))
	a.request(rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: nil}))
	check := func(what string, got, want int16) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, codeName(got), codeName(want))
		}
	}
	check("heartbeat, stale generation", rawHeartbeat(a, grp, ja.MemberID, ja.Generation-1), kerr.IllegalGeneration.Code)
	check("heartbeat, unknown member", rawHeartbeat(a, grp, "nobody", ja.Generation), kerr.UnknownMemberID.Code)
	check("sync, stale generation", a.request(rawSync(grp, ja.MemberID, ja.Generation+1, nil)).(*kmsg.SyncGroupResponse).ErrorCode, kerr.IllegalGeneration.Code)
	check("sync, unknown member", a.request(rawSync(grp, "nobody", ja.Generation, nil)).(*kmsg.SyncGroupResponse).ErrorCode, kerr.UnknownMemberID.Code)
	// Joining with a member id the group never gave: UNKNOWN_MEMBER_ID.
	check("join, unknown member id", a.request(rawJoin(grp, "made-up", 30*time.Second, 30*time.Second)).(*kmsg.JoinGroupResponse).ErrorCode, kerr.UnknownMemberID.Code)
	// Another protocol type, or no protocol in common.
	other := rawJoin(grp, "", 30*time.Second, 30*time.Second)
	other.ProtocolType = "consumer"
	check("join, other protocol type", a.request(other).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol.Code)
	noCommon := rawJoin(grp, "", 30*time.Second, 30*time.Second)
	noCommon.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "q"}}
	check("join, no common protocol", a.request(noCommon).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol.Code)
}

// TestSyncProtocolMismatch: SyncGroup v5 names the protocol type
// and name; Kafka (KIP-559) answers INCONSISTENT_GROUP_PROTOCOL when they
// are not the group's.
func TestSyncProtocolMismatch(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "spm"
	a := ts.raw()
	ja := joinNew(t, a, rawJoin(grp, "", 30*time.Second, 30*time.Second))
	req := rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: []byte("A")})
	req.Protocol = kmsg.StringPtr("not-p")
	if code := a.request(req).(*kmsg.SyncGroupResponse).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync naming another protocol: %v, want INCONSISTENT_GROUP_PROTOCOL", codeName(code))
	}
	req = rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: []byte("A")})
	req.ProtocolType = kmsg.StringPtr("consumer")
	if code := a.request(req).(*kmsg.SyncGroupResponse).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync naming another protocol type: %v, want INCONSISTENT_GROUP_PROTOCOL", codeName(code))
	}
}

// twoMembers makes a group of two raw members, a the leader, both past
// their joins in one generation, neither synced.
func twoMembers(t *testing.T, ts *testServer, grp string) (a, b *rawConn, ja, jb *kmsg.JoinGroupResponse) {
	t.Helper()
	a, b = ts.raw(), ts.raw()
	first := joinNew(t, a, rawJoin(grp, "", 30*time.Second, 30*time.Second))
	a.request(rawSync(grp, first.MemberID, first.Generation, map[string][]byte{first.MemberID: nil}))
	breq := rawJoin(grp, "", 30*time.Second, 30*time.Second)
	breq.MemberID = b.request(breq).(*kmsg.JoinGroupResponse).MemberID
	b.send(breq)
	waitFor(t, "a rebalance", func() bool {
		return rawHeartbeat(a, grp, first.MemberID, first.Generation) == kerr.RebalanceInProgress.Code
	})
	ja = a.request(rawJoin(grp, first.MemberID, 30*time.Second, 30*time.Second)).(*kmsg.JoinGroupResponse)
	resp, err := b.read(breq)
	if err != nil {
		t.Fatal(err)
	}
	jb = resp.(*kmsg.JoinGroupResponse)
	if ja.ErrorCode != 0 || jb.ErrorCode != 0 || ja.LeaderID != ja.MemberID || len(ja.Members) != 2 {
		t.Fatalf("joins: %v %v, leader %q, %d members", codeName(ja.ErrorCode), codeName(jb.ErrorCode), ja.LeaderID, len(ja.Members))
	}
	return a, b, ja, jb
}

// TestFollowerSyncsFirst: a follower's SyncGroup sent before the
// leader's waits for it and gets its assignment; assignments the leader
// gives to members the group does not have are ignored.
func TestFollowerSyncsFirst(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "fsf"
	a, b, ja, jb := twoMembers(t, ts, grp)
	bs := rawSync(grp, jb.MemberID, jb.Generation, nil)
	b.send(bs)
	ar := a.request(rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{
		ja.MemberID: []byte("A"), jb.MemberID: []byte("B"), "ghost": []byte("G"),
	})).(*kmsg.SyncGroupResponse)
	if ar.ErrorCode != 0 || string(ar.MemberAssignment) != "A" {
		t.Fatalf("leader's sync: %v %q", codeName(ar.ErrorCode), ar.MemberAssignment)
	}
	resp, err := b.read(bs)
	if err != nil {
		t.Fatal(err)
	}
	if br := resp.(*kmsg.SyncGroupResponse); br.ErrorCode != 0 || string(br.MemberAssignment) != "B" {
		t.Fatalf("follower's sync: %v %q, want its assignment B", codeName(br.ErrorCode), br.MemberAssignment)
	}
}

// TestLeaderOmitsMember: a leader's assignment that leaves a member
// out gives that member an empty assignment, as Kafka does ("Setting
// empty assignments for members ..."), not an error that makes it rejoin
// (and the group rebalance again, with the same outcome, without end).
func TestLeaderOmitsMember(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "lom"
	a, b, ja, jb := twoMembers(t, ts, grp)
	// The follower first, then the leader, whose assignment names only
	// itself.
	bs := rawSync(grp, jb.MemberID, jb.Generation, nil)
	b.send(bs)
	ar := a.request(rawSync(grp, ja.MemberID, ja.Generation, map[string][]byte{ja.MemberID: []byte("A")})).(*kmsg.SyncGroupResponse)
	if ar.ErrorCode != 0 {
		t.Fatalf("leader's sync: %v", codeName(ar.ErrorCode))
	}
	resp, err := b.read(bs)
	if err != nil {
		t.Fatal(err)
	}
	if br := resp.(*kmsg.SyncGroupResponse); br.ErrorCode != 0 || len(br.MemberAssignment) != 0 {
		t.Errorf("waiting follower left out of the assignment: %v %q, want NONE and an empty assignment", codeName(br.ErrorCode), br.MemberAssignment)
	}
	// A follower syncing after the leader: the same.
	if br := b.request(rawSync(grp, jb.MemberID, jb.Generation, nil)).(*kmsg.SyncGroupResponse); br.ErrorCode != 0 {
		t.Errorf("follower left out, syncing after the leader: %v, want NONE and an empty assignment", codeName(br.ErrorCode))
	}
}

// TestPendingMemberExpires: an id given out with MEMBER_ID_REQUIRED
// that never joins is forgotten after the session timeout the request
// named, as Kafka's pending members are; the server does not keep every
// id it ever handed out.
func TestPendingMemberExpires(t *testing.T) {
	ts := startServer(t, fastGroups)
	const grp = "pme"
	a := ts.raw()
	req := rawJoin(grp, "", 200*time.Millisecond, 200*time.Millisecond)
	var ids []string
	for range 1000 {
		r := a.request(req).(*kmsg.JoinGroupResponse)
		if r.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("join: %v", codeName(r.ErrorCode))
		}
		ids = append(ids, r.MemberID)
	}
	pending := func() int {
		g := ts.srv.groups.group(grp, false)
		if g == nil {
			return 0 // dropped already, with nothing pending
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pending)
	}
	// Kafka forgets them one session timeout later.
	waitFor(t, "the pending ids to expire", func() bool { return pending() == 0 })
	// And then the group, which had nothing else.
	waitFor(t, "the idle group to be dropped", func() bool { return ts.srv.groups.group(grp, false) == nil })
	req.MemberID = ids[0]
	if r := a.request(req).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("join with an id given out with a 200ms session, expired: %v, want UNKNOWN_MEMBER_ID", codeName(r.ErrorCode))
	}
}

// TestConsumerNonRejoinerReleases: with the consumer protocol, a
// raw member that owns every partition and then, once a franz-go member
// joined, keeps heartbeating but never rejoins, is dropped at the
// rebalance timeout; its partitions pass to the franz-go member, which
// ends up owning them all, in its client and in runnel.
func TestConsumerNonRejoinerReleases(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 2
	ts.createTopic("cnr", parts)
	meta := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{"cnr"}}).AppendTo(nil)
	req := rawJoin("cnrg", "", 30*time.Second, 2*time.Second)
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}}
	a := ts.raw()
	ja := joinNew(t, a, req)
	if ja.ErrorCode != 0 {
		t.Fatalf("raw join: %v", codeName(ja.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation = 3, "cnrg", ja.MemberID, ja.Generation
	waitFor(t, "the raw member to own both partitions in runnel", func() bool {
		sr := a.request(sync).(*kmsg.SyncGroupResponse)
		var got kmsg.ConsumerMemberAssignment
		if sr.ErrorCode != 0 || got.ReadFrom(sr.MemberAssignment) != nil || len(got.Topics) != 1 {
			return false
		}
		return len(got.Topics[0].Partitions) == parts
	})
	m := ts.member("k", nil, append(groupOpts("cnrg", "cnr"), kgo.RebalanceTimeout(2*time.Second), kgo.Balancers(kgo.RangeBalancer()))...)
	// The raw member heartbeats through the rebalance without rejoining.
	stop := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Version, hb.Group, hb.MemberID, hb.Generation = 4, "cnrg", ja.MemberID, ja.Generation
			a.send(hb)
			if _, err := a.read(hb); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-hbDone }()
	waitFor(t, "the franz-go member to own every partition", func() bool {
		if len(m.owned()) != parts {
			return false
		}
		for _, o := range runnelOwners(t, ts.log, "cnrg", "cnr") {
			if o == "" || o == MemberNamePrefix+ja.MemberID {
				return false
			}
		}
		return true
	})
}

// TestPendingMemberLeaves: a client that got an id with
// MEMBER_ID_REQUIRED and closes before joining with it (librdkafka,
// kgo and the Java client send LeaveGroup with it) is answered NONE, as
// Kafka removes a pending member on LeaveGroup, and the id is gone.
func TestPendingMemberLeaves(t *testing.T) {
	ts := startServer(t, fastGroups)
	a := ts.raw()
	req := rawJoin("pml", "", 30*time.Second, 30*time.Second)
	r := a.request(req).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("join: %v", codeName(r.ErrorCode))
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 3, "pml"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = r.MemberID
	leave.Members = append(leave.Members, lm)
	resp := a.request(leave).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != 0 {
		code := resp.ErrorCode
		if len(resp.Members) == 1 {
			code = resp.Members[0].ErrorCode
		}
		t.Errorf("LeaveGroup of a pending member: %v, want NONE", codeName(code))
	}
	req.MemberID = r.MemberID
	if jr := a.request(req).(*kmsg.JoinGroupResponse); jr.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("join with the id after it left: %v, want UNKNOWN_MEMBER_ID", codeName(jr.ErrorCode))
	}
}
