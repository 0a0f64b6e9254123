package kafka

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOpts are fast group timings for tests (the server's minimum session
// timeout is lowered to match).
func groupOpts(group string, topics ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(1500 * time.Millisecond),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
	}
}

var fastGroups = &Options{MinSessionTimeout: 100 * time.Millisecond}

// tracked is a group member whose assignment the test follows through the
// client's callbacks, and which consumes in the background.
type tracked struct {
	name string
	cl   *kgo.Client
	mu   sync.Mutex
	own  map[int32]bool
	seen map[string]int // record value → times consumed
	lost int            // OnPartitionsRevoked and OnPartitionsLost calls that took partitions away
	stop context.CancelFunc
	done chan struct{}
}

func (ts *testServer) member(name string, extra []kgo.Opt, opts ...kgo.Opt) *tracked {
	m := &tracked{name: name, own: map[int32]bool{}, seen: map[string]int{}, done: make(chan struct{})}
	cbs := []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { m.set(a, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.set(r, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.set(r, false) }),
		kgo.ClientID(name),
	}
	m.cl = ts.client(append(append(opts, cbs...), extra...)...)
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			m.mu.Lock()
			for _, r := range fs.Records() {
				m.seen[string(r.Value)]++
			}
			m.mu.Unlock()
		}
	}()
	ts.t.Cleanup(func() { m.halt() })
	return m
}

// halt stops polling (the client stays a member until closed).
func (m *tracked) halt() {
	m.stop()
	<-m.done
}

func (m *tracked) set(ps map[string][]int32, own bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, list := range ps {
		if !own && len(list) > 0 {
			m.lost++
		}
		for _, p := range list {
			if own {
				m.own[p] = true
			} else {
				delete(m.own, p)
			}
		}
	}
}

func (m *tracked) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.own {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (m *tracked) consumed() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.seen {
		out[k] = v
	}
	return out
}

// consumedSpread says whether m consumed every record that
// produceSpread(…, parts, perPartition, tag) wrote.
func (m *tracked) consumedSpread(parts, perPartition int, tag string) bool {
	got := m.consumed()
	for p := range parts {
		for i := range perPartition {
			if got[fmt.Sprintf("%s-%d-%d", tag, p, i)] == 0 {
				return false
			}
		}
	}
	return true
}

// polledNative is a native consumer polling in the background until the
// test ends; partitions may be called meanwhile.
type polledNative struct {
	mu sync.Mutex // held through each Poll
	c  *runnel.Consumer
}

func pollNative(t *testing.T, l *runnel.Log, topic string, opts *runnel.ConsumerOptions) *polledNative {
	t.Helper()
	c, err := l.Consumer(topic, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := &polledNative{c: c}
	ctx, cancel := context.WithCancel(context.Background())
	polling := make(chan struct{})
	go func() {
		defer close(polling)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			n.mu.Lock()
			c.Poll(pctx)
			n.mu.Unlock()
			pcancel()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-polling
		c.Close()
	})
	return n
}

func (n *polledNative) partitions() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.c.Partitions()
}

// killable is a client's dialer whose connections kill cuts, refusing
// new ones after: the client dies without a LeaveGroup.
type killable struct {
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func (k *killable) dial(ctx context.Context, network, host string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return nil, fmt.Errorf("killed")
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		k.conns = append(k.conns, nc)
	}
	return nc, err
}

func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	for _, nc := range k.conns {
		nc.Close()
	}
}

