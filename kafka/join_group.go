package kafka

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/runnel-log/runnel/internal/names"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: v0-9; SyncGroup: v0-5; Heartbeat: v0-4; LeaveGroup: v0-5.
// See group.go for the protocol. From v4 a new member first gets
// MEMBER_ID_REQUIRED with its id, and joins again with it, as Kafka's
// clients expect. A static member (v5+, with an instance id) skips that
// round trip; its new instance replaces the old one, whose requests are
// then fenced (FENCED_INSTANCE_ID), and LeaveGroup may name it by its
// instance id alone.

func init() {
	supports(kmsg.JoinGroup, 0, 9)
	supports(kmsg.SyncGroup, 0, 5)
	supports(kmsg.Heartbeat, 0, 4)
	supports(kmsg.LeaveGroup, 0, 5)
}

var (
	errUnknownMemberID   = kerr.UnknownMemberID.Code
	errIllegalGeneration = kerr.IllegalGeneration.Code
	errRebalancing       = kerr.RebalanceInProgress.Code
	errFencedInstance    = kerr.FencedInstanceID.Code
)

func (c *conn) joinGroup(req *kmsg.JoinGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	fail := func(code int16) kmsg.Response {
		resp.ErrorCode, resp.Generation = code, -1
		return resp
	}
	opts := &c.s.opts
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session
	}
	switch {
	case !c.s.validGroup(req.Group):
		return fail(kerr.InvalidGroupID.Code)
	case opts.boundSession(session) != session:
		return fail(kerr.InvalidSessionTimeout.Code)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	var g *group
	for {
		if g = c.s.groups.group(req.Group, true); g == nil {
			return fail(kerr.CoordinatorNotAvailable.Code) // shutting down
		}
		g.mu.Lock()
		if g.state != stateDead {
			break
		}
		// Dropped (deleted, or idle) since it was looked up: the next
		// look finds it made anew.
		g.mu.Unlock()
	}
	if len(g.members) > 0 && !g.compatible(req) {
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	static := req.InstanceID != nil
	if req.MemberID != "" && g.fenced(req.MemberID, req.InstanceID) {
		g.mu.Unlock()
		return fail(errFencedInstance)
	}
	if static && req.MemberID == "" {
		// A static member's new instance (Kafka's KIP-345) needs no
		// member id round trip, and replaces the old one at once instead
		// of waiting out its session: the old one's partitions pass on
		// as soon as its runnel side closes.
		if old := g.static(*req.InstanceID); old != nil {
			old.answerJoin(errFencedInstance) // its own JoinGroup, if it waits
			g.removeLocked(old, "replaced by a new instance of "+*req.InstanceID)
		}
	}
	m := g.members[req.MemberID]
	switch {
	case req.MemberID == "" && req.Version >= 4 && !static:
		id := newMemberID(c.clientID)
		g.addPending(id, session)
		g.mu.Unlock()
		resp.MemberID = id
		return fail(kerr.MemberIDRequired.Code)
	case req.MemberID == "" || m == nil && g.takePending(req.MemberID):
		id := req.MemberID
		if id == "" {
			id = newMemberID(c.clientID)
		}
		m = &member{id: id}
		if req.ProtocolType == consumerProtocol {
			rn, err := newRunnelMember(g, id, session)
			if err != nil {
				g.mu.Unlock()
				c.s.groups.dropIdle(g)
				c.s.opts.Logger.Warn("kafka: join runnel group", "group", g.name, "err", err)
				return fail(kerr.GroupMaxSizeReached.Code)
			}
			m.rn = rn
		}
		g.members[id] = m
		g.order = append(g.order, id)
		if len(g.members) == 1 {
			g.protocolType = req.ProtocolType
		}
	case m == nil:
		g.mu.Unlock()
		c.s.groups.dropIdle(g) // made for this request, maybe
		return fail(errUnknownMemberID)
	}
	// The same member joining twice at once: the older request is
	// superseded.
	m.answerJoin(errRebalancing)
	m.instanceID = req.InstanceID
	m.clientID = c.clientID
	m.host = clientHost(c.remote)
	m.protocols = req.Protocols
	m.session, m.rebalance = session, rebalance
	m.joinVersion = req.Version
	wait := make(chan *kmsg.JoinGroupResponse, 1)
	m.join = wait
	if m.rn != nil {
		m.rn.subscribe(m.protocols, m.refused)
	}
	m.refused = false
	switch g.state {
	case statePreparing:
		g.maybeCompleteJoin()
	default:
		g.prepareRebalance()
	}
	g.mu.Unlock()

	select {
	case r := <-wait:
		r.Version = req.Version
		return r
	case <-c.s.ctx.Done():
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
}

// compatible reports whether a joining member fits the group: the same
// protocol type, and at least one protocol every member supports.
func (g *group) compatible(req *kmsg.JoinGroupRequest) bool {
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		all := true
		for _, m := range g.members {
			if m.id != req.MemberID {
				all = all && m.supports(p.Name)
			}
		}
		if all {
			return true
		}
	}
	return false
}

// validGroup checks a group name by runnel's rule (any non-empty UTF-8
// name whose directory name fits, names.CheckGroup): the check runnel's
// group calls make before anything else (ErrInvalidName), without the
// group's files being read, as DescribeGroup would at every JoinGroup and
// OffsetCommit.
func (s *Server) validGroup(name string) bool {
	return names.CheckGroup(name) == nil
}

func (c *conn) syncGroup(req *kmsg.SyncGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	g := c.s.groups.group(req.Group, false)
	if g == nil {
		resp.ErrorCode = errUnknownMemberID
		return resp
	}
	g.mu.Lock()
	m, code := g.check(req.MemberID, req.InstanceID, req.Generation)
	switch {
	case code != 0:
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		// v5+ name them, and Kafka checks them (KIP-559).
		code = kerr.InconsistentGroupProtocol.Code
	case g.state == statePreparing:
		code = errRebalancing
	case g.state != stateCompleting && g.state != stateStable:
		code = errUnknownMemberID
	}
	if code != 0 {
		g.mu.Unlock()
		resp.ErrorCode = code
		return resp
	}
	g.touch(m)
	resp.ProtocolType, resp.Protocol = kmsg.StringPtr(g.protocolType), kmsg.StringPtr(g.protocol)
	gen := g.generation
	if g.protocolType != consumerProtocol {
		return c.syncLeaderAssignment(g, m, req, resp)
	}
	if req.MemberID == g.leader {
		g.stable()
	}
	rn := m.rn
	// Waiting must not outlast the member's session.
	settle := min(syncSettle, m.session/3)
	g.mu.Unlock()

	assignment, heldSet := rn.assignment(gen, settle)
	if testHookSyncAssigned != nil {
		testHookSyncAssigned()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[m.id] != m || g.generation != gen || !rn.answered(gen, heldSet) {
		resp.ErrorCode = errRebalancing
		return resp
	}
	m.assignment, m.synced = assignment, gen
	g.touch(m)
	g.persistLocked()
	resp.MemberAssignment = assignment
	return resp
}

// testHookSyncAssigned, if set, runs when a consumer-protocol SyncGroup
// has its assignment and is about to answer it.
var testHookSyncAssigned func()

// syncLeaderAssignment is SyncGroup for protocols runnel does not
// interpret: the leader's assignment is handed out, as Kafka does. Called
// with g.mu held; releases it.
func (c *conn) syncLeaderAssignment(g *group, m *member, req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) kmsg.Response {
	defer g.mu.Unlock()
	gen := g.generation
	if g.syncCond == nil {
		g.syncCond = sync.NewCond(&g.mu)
	}
	if req.MemberID == g.leader {
		// A member the leader leaves out gets an empty assignment, as in
		// Kafka, rather than an error that has it rejoin (and the leader
		// leave it out again, without end).
		for _, o := range g.members {
			o.assignment, o.synced = []byte{}, gen
		}
		for _, a := range req.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = a.MemberAssignment
			}
		}
		g.stable()
		g.syncCond.Broadcast()
	}
	for m.synced != gen && g.generation == gen && g.state == stateCompleting && g.members[m.id] == m && c.s.ctx.Err() == nil {
		g.syncCond.Wait()
	}
	if m.synced != gen {
		resp.ErrorCode = errRebalancing
		return resp
	}
	g.persistLocked()
	resp.MemberAssignment = m.assignment
	return resp
}

