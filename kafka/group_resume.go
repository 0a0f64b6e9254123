package kafka

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/runnel-log/runnel"
)

// Resuming groups after a restart
//
// A server keeps each of its groups in its group state file
// (group_state_file.go) as it settles: its generation, protocol and
// leader, and the members that synced in that generation, each with its
// session, protocols and assignment and, for the consumer protocol, its
// runnel side: what its client was given and may still read, and its
// Consumers' incarnations. A server restarted at the same address loads
// the groups Stable at that generation, as a Kafka coordinator loads a
// group it takes over, and starts each member's session anew: a client
// that comes back within it heartbeats on, and one that does not expires
// as any. Each member's runnel side succeeds its old Consumers
// (runnel.ConsumerOptions.Succeeds), so it takes back at once all the
// partitions their leases kept from everyone else, whatever its share
// now. If its share shrank meanwhile (native members or another server's
// joined the group), its Consumers give the extras up at their next check
// as after any assignment: revoked asks for a rebalance and holds each
// partition until the client let go of it, so no other member reads one
// the client still reads, however long the rebalance takes. If it does
// not get back exactly what its client was given (another member holds a
// partition, a topic is gone), it asks for a rebalance, and the client
// joins again as after any.

// resumeGroups opens the group state file of the server whose clients
// reach it at Options.Advertise, or else at listening, and resumes its
// groups. A file it cannot open is logged: the groups then start empty,
// and are not kept.
func (s *Server) resumeGroups(listening string) {
	file, saved, err := openGroupState(s.log.Dir(), cmp.Or(s.opts.Advertise, listening), s.opts.Logger.Warn)
	if err != nil {
		s.opts.Logger.Warn("kafka: groups are not resumed or kept", "err", err)
		return
	}
	co := s.groups
	co.mu.Lock()
	if co.closed {
		co.mu.Unlock()
		file.close()
		return
	}
	co.state = file
	co.mu.Unlock()
	co.resume(saved)
}

// persistLocked records g in the state file as it stands: the members
// that synced in its generation (none: the group is forgotten). Called
// with g.mu held, at each SyncGroup answered and each member removed.
func (g *group) persistLocked() {
	file := g.co.state
	if file == nil {
		return
	}
	file.save(g.name, g.savedLocked())
}

// savedLocked is g as the state file keeps it, nil if no member synced in
// its generation.
func (g *group) savedLocked() *savedGroup {
	if g.state == stateEmpty || g.state == stateDead {
		return nil
	}
	sg := &savedGroup{name: g.name, generation: g.generation, protocolType: g.protocolType, protocol: g.protocol, leader: g.leader}
	for _, id := range g.order {
		m := g.members[id]
		if m == nil || m.synced != g.generation {
			continue
		}
		sm := savedMember{
			id: m.id, instanceID: m.instanceID, clientID: m.clientID, host: m.host,
			session: m.session, rebalance: m.rebalance,
			protocols: m.protocols, assignment: m.assignment,
		}
		if m.rn != nil {
			sm.rn = m.rn.saved()
		}
		sg.members = append(sg.members, sm)
	}
	if len(sg.members) == 0 {
		return nil
	}
	return sg
}

// saved is rm as the state file keeps it.
func (rm *runnelMember) saved() *savedRunnelSide {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return &savedRunnelSide{
		lease:        rm.lease,
		given:        cloneTopicPartitions(rm.given),
		held:         cloneTopicPartitions(rm.held),
		incarnations: maps.Clone(rm.incarnations),
	}
}

func cloneTopicPartitions(tps map[string][]int) map[string][]int {
	c := make(map[string][]int, len(tps))
	for topic, ps := range tps {
		c[topic] = slices.Clone(ps)
	}
	return c
}

// resume loads the groups of the server's state file, each Stable at its
// saved generation. A group or member that cannot be resumed (a name no
// group can have, a consumer-protocol member without its runnel side) is
// left out: its clients join again.
func (co *coordinator) resume(saved []savedGroup) {
	co.mu.Lock()
	defer co.mu.Unlock()
	for _, sg := range saved {
		if !co.s.validGroup(sg.name) || co.groups[sg.name] != nil {
			continue
		}
		g := &group{
			co: co, name: sg.name, members: map[string]*member{}, pending: map[string]*time.Timer{},
			state: stateStable, generation: sg.generation,
			protocolType: sg.protocolType, protocol: sg.protocol, leader: sg.leader,
		}
		g.mu.Lock()
		for _, sm := range sg.members {
			consumer := sg.protocolType == consumerProtocol
			if g.members[sm.id] != nil || consumer != (sm.rn != nil) {
				continue
			}
			m := &member{
				id: sm.id, instanceID: sm.instanceID, clientID: sm.clientID, host: sm.host,
				session: co.resumedSession(sg.name, sm.id, sm.session), rebalance: sm.rebalance, protocols: sm.protocols,
				assignment: sm.assignment, synced: sg.generation,
			}
			if consumer {
				if m.rn = resumeRunnelMember(g, m, sm.rn); m.rn == nil {
					continue
				}
			}
			g.members[m.id] = m
			g.order = append(g.order, m.id)
			g.touch(m) // a fresh session, as Kafka's coordinator gives at a load
		}
		if g.members[g.leader] == nil {
			g.leader = ""
		}
		n := len(g.members)
		g.mu.Unlock()
		if n > 0 {
			co.groups[g.name] = g
			co.s.opts.Logger.Info("kafka: group resumed", "group", g.name, "generation", g.generation, "members", n)
		}
	}
}

