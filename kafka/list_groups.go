package kafka

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-5; DescribeGroups: v0-5; DeleteGroups: v0-2. A group is
// listed if it has Kafka members here or committed offsets in runnel.
// DescribeGroups shows the Kafka members with their assignments, and the
// group's other live runnel members (native consumers, Kafka members of
// other servers) as members with client id "runnel" and the partitions
// they own. A topic whose offsets file is damaged is left out of the
// group's description (and logged) without hiding the group.

func init() {
	supports(kmsg.ListGroups, 0, 5)
	supports(kmsg.DescribeGroups, 0, 5)
	supports(kmsg.DeleteGroups, 0, 2)
}

func (c *conn) listGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	names, err := c.s.log.ListGroups()
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	for _, name := range c.s.groups.withMembers() {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		state, ptype, _, _ := c.s.groupSummary(name)
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, state) }) {
			continue
		}
		if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(s string) bool { return strings.EqualFold(s, "classic") }) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = name, ptype, state, "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// groupSummary is a group's state, protocol type and protocol, as Kafka
// reports them, and whether it has any Kafka members here. A group with
// neither members nor committed offsets is Dead, as Kafka describes a
// group it does not know.
func (s *Server) groupSummary(name string) (state, protocolType, protocol string, kafkaMembers bool) {
	if state, protocolType, protocol, ok := s.kafkaSummary(name); ok {
		return state, protocolType, protocol, true
	}
	state, protocolType = runnelSummary(s.runnelGroup(name))
	return state, protocolType, "", false
}

// kafkaSummary is groupSummary of a group with Kafka members here; ok is
// false if it has none.
func (s *Server) kafkaSummary(name string) (state, protocolType, protocol string, ok bool) {
	g := s.groups.group(name, false)
	if g == nil {
		return "", "", "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.members) == 0 {
		return "", "", "", false
	}
	return g.state.String(), g.protocolType, g.protocol, true
}

// runnelSummary is groupSummary of a group without Kafka members here,
// from runnelGroup's description of it.
func runnelSummary(info runnel.GroupInfo, err error) (state, protocolType string) {
	if errors.Is(err, runnel.ErrGroupNotFound) {
		return stateDead.String(), ""
	}
	if err == nil {
		for _, gt := range info.Topics {
			if len(gt.Members) > 0 {
				return stateStable.String(), consumerProtocol
			}
		}
	}
	return stateEmpty.String(), consumerProtocol
}

func (c *conn) describeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		if !c.s.validGroup(name) {
			rg.ErrorCode = kerr.InvalidGroupID.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		info, err := c.s.runnelGroup(name)
		var kafka bool
		if rg.State, rg.ProtocolType, rg.Protocol, kafka = c.s.kafkaSummary(name); !kafka {
			rg.State, rg.ProtocolType = runnelSummary(info, err)
		}
		var own []string
		if g := c.s.groups.group(name, false); g != nil {
			g.mu.Lock()
			for _, id := range g.order {
				m := g.members[id]
				own = append(own, MemberNamePrefix+id)
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.host
				rm.ProtocolMetadata, rm.MemberAssignment = m.metadata(g.protocol), m.assignment
				rg.Members = append(rg.Members, rm)
			}
			g.mu.Unlock()
		}
		if err == nil {
			rg.Members = append(rg.Members, runnelMembers(info, own)...)
		}
		if req.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// runnelGroup is DescribeGroup's description of a runnel group, in which
// a topic whose offsets it could not read (damage) is left out, and
// logged with its file, rather than failing the group: it hides neither
// the group nor its other topics' members.
func (s *Server) runnelGroup(name string) (runnel.GroupInfo, error) {
	info, err := s.log.DescribeGroup(name)
	if err != nil && len(damagedTopics(err)) > 0 {
		s.opts.Logger.Warn("kafka: read group", "group", name, "err", err)
		err = nil
	}
	return info, err
}

// runnelMembers describes the group's live runnel members that are not
// this server's Kafka members (named in own by their runnel member name).
func runnelMembers(info runnel.GroupInfo, own []string) []kmsg.DescribeGroupsResponseGroupMember {
	type key struct {
		name string
		pid  int
	}
	byMember := map[key]*kmsg.ConsumerMemberAssignment{}
	var order []key
	for _, gt := range info.Topics {
		for _, gm := range gt.Members {
			if ownMember(gm, own) {
				continue
			}
			k := key{gm.Name, gm.PID}
			a := byMember[k]
			if a == nil {
				a = &kmsg.ConsumerMemberAssignment{}
				byMember[k] = a
				order = append(order, k)
			}
			t := kmsg.ConsumerMemberAssignmentTopic{Topic: gt.Topic}
			for _, p := range gm.Partitions {
				t.Partitions = append(t.Partitions, int32(p))
			}
			a.Topics = append(a.Topics, t)
		}
	}
	var out []kmsg.DescribeGroupsResponseGroupMember
	for _, k := range order {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID = "runnel/" + k.name + "/" + strconv.Itoa(k.pid)
		rm.ClientID = "runnel"
		rm.MemberAssignment = byMember[k].AppendTo(nil)
		out = append(out, rm)
	}
	return out
}

// ownMember reports whether gm is the runnel side of one of this server's
// Kafka members, whose runnel member names are own. runnel keeps only the
// start of a long name (ConsumerOptions.MemberName), which a client id of
// some length makes of most: such a member's name is the start of its own.
func ownMember(gm runnel.GroupMember, own []string) bool {
	if gm.PID != os.Getpid() || len(gm.Name) <= len(MemberNamePrefix) {
		return false
	}
	return slices.ContainsFunc(own, func(name string) bool { return strings.HasPrefix(name, gm.Name) })
}

func (c *conn) deleteGroups(req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	answered := map[string]bool{}
	for _, name := range req.Groups {
		// Each group named is answered once, as Kafka answers: a second
		// answer, GROUP_ID_NOT_FOUND, would be read as the group's.
		if answered[name] {
			continue
		}
		answered[name] = true
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		rg.ErrorCode = c.s.deleteGroup(name)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// deleteGroup deletes a group's committed offsets, if no member is live.
func (s *Server) deleteGroup(name string) int16 {
	if _, _, _, kafka := s.kafkaSummary(name); kafka {
		return kerr.NonEmptyGroup.Code
	}
	info, err := s.runnelGroup(name)
	switch {
	case errors.Is(err, runnel.ErrInvalidName):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, runnel.ErrGroupNotFound):
		return kerr.GroupIDNotFound.Code
	case err != nil:
		return kerr.CoordinatorNotAvailable.Code
	}
	for _, gt := range info.Topics {
		if len(gt.Members) > 0 {
			return kerr.NonEmptyGroup.Code
		}
	}
	// DeleteGroup checks again, holding the group's admin lock and every
	// member slot: a native member that joined since is not deleted under.
	// It refuses a damaged offsets file (only a forced delete removes
	// one): UNKNOWN_SERVER_ERROR below, which clients do not retry.
	switch err := s.log.DeleteGroup(s.ctx, name, nil); {
	case err == nil:
		s.groups.forget(name)
		return 0
	case errors.Is(err, runnel.ErrGroupActive):
		return kerr.NonEmptyGroup.Code
	case errors.Is(err, runnel.ErrGroupNotFound):
		return kerr.GroupIDNotFound.Code
	default:
		s.opts.Logger.Warn("kafka: DeleteGroups failed", "group", name, "err", err)
		return kerr.UnknownServerError.Code
	}
}