func (c *conn) heartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g := c.s.groups.group(req.Group, false)
	if g == nil {
		resp.ErrorCode = errUnknownMemberID
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m, code := g.check(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.touch(m)
	if g.state == statePreparing {
		resp.ErrorCode = errRebalancing
	}
	return resp
}

func (c *conn) leaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	ids := []string{req.MemberID}
	if req.Version >= 3 {
		ids = ids[:0]
		for _, lm := range req.Members {
			ids = append(ids, lm.MemberID)
		}
	}
	g := c.s.groups.group(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	g.mu.Lock()
	var left bool
	for i, id := range ids {
		var instanceID *string
		if req.Version >= 3 {
			instanceID = req.Members[i].InstanceID
		}
		m := g.members[id]
		if id == "" && instanceID != nil { // a static member, by its instance id
			m = g.static(*instanceID)
		}
		var code int16
		switch {
		case id != "" && g.fenced(id, instanceID):
			code = errFencedInstance
		case m != nil:
			g.removeLocked(m, "left")
			left = true
		case m == nil && g.takePending(id):
			// Given out with MEMBER_ID_REQUIRED and never used: Kafka
			// forgets it and answers NONE.
		default:
			code = errUnknownMemberID
		}
		if req.Version >= 3 {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ErrorCode = id, req.Members[i].InstanceID, code
			resp.Members = append(resp.Members, rm)
		} else {
			resp.ErrorCode = code
		}
	}
	if left {
		g.membershipChanged()
	}
	idle := len(g.members) == 0 && len(g.pending) == 0
	g.mu.Unlock()
	// The client leaves knowing its partitions are free for the others.
	g.waitMembersGone()
	if idle {
		c.s.groups.dropIdle(g)
	}
	return resp
}

// clientHost is a member's host as DescribeGroups describes it: the
// address the connection came from, as Kafka's broker gives it (Java's
// InetAddress.toString without a host name: "/127.0.0.1", an IPv6 address
// in eight groups uncompressed, an IPv4-mapped one as the IPv4 address),
// which kafka-consumer-groups.sh shows; remote as it is if it is not an
// address and port.
func clientHost(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	addr := ap.Addr().Unmap()
	if addr.Is4() {
		return "/" + addr.String()
	}
	b := addr.As16()
	var s strings.Builder
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			s.WriteByte(':')
		}
		fmt.Fprintf(&s, "%x", uint16(b[i])<<8|uint16(b[i+1]))
	}
	if zone := addr.Zone(); zone != "" {
		s.WriteString("%" + zone)
	}
	return "/" + s.String()
}