// balanced reports whether the members own disjoint partition sets that
// cover 0..n-1, each within one of an even share.
func balanced(n int, members ...*tracked) bool {
	seen := map[int32]bool{}
	for _, m := range members {
		ps := m.owned()
		if len(ps) < n/len(members) || len(ps) > (n+len(members)-1)/len(members) {
			return false
		}
		for _, p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == n
}

// runnelOwners returns, per partition, the runnel member name that owns
// it in group for topic ("" if none).
func runnelOwners(t *testing.T, l *runnel.Log, group, topic string) []string {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, gt := range info.Topics {
		if gt.Topic != topic {
			continue
		}
		owners := make([]string, len(gt.Partitions))
		for _, gm := range gt.Members {
			for _, p := range gm.Partitions {
				owners[p] = gm.Name
			}
		}
		return owners
	}
	return nil
}

// ownedByKind splits a topic's partitions by the kind of runnel member
// that owns them in group: Kafka members (of any server) or native ones;
// all is false while some partition has no owner.
func ownedByKind(t *testing.T, l *runnel.Log, group, topic string) (kafka, native []int, all bool) {
	t.Helper()
	for p, o := range runnelOwners(t, l, group, topic) {
		switch {
		case strings.HasPrefix(o, "kafka/"):
			kafka = append(kafka, p)
		case o != "":
			native = append(native, p)
		default:
			return nil, nil, false
		}
	}
	return kafka, native, true
}

func produceSpread(t *testing.T, l *runnel.Log, topic string, partitions, perPartition int, tag string) {
	t.Helper()
	var recs []runnel.Record
	for p := range partitions {
		for i := range perPartition {
			recs = append(recs, runnel.Record{Partition: p, Value: []byte(fmt.Sprintf("%s-%d-%d", tag, p, i))})
		}
	}
	produceNative(t, l, topic, recs)
}

func TestGroupOfThreeRebalances(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 6
	ts.createTopic("g3", parts)
	produceSpread(t, ts.log, "g3", parts, 20, "a")

	a := ts.member("a", nil, groupOpts("g3grp", "g3")...)
	b := ts.member("b", nil, groupOpts("g3grp", "g3")...)
	// c's connections can be cut, to kill it without a LeaveGroup.
	var cKill killable
	c := ts.member("c", []kgo.Opt{kgo.Dialer(cKill.dial)}, groupOpts("g3grp", "g3")...)

	waitFor(t, "three members to share six partitions", func() bool { return balanced(parts, a, b, c) })
	waitFor(t, "every record consumed", func() bool {
		// At least once: a record read just before its partition moved
		// is read again by the new owner.
		all := map[string]bool{}
		for _, m := range []*tracked{a, b, c} {
			for v := range m.consumed() {
				all[v] = true
			}
		}
		return len(all) == parts*20
	})
	// runnel agrees: each partition is owned by a Kafka member's runnel
	// membership.
	for p, owner := range runnelOwners(t, ts.log, "g3grp", "g3") {
		if len(owner) < 6 || owner[:6] != "kafka/" {
			t.Fatalf("partition %d owned by %q in runnel", p, owner)
		}
	}

	// One leaves cleanly: the other two take its partitions.
	b.halt()
	b.cl.Close()
	waitFor(t, "two members to share six partitions after a leave", func() bool { return balanced(parts, a, c) })

	// One is killed: its connections close, no LeaveGroup; after its
	// session timeout the last member has everything.
	c.halt()
	cKill.kill()
	waitFor(t, "the last member to own every partition after a kill", func() bool {
		return len(a.owned()) == parts
	})
	waitFor(t, "the session timeout to be logged", func() bool { return logsContain(ts, "session timed out") })

	// New records all reach the survivor.
	produceSpread(t, ts.log, "g3", parts, 5, "b")
	waitFor(t, "new records consumed by the survivor", func() bool { return a.consumedSpread(parts, 5, "b") })
}

func TestGroupCommitsAreRunnelOffsets(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("co", 2)
	produceSpread(t, ts.log, "co", 2, 10, "x")
	cl := ts.client(append(groupOpts("cogrp", "co"), kgo.DisableAutoCommit())...)
	recs := pollN(t, cl, 20)
	if err := cl.CommitRecords(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	info, err := ts.log.DescribeGroup("cogrp")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Committed != 10 || gp.Lag != 0 {
			t.Errorf("partition %d: runnel says committed %d lag %d, want 10 and 0", gp.Partition, gp.Committed, gp.Lag)
		}
	}
	// The Kafka client reads them back too.
	cl.Close()

	// A native member resumes where the Kafka member stopped.
	produceSpread(t, ts.log, "co", 2, 1, "y")
	if got := nativeValues(t, ts.log, "co", "cogrp", 2); !slices.Equal(got, []string{"y-0-0", "y-1-0"}) {
		t.Fatalf("native member resumed with %v, want only the two new records", got)
	}
}

// nativeValues joins group as a native member of topic (from the start
// if the group has no commits) and returns the values of the first n
// records it polls, sorted, leaving the group when done.
func nativeValues(t *testing.T, l *runnel.Log, topic, group string, n int) []string {
	t.Helper()
	nc, err := l.Consumer(topic, &runnel.ConsumerOptions{Group: group, Start: runnel.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < n {
		rs, err := nc.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got = append(got, string(r.Value))
		}
	}
	slices.Sort(got)
	return got
}

func TestGroupResetIsSeenByKafka(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("rs", 1)
	produceSpread(t, ts.log, "rs", 1, 10, "r")
	if _, err := ts.log.ResetGroupOffsets(context.Background(), "rsgrp", "rs", runnel.AtOffset(7), nil); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(groupOpts("rsgrp", "rs")...)
	got := pollN(t, cl, 3)
	if got[0].Offset != 7 {
		t.Fatalf("Kafka member started at offset %d, want the reset offset 7", got[0].Offset)
	}
}

func TestGroupMixedWithNativeMember(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("mx", parts)
	k := ts.member("k", nil, groupOpts("mxgrp", "mx")...)
	waitFor(t, "the Kafka member to own every partition", func() bool { return len(k.owned()) == parts })

	// A native member joins: the Kafka member must give up half, and the
	// native one may only take a partition the Kafka client let go of.
	var mu sync.Mutex
	var overlap []int
	pollNative(t, ts.log, "mx", &runnel.ConsumerOptions{
		Group: "mxgrp", Start: runnel.Earliest,
		OnAssigned: func(_ *runnel.Consumer, ps []int) {
			held := k.owned()
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				// The server releases a partition only after the Kafka
				// client was given an assignment without it and joined
				// again, which it does after its revoke callback.
				if slices.Contains(held, int32(p)) {
					overlap = append(overlap, p)
				}
			}
		},
	})
	waitFor(t, "the partitions to be split between the Kafka and the native member", func() bool {
		owners := runnelOwners(t, ts.log, "mxgrp", "mx")
		kafka, nat := 0, 0
		for _, o := range owners {
			switch {
			case len(o) > 6 && o[:6] == "kafka/":
				kafka++
			case o != "":
				nat++
			}
		}
		return kafka == 2 && nat == 2 && len(k.owned()) == 2
	})
	// What the Kafka client holds and what runnel says it owns agree, and
	// the native member owns the rest.
	owners := runnelOwners(t, ts.log, "mxgrp", "mx")
	for _, p := range k.owned() {
		if o := owners[p]; len(o) < 6 || o[:6] != "kafka/" {
			t.Errorf("the Kafka client holds partition %d, runnel says %q owns it", p, o)
		}
	}
	mu.Lock()
	if len(overlap) > 0 {
		t.Errorf("the native member took %v while the Kafka client still held them", overlap)
	}
	mu.Unlock()
}

// TestGroupKeepsOnlyClosingMembers: a group whose members come and go
// does not keep every member it ever had. Each member here is killed (its
// connections cut, no LeaveGroup), so that its session times out. Before
// the next one goes, the last one's runnel side is waited out, so that
// the removal finds it closed and lets it go. Once the last has left
// runnel, the group, idle, is dropped from the server.
func TestGroupKeepsOnlyClosingMembers(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("cg", 1)
	const rounds = 5
	var g *group
	for range rounds {
		var k killable
		ts.client(append(groupOpts("cggrp", "cg"), kgo.Dialer(k.dial), kgo.SessionTimeout(300*time.Millisecond))...)
		waitFor(t, "the member to own the partition", func() bool {
			info, err := ts.log.DescribeGroup("cggrp")
			return err == nil && len(info.Topics) == 1 && len(info.Topics[0].Members) == 1 &&
				strings.HasPrefix(info.Topics[0].Members[0].Name, "kafka/")
		})
		g = ts.srv.groups.group("cggrp", false)
		waitFor(t, "the members removed before to have closed", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			for _, rn := range g.leaving {
				select {
				case <-rn.done:
				default:
					return false
				}
			}
			return true
		})
		k.kill()
		waitFor(t, "the killed member's session to time out", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.members) == 0
		})
	}
	g.mu.Lock()
	n := len(g.leaving)
	g.mu.Unlock()
	if n > 1 {
		t.Fatalf("after %d members came and went the group keeps %d of them, want only the last", rounds, n)
	}
	waitFor(t, "the idle group to be dropped", func() bool { return ts.srv.groups.group("cggrp", false) == nil })
}