// resumedSession is a resumed member's session timeout: the saved one
// within the server's MinSessionTimeout and MaxSessionTimeout, as
// JoinGroup bounds it, so that a member whose client never comes back
// expires, and its partitions pass on, within the longest session this
// server grants. A saved value outside them is taken as sound and
// clamped, not as damage: the file's checksum tells damage apart, and a
// server given other bounds (Options) than the one that wrote the file
// saved such values soundly, and its groups should resume as any.
func (co *coordinator) resumedSession(group, member string, saved time.Duration) time.Duration {
	return co.clampedOnResume(group, member, "session timeout", saved, co.s.opts.boundSession(saved))
}

// resumedLease is a resumed member's lease: the session timeout of its
// first JoinGroup (newRunnelMember), so bounded as one, and capped at
// runnel.MaxLease as newRunnelMember caps it. The session saved with it
// may be within the bounds while it is not: a client that joined again
// with a shorter session keeps its first lease.
func (co *coordinator) resumedLease(group, member string, saved time.Duration) time.Duration {
	return co.clampedOnResume(group, member, "lease", saved, min(co.s.opts.boundSession(saved), runnel.MaxLease))
}

// clampedOnResume returns bounded, the server's bound of a value a
// resumed member saved, and logs it if the bound changed the value
// (docs/FORMAT.md says so).
func (co *coordinator) clampedOnResume(group, member, what string, saved, bounded time.Duration) time.Duration {
	if bounded != saved {
		co.s.opts.Logger.Warn("kafka: resumed group member's "+what+" is outside the server's bounds: clamped",
			"group", group, "member", member, "saved", saved, "bounded", bounded)
	}
	return bounded
}

// resumeRunnelMember makes the runnel side of a resumed member: its
// Consumers succeed the saved incarnations, and its client is taken to
// hold what the file says, as given in the group's generation. Nil if it
// cannot be made: the member is left out.
func resumeRunnelMember(g *group, m *member, saved *savedRunnelSide) *runnelMember {
	rm, err := newRunnelMember(g, m.id, g.co.resumedLease(g.name, m.id, saved.lease))
	if err != nil {
		return nil
	}
	topics, eager := subscription(m.protocols)
	rm.mu.Lock()
	rm.topics, rm.eager = topics, eager
	rm.gen, rm.givenGen, rm.syncedGen = g.generation, g.generation, g.generation
	rm.given, rm.held = saved.given, saved.held
	rm.predecessors = saved.incarnations
	rm.resuming, rm.unrejoined = true, true
	rm.mu.Unlock()
	rm.subs <- topics
	return rm
}

// predecessorsOf is the incarnation whose partitions the member's
// Consumer of topic takes back at once, if it resumed one.
func (rm *runnelMember) predecessorsOf(topic string) []runnel.Incarnation {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if inc, ok := rm.predecessors[topic]; ok {
		return []runnel.Incarnation{inc}
	}
	return nil
}

// heldOnResume counts partitions of topic that a resumed member's
// Consumer took as held by its client, until the client joins again: a
// file older than the client's generation (a failed write, or a power
// loss) names less than the client was given since, and a partition the
// client may read must not be released until it has let go, as after any
// assignment. Its predecessors' partitions, all of which it takes back,
// are the ones the client can have been given; one it takes back after
// its first tick (another member held its lock a moment then) too.
func (rm *runnelMember) heldOnResume(topic string, ps []int) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.unrejoined {
		rm.holdLocked(topic, ps)
	}
}

// checkResumed ends a resumed member's first tick: its Consumers have
// joined and taken back what they may, all of it held (heldOnResume).
// Unless that is exactly what its client was given, the group
// rebalances, and the client joins again. What is beyond the member's
// share its Consumers give up at their next check, through revoked,
// which asks for the rebalance itself.
func (rm *runnelMember) checkResumed() {
	rm.mu.Lock()
	if !rm.resuming {
		rm.mu.Unlock()
		return
	}
	rm.resuming = false
	nonEmpty := func(tps map[string][]int) map[string][]int {
		return maps.Collect(func(yield func(string, []int) bool) {
			for topic, ps := range tps {
				if len(ps) > 0 && !yield(topic, ps) {
					return
				}
			}
		})
	}
	same := maps.EqualFunc(nonEmpty(rm.owned), nonEmpty(rm.given), slices.Equal)
	owned, given := cloneTopicPartitions(rm.owned), cloneTopicPartitions(rm.given)
	rm.mu.Unlock()
	if !same {
		rm.opts.Logger.Info("kafka: resumed group member did not get back its assignment: rebalancing", "group", rm.g.name, "member", rm.id, "owned", owned, "given", given)
		rm.g.requestRebalance()
	}
}
