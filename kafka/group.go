package kafka

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's classic group protocol, with the server as the coordinator of
// its Kafka members, and runnel's groups underneath.
//
// A group goes Empty → PreparingRebalance (a member joined, left, timed
// out, or runnel moved a partition) → CompletingRebalance (every member
// rejoined, or the rebalance timeout dropped those that did not; the
// JoinGroup responses name a leader and a generation) → Stable (the
// leader's SyncGroup arrived).
//
// For the consumer protocol the leader's assignment is not used: each
// Kafka member is a member of runnel group G for each topic it subscribes
// to (group_member.go), runnel's byte-range locks decide which partitions
// it owns, and SyncGroup hands each member exactly those. So Kafka
// members, native runnel members in any process, and Kafka members of
// other servers on the same directory share the partitions, each
// partition owned by one of them at a time. Other protocol types (for
// example Kafka Connect's) have nothing to do with runnel's partitions
// and get the leader's assignment, as from any Kafka broker.

const consumerProtocol = "consumer"

// syncSettle bounds how long SyncGroup waits for runnel's ownership to
// settle (every partition owned by some member) before it answers with
// what the member owns; a later change triggers another rebalance.
const syncSettle = 2 * time.Second

type groupState int

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

func (st groupState) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[st]
}

// coordinator holds the server's Kafka groups.
type coordinator struct {
	s      *Server
	mu     sync.Mutex
	groups map[string]*group
	closed bool
	state  *groupStateFile // nil: groups are not kept (group_resume.go)
}

func newCoordinator(s *Server) *coordinator {
	return &coordinator{s: s, groups: map[string]*group{}}
}

// group returns the named group, creating it (Empty) if create is set.
func (co *coordinator) group(name string, create bool) *group {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil && create && !co.closed {
		g = &group{co: co, name: name, members: map[string]*member{}, pending: map[string]*time.Timer{}}
		co.groups[name] = g
	}
	return g
}

// withMembers names the groups that have Kafka members here.
func (co *coordinator) withMembers() []string {
	co.mu.Lock()
	groups := slices.Collect(maps.Values(co.groups))
	co.mu.Unlock()
	var names []string
	for _, g := range groups {
		g.mu.Lock()
		if len(g.members) > 0 {
			names = append(names, g.name)
		}
		g.mu.Unlock()
	}
	return names
}

// forget drops a group that DeleteGroups deleted, unless a member joined
// it meanwhile: a group of that name starts anew (its generations from 1),
// as in Kafka. A JoinGroup that found the dropped group before it went
// finds it Dead, and then a new one.
func (co *coordinator) forget(name string) {
	co.drop(name, func(g *group) bool { return len(g.members) == 0 && g.state == stateEmpty })
}

// dropIdle drops g if nothing is left of it here: no members, none
// pending, none still leaving runnel. Kafka keeps an empty group until
// its offsets expire; here the offsets are runnel's, and the group's
// state here is only its Kafka members', so a client naming new groups
// in a loop does not grow the server.
func (co *coordinator) dropIdle(g *group) {
	co.drop(g.name, func(cur *group) bool {
		if cur != g {
			return false // dropped already, and maybe made anew
		}
		g.pruneLeft()
		return len(g.members) == 0 && len(g.pending) == 0 && len(g.leaving) == 0 && g.state == stateEmpty
	})
}

// drop removes group name, marked Dead, if gone says so (called with the
// group's lock held), and waits for its members to leave runnel.
func (co *coordinator) drop(name string, gone func(*group) bool) {
	co.mu.Lock()
	g := co.groups[name]
	if g == nil {
		co.mu.Unlock()
		return
	}
	g.mu.Lock()
	dead := gone(g)
	if dead {
		g.state = stateDead
		delete(co.groups, name)
	}
	g.mu.Unlock()
	co.mu.Unlock()
	if dead {
		// Its members left runnel's group before DeleteGroup could
		// succeed; this only collects how their Consumers closed.
		if err := g.waitMembersGone(); err != nil {
			co.s.opts.Logger.Warn("kafka: closing a dropped group's members", "group", name, "err", err)
		}
	}
}