// TestSubscribedTopics: the topics of consumer protocol metadata are read
// at every version, and from kafka-go's, which says version 1 but ends
// after the user data; what cannot be read subscribes to nothing,
// without allocating for a count it does not have.
func TestSubscribedTopics(t *testing.T) {
	for v := int16(0); v <= 3; v++ {
		meta := kmsg.ConsumerMemberMetadata{Version: v, Topics: []string{"a", "b"}}
		if got := subscribedTopics(meta.AppendTo(nil)); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("version %d: %v", v, got)
		}
	}
	kafkaGo := kbin.AppendInt16(nil, 1)
	kafkaGo = kbin.AppendArrayLen(kafkaGo, 1)
	kafkaGo = kbin.AppendString(kafkaGo, "t")
	kafkaGo = kbin.AppendNullableBytes(kafkaGo, nil)
	if got := subscribedTopics(kafkaGo); !slices.Equal(got, []string{"t"}) {
		t.Errorf("kafka-go's metadata: %v", got)
	}
	huge := kbin.AppendArrayLen(kbin.AppendInt16(nil, 0), 1<<30)
	for _, bad := range [][]byte{nil, {0}, huge, append(kbin.AppendArrayLen(kbin.AppendInt16(nil, 0), 2), 0, 1, 'x')} {
		if got := subscribedTopics(bad); got != nil {
			t.Errorf("%x: %v, want nothing", bad, got)
		}
	}
}