// close ends every group: members leave their runnel groups, releasing
// their partitions under their leases (their clients, alive, fetch on
// from the next server until their next heartbeat, as after a crash), and
// waiting requests are answered.
func (co *coordinator) close() error {
	co.mu.Lock()
	// The members removed here are not leaving: the file keeps them for
	// the next server at the address.
	state := co.state
	state.freeze()
	co.closed = true
	groups := co.groups
	co.groups = map[string]*group{}
	co.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		for _, m := range g.members {
			if m.rn != nil {
				m.rn.abandonOnClose()
			}
			g.removeLocked(m, "server shutting down")
		}
		g.state = stateDead
		g.mu.Unlock()
	}
	var errs []error
	for _, g := range groups {
		errs = append(errs, g.waitMembersGone())
	}
	// Let go of the file once the members have let go of their
	// partitions: the next server's members take them back.
	errs = append(errs, state.close())
	return errors.Join(errs...)
}

type group struct {
	co   *coordinator
	name string

	mu           sync.Mutex
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	order        []string               // member ids in join order: the leader is the first still there
	pending      map[string]*time.Timer // ids given out with MEMBER_ID_REQUIRED, not joined yet, each until its session timeout
	joinTimer    *time.Timer            // ends the join phase at the rebalance timeout
	round        int                    // counts join phases, so a stale timer does nothing
	again        bool                   // rebalance once this one completes
	leaving      []*runnelMember        // removed members whose runnel side is still closing
	syncCond     *sync.Cond             // non-consumer protocols: the leader's assignment arrived
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	host       string
	protocols  []kmsg.JoinGroupRequestProtocol
	session    time.Duration
	rebalance  time.Duration
	timer      *time.Timer // session expiry

	join        chan *kmsg.JoinGroupResponse // set while its JoinGroup waits
	joinVersion int16
	assignment  []byte // the last SyncGroup answer
	synced      int32  // generation of that answer
	refused     bool   // answered ILLEGAL_GENERATION since it last joined; counts only for a join that does not say what the client owns (runnelMember.subscribe)

	rn *runnelMember // consumer protocol: its runnel memberships
}

// newMemberID makes a member id as Kafka's: the client id and a random
// suffix.
func newMemberID(clientID string) string {
	var b [8]byte
	rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// protocolNames lists a member's protocols.
func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name })
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// touch restarts m's session timer.
func (g *group) touch(m *member) {
	if m.timer != nil {
		m.timer.Reset(m.session)
		return
	}
	m.timer = time.AfterFunc(m.session, func() { g.expire(m) })
}

// expire removes a member whose session timed out (no heartbeat): its
// partitions pass to the others at once, unless the server is shutting
// down.
func (g *group) expire(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[m.id] != m {
		return
	}
	if m.join != nil {
		// Waiting in JoinGroup: the rebalance timeout governs it.
		g.touch(m)
		return
	}
	g.co.s.opts.Logger.Info("kafka: group member session timed out", "group", g.name, "member", m.id, "session", m.session)
	if g.co.s.closing.Load() && m.rn != nil {
		// The server, shutting down, answers no heartbeat while it waits
		// for requests under way: the client is not gone, and fetches on
		// from the next server, so its partitions keep their lease as at
		// the shutdown's end (coordinator.close).
		m.rn.abandonOnClose()
	}
	g.removeLocked(m, "session timeout")
	g.membershipChanged()
}

// answerJoin answers m's waiting JoinGroup, if any, with an error.
func (m *member) answerJoin(code int16) {
	if m.join == nil {
		return
	}
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version, r.ErrorCode, r.MemberID = m.joinVersion, code, m.id
	m.join <- r
	m.join = nil
}

// removeLocked drops a member: a waiting JoinGroup is answered, its runnel
// memberships are closed (in the background; their partitions pass to
// the others when that is done).
func (g *group) removeLocked(m *member, why string) {
	delete(g.members, m.id)
	g.order = slices.DeleteFunc(g.order, func(id string) bool { return id == m.id })
	if m.timer != nil {
		m.timer.Stop()
	}
	m.answerJoin(errUnknownMemberID)
	if m.rn != nil {
		g.pruneLeft()
		g.leaving = append(g.leaving, m.rn)
		m.rn.close()
	}
	if g.leader == m.id {
		g.leader = ""
	}
	if g.syncCond != nil {
		g.syncCond.Broadcast()
	}
	g.persistLocked() // it does not come back with a restart
	g.co.s.opts.Logger.Debug("kafka: group member removed", "group", g.name, "member", m.id, "why", why)
}

// pruneLeft drops the removed members that have left runnel, so that a
// long-lived group whose members come and go keeps only those still
// closing. How their Consumers closed is logged, as close would report it.
func (g *group) pruneLeft() {
	g.leaving = slices.DeleteFunc(g.leaving, func(rn *runnelMember) bool {
		select {
		case <-rn.done:
		default:
			return false
		}
		if err := rn.wait(); err != nil {
			g.co.s.opts.Logger.Warn("kafka: closing a group member's runnel consumers", "group", g.name, "member", rn.id, "err", err)
		}
		return true
	})
}

// waitMembersGone waits until removed members have left runnel.
func (g *group) waitMembersGone() error {
	g.mu.Lock()
	leaving := g.leaving
	g.leaving = nil
	g.mu.Unlock()
	var errs []error
	for _, rn := range leaving {
		errs = append(errs, rn.wait())
	}
	return errors.Join(errs...)
}

// membershipChanged starts a rebalance after members left or joined, or
// empties the group.
func (g *group) membershipChanged() {
	switch {
	case len(g.members) == 0 && g.state != statePreparing:
		g.state = stateEmpty
		g.generation++
		g.protocol, g.leader = "", ""
		g.emptied()
	case g.state == statePreparing:
		g.maybeCompleteJoin()
	default:
		g.prepareRebalance()
	}
}

// emptied drops the group, once the members it had have left runnel, if
// it is still idle then (dropIdle). Called with g.mu held, as the group
// becomes Empty. It waits for them without taking them off g.leaving: a
// LeaveGroup waits for its own there before it answers.
func (g *group) emptied() {
	leaving := slices.Clone(g.leaving)
	go func() {
		for _, rn := range leaving {
			<-rn.done
		}
		g.co.dropIdle(g)
	}()
}

// addPending records an id given out with MEMBER_ID_REQUIRED, forgotten
// (as Kafka forgets it) if no JoinGroup brings it back within session.
// The caller holds g.mu.
func (g *group) addPending(id string, session time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(session, func() {
		g.mu.Lock()
		if g.pending[id] == t {
			delete(g.pending, id)
		}
		g.mu.Unlock()
		g.co.dropIdle(g)
	})
	g.pending[id] = t
}

// takePending forgets a pending id, which joined or left; it reports
// whether id was pending. The caller holds g.mu.
func (g *group) takePending(id string) bool {
	t, ok := g.pending[id]
	if ok {
		t.Stop()
		delete(g.pending, id)
	}
	return ok
}

// requestRebalance is runnel's side asking for a rebalance: a member
// gained or must give up a partition.
func (g *group) requestRebalance() {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case stateStable:
		g.prepareRebalance()
	case stateCompleting:
		g.again = true
	}
}