// TestGroupStaticMember: a static member (group.instance.id) that comes
// back as a new instance replaces the old one at once. It gets the
// partitions without waiting for the old instance's session, three
// minutes here, past every wait of the test, to time out; the old
// instance's requests are fenced; a LeaveGroup naming only the instance
// id removes the member.
func TestGroupStaticMember(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("st", 2)
	opts := func(k *killable) []kgo.Opt {
		return append(groupOpts("stgrp", "st"), kgo.InstanceID("worker-1"), kgo.Dialer(k.dial),
			kgo.SessionTimeout(3*time.Minute), kgo.RebalanceTimeout(3*time.Minute))
	}
	var k1 killable
	first := ts.member("first", nil, opts(&k1)...)
	waitFor(t, "the first instance to own both partitions", func() bool { return len(first.owned()) == 2 })
	oldID, gen := first.cl.GroupMetadata()
	first.halt()
	k1.kill()

	var k2 killable
	second := ts.member("second", nil, opts(&k2)...)
	waitFor(t, "the new instance to own both partitions", func() bool { return len(second.owned()) == 2 })
	newID, newGen := second.cl.GroupMetadata()
	if newID == oldID {
		t.Fatalf("the new instance has the old one's member id %s", oldID)
	}
	// Unlike Kafka, the group rebalances: the partitions move through
	// runnel's locks.
	if newGen <= gen {
		t.Errorf("generation %d after the new instance joined, want past %d", newGen, gen)
	}
	for p, o := range runnelOwners(t, ts.log, "stgrp", "st") {
		if o != MemberNamePrefix+newID {
			t.Errorf("partition %d owned by %q in runnel, want the new instance", p, o)
		}
	}

	rc := ts.raw()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = 4, "stgrp", oldID, gen, kmsg.StringPtr("worker-1")
	if code := rc.request(hb).(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Errorf("the old instance's heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}

	second.halt()
	k2.kill()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 4, "stgrp"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = kmsg.StringPtr("worker-1")
	leave.Members = append(leave.Members, lm)
	resp := rc.request(leave).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("LeaveGroup by instance id: %+v", resp)
	}
	waitFor(t, "the static member's partitions to be released", func() bool {
		return !slices.ContainsFunc(runnelOwners(t, ts.log, "stgrp", "st"), func(o string) bool { return o != "" })
	})
}

// TestGroupStaticMemberFencedWhileJoining: an old instance of a static
// member whose JoinGroup still waits when its new instance joins gets
// FENCED_INSTANCE_ID for it, as from Kafka.
func TestGroupStaticMemberFencedWhileJoining(t *testing.T) {
	ts := startServer(t, fastGroups)
	join := func(memberID string, instanceID *string) *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID = 5, "sf", memberID, instanceID
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = 60000, 60000, "other"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "p"}}
		return req
	}
	// A plain member joins and does not come back for the next
	// rebalance, so the static member's join waits.
	plain := ts.raw()
	id := plain.request(join("", nil)).(*kmsg.JoinGroupResponse).MemberID
	if r := plain.request(join(id, nil)).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("plain member's join: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	old, newer := ts.raw(), ts.raw()
	oldJoin := join("", kmsg.StringPtr("s"))
	old.send(oldJoin)
	g := ts.srv.groups.group("sf", false)
	waitFor(t, "the old instance's join to wait", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		m := g.static("s")
		return m != nil && m.join != nil
	})
	newer.send(join("", kmsg.StringPtr("s")))
	resp, err := old.read(oldJoin)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("the old instance's waiting join: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}
}

// TestCommitOfAnotherMembersPartition: a member may commit only the
// partitions runnel says it owns; a commit of another member's partition
// gets REBALANCE_IN_PROGRESS and stores nothing, while its own partition
// in the same request is stored.
func TestCommitOfAnotherMembersPartition(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 2
	ts.createTopic("own", parts)
	produceSpread(t, ts.log, "own", parts, 10, "x")
	noAuto := []kgo.Opt{kgo.DisableAutoCommit()}
	a := ts.member("a", noAuto, groupOpts("owngrp", "own")...)
	b := ts.member("b", noAuto, groupOpts("owngrp", "own")...)
	waitFor(t, "two members to share two partitions", func() bool { return balanced(parts, a, b) })
	mine, theirs := a.owned()[0], b.owned()[0]

	memberID, gen := a.cl.GroupMetadata()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.MemberID = 8, "owngrp", gen, memberID
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "own"
	for _, p := range []int32{mine, theirs} {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, 3
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), a.cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[int32]int16{}
	for _, rp := range resp.Topics[0].Partitions {
		codes[rp.Partition] = rp.ErrorCode
	}
	if codes[mine] != 0 || codes[theirs] != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit of own partition %d and of the other member's %d: codes %v, want 0 and REBALANCE_IN_PROGRESS", mine, theirs, codes)
	}
	info, err := ts.log.DescribeGroup("owngrp")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		want := int64(-1)
		if int32(gp.Partition) == mine {
			want = 3
		}
		if gp.Committed != want {
			t.Errorf("partition %d committed at %d, want %d", gp.Partition, gp.Committed, want)
		}
	}
}

// TestSettledOneDamagedTopic: a group's damaged offsets file for one topic
// does not keep a member's ownership from counting as settled, whether the
// member subscribes to that topic or not; any error from DescribeGroup
// made it unsettled, so every SyncGroup waited the whole settle time.
func TestSettledOneDamagedTopic(t *testing.T) {
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts.createTopic("a", 1)
	ts.createTopic("t", 2)
	if _, err := ts.log.ResetGroupOffsets(ctx, "g", "a", runnel.Earliest, nil); err != nil {
		t.Fatal(err)
	}
	damageOffsets(t, ts.log, "g", "a")

	rm := subscribedMember(t, ts, "g", "a", "t")
	waitFor(t, "the member to own t's partitions", func() bool {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		return len(rm.owned["t"]) == 2
	})
	// The member cannot join a (its Consumer fails on the damaged file):
	// no wait mends that.
	for _, topics := range [][]string{{"t"}, {"a", "t"}} {
		if !rm.settled(topics) {
			t.Errorf("settled(%v) with a's offsets damaged: false, want true", topics)
		}
	}
	ts.createTopic("u", 1)
	if rm.settled([]string{"t", "u"}) {
		t.Errorf("settled with u not joined: true")
	}
}

// TestValidGroup: a group name is checked by runnel's rule without the
// group's files being read (nothing allocated): it was checked through
// DescribeGroup, which read the group's directory and every offsets file
// at each JoinGroup, OffsetCommit, OffsetDelete and DescribeGroups.
func TestValidGroup(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 1)
	if _, err := ts.log.ResetGroupOffsets(context.Background(), "g", "t", runnel.Earliest, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"g": true, "nope": true, "a.b_c-D9": true, strings.Repeat("x", 249): true,
		".": true, "..": true, "../g": true, "a b": true, "app:prod/1 x": true, "é": true, strings.Repeat(":", 83): true,
		"": false, "g\xff": false, strings.Repeat("x", 250): false, strings.Repeat(":", 84): false,
	} {
		if got := ts.srv.validGroup(name); got != want {
			t.Errorf("validGroup(%.20q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(10, func() { ts.srv.validGroup("g") }); n != 0 {
		t.Errorf("validGroup of a group with offsets: %v allocations, want none (nothing read)", n)
	}
}