// prepareRebalance moves the group to PreparingRebalance: members learn
// of it in their next heartbeat and rejoin.
func (g *group) prepareRebalance() {
	if g.state == stateDead {
		return
	}
	wasEmpty := g.state == stateEmpty
	g.state = statePreparing
	g.again = false
	if g.syncCond != nil {
		g.syncCond.Broadcast()
	}
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalance)
	}
	if wasEmpty {
		timeout = g.co.s.opts.InitialRebalanceDelay
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	g.round++
	round := g.round
	g.joinTimer = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.round == round {
			g.completeJoin()
		}
	})
	if !wasEmpty || timeout == 0 {
		g.maybeCompleteJoin()
	}
}

// maybeCompleteJoin completes the join phase once every member rejoined.
func (g *group) maybeCompleteJoin() {
	if g.state != statePreparing {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	if len(g.members) > 0 {
		g.completeJoin()
	}
}

// completeJoin ends the join phase: members that did not rejoin are
// dropped, a protocol and a leader are chosen, and every waiting JoinGroup
// is answered with the new generation.
func (g *group) completeJoin() {
	if g.state != statePreparing {
		return
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	for _, m := range g.members {
		if m.join == nil {
			g.removeLocked(m, "did not rejoin within the rebalance timeout")
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol, g.leader = "", ""
		g.emptied()
		return
	}
	if g.leader == "" || g.members[g.leader] == nil {
		g.leader = g.order[0]
	}
	g.protocol = g.chooseProtocol()
	g.state = stateCompleting
	leader := g.members[g.leader]
	for _, id := range g.order {
		m := g.members[id]
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = m.joinVersion
		resp.Generation = g.generation
		resp.ProtocolType = kmsg.StringPtr(g.protocolType)
		resp.Protocol = kmsg.StringPtr(g.protocol)
		resp.LeaderID = g.leader
		resp.MemberID = m.id
		if m == leader {
			for _, oid := range g.order {
				o := g.members[oid]
				rm := kmsg.NewJoinGroupResponseMember()
				rm.MemberID, rm.InstanceID = o.id, o.instanceID
				rm.ProtocolMetadata = o.metadata(g.protocol)
				resp.Members = append(resp.Members, rm)
			}
		}
		if m.rn != nil {
			m.rn.newGeneration(g.generation)
		}
		m.join <- resp
		m.join = nil
		g.touch(m)
	}
}

// chooseProtocol picks the first of the leader's protocols that every
// member supports (JoinGroup made sure one exists).
func (g *group) chooseProtocol() string {
	for _, p := range g.members[g.leader].protocols {
		all := true
		for _, m := range g.members {
			all = all && m.supports(p.Name)
		}
		if all {
			return p.Name
		}
	}
	return g.members[g.leader].protocols[0].Name
}

// stable marks the group Stable after the leader's SyncGroup, and starts
// the rebalance that runnel asked for meanwhile, if any.
func (g *group) stable() {
	if g.state != stateCompleting {
		return
	}
	g.state = stateStable
	if g.again {
		g.prepareRebalance()
	}
}

// check validates a request's member and generation against the group.
// A request naming a static member's instance id with another member id
// is from an instance since replaced, and is fenced.
func (g *group) check(memberID string, instanceID *string, generation int32) (*member, int16) {
	m := g.members[memberID]
	switch {
	case g.fenced(memberID, instanceID):
		return nil, errFencedInstance
	case m == nil:
		return nil, errUnknownMemberID
	case generation != g.generation:
		// A client that reads the answer drops its partitions, as
		// lost, and joins again; the request may have lingered, and
		// its answer never be read.
		m.refused = true
		return m, errIllegalGeneration
	}
	return m, 0
}

// static finds the member that joined with an instance id.
func (g *group) static(instanceID string) *member {
	for _, m := range g.members {
		if m.instanceID != nil && *m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// fenced reports whether a request from memberID naming instanceID comes
// from an instance that a newer one of the same id replaced.
func (g *group) fenced(memberID string, instanceID *string) bool {
	if instanceID == nil {
		return false
	}
	m := g.static(*instanceID)
	return m != nil && m.id != memberID
}
