package kafka

import (
	"context"
	"errors"
	"slices"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v2-9; OffsetFetch: v1-9. Committed offsets are runnel's
// (groups/<group>/<topic>.offsets): a member's commit goes through its
// runnel Consumer's CommitOffsets, which refuses a partition the member
// does not own (answered with REBALANCE_IN_PROGRESS, which makes the
// client rejoin and learn what it owns). A commit from outside the group
// (generation -1, as admin tools and standalone consumers send) is
// written with ResetGroupOffsets, which refuses partitions a live member
// owns. A group with Kafka members here takes commits only from them, as
// Kafka's does (UNKNOWN_MEMBER_ID); one whose members are native, a
// partition at a time (ILLEGAL_GENERATION for an owned one).
// Either stores any offset, as Kafka does, also one the partition no
// longer (or not yet) holds: the consumer that fetches there learns it
// (OFFSET_OUT_OF_RANGE) and resets by its policy.
// Commit metadata strings are not kept: OffsetFetch answers every
// partition's metadata "", what Kafka answers for a commit without
// metadata and for a partition with no commit (its NO_METADATA).
//
// An offset of -2 or -1 (Kafka's "earliest" and "latest", as ListOffsets
// takes them), which KafkaJS's admin resetOffsets commits, is resolved to
// the partition's start or end at commit time. Kafka stores them as they
// come and leaves their meaning to the next consumer; runnel's offsets
// files hold only real offsets, and what the admin asked for is the
// position now. Other negative offsets get INVALID_COMMIT_OFFSET_SIZE.

func init() {
	supports(kmsg.OffsetCommit, 2, 9)
	supports(kmsg.OffsetFetch, 1, 9)
}

func (c *conn) offsetCommit(req *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	setAll := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	ctx, cancel := c.s.adminContext(0)
	defer cancel()
	switch {
	case !c.s.validGroup(req.Group):
		setAll(kerr.InvalidGroupID.Code)
	case req.Generation < 0 && req.MemberID == "":
		c.s.commitOutside(ctx, req, codes)
	default:
		c.s.commitMember(ctx, req, codes)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// commitMember commits for a member of a Kafka group.
func (s *Server) commitMember(ctx context.Context, req *kmsg.OffsetCommitRequest, codes [][]int16) {
	g := s.groups.group(req.Group, false)
	var rn *runnelMember
	var code int16
	if g == nil {
		code = errUnknownMemberID
	} else {
		g.mu.Lock()
		m, c := g.check(req.MemberID, req.InstanceID, req.Generation)
		switch {
		case c != 0:
			code = c
		case g.state == stateCompleting:
			code = errRebalancing
		case m.rn == nil:
			code = kerr.InconsistentGroupProtocol.Code
		default:
			g.touch(m)
			rn = m.rn
		}
		g.mu.Unlock()
	}
	for i, t := range req.Topics {
		if rn == nil {
			fill(codes[i], code)
			continue
		}
		offsets := map[int]int64{}
		for j, p := range t.Partitions {
			offset, code := s.commitOffset(t.Topic, p)
			if code != 0 {
				codes[i][j] = code
				continue
			}
			offsets[int(p.Partition)] = offset
		}
		if len(offsets) == 0 {
			continue
		}
		notOwned, err := rn.commit(ctx, t.Topic, offsets)
		if err != nil || len(notOwned) > 0 {
			s.opts.Logger.Info("kafka: offset commit refused", "group", req.Group, "topic", t.Topic, "member", req.MemberID, "not owned", notOwned, "err", err)
		}
		for j, p := range t.Partitions {
			switch {
			case codes[i][j] != 0:
			case slices.Contains(notOwned, int(p.Partition)):
				codes[i][j] = errRebalancing
			default:
				codes[i][j] = commitErrorCode(err)
			}
		}
	}
}

// commitOutside commits for a client outside the group's membership.
func (s *Server) commitOutside(ctx context.Context, req *kmsg.OffsetCommitRequest, codes [][]int16) {
	if g := s.groups.group(req.Group, false); g != nil {
		g.mu.Lock()
		active := len(g.members) > 0
		g.mu.Unlock()
		if active {
			for i := range codes {
				fill(codes[i], errUnknownMemberID)
			}
			return
		}
	}
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			offset, code := s.commitOffset(t.Topic, p)
			if code != 0 {
				codes[i][j] = code
				continue
			}
			_, err := s.log.ResetGroupOffsets(ctx, req.Group, t.Topic, runnel.AtOffset(offset),
				&runnel.ResetOptions{Partitions: []int{int(p.Partition)}, Unchecked: true})
			codes[i][j] = commitErrorCode(err)
			if errors.Is(err, runnel.ErrGroupActive) {
				// A native member owns the partition: the group is not
				// empty, as for Kafka members above.
				codes[i][j] = errUnknownMemberID
			}
		}
	}
}

// commitOffset turns a commit's partition into the offset to commit, or
// an error code for it: -2 and -1 (ListOffsets' sentinels) become the
// partition's start and end as they are now; other negative offsets, and
// negative partitions, are refused.
func (s *Server) commitOffset(topic string, p kmsg.OffsetCommitRequestTopicPartition) (int64, int16) {
	switch {
	case p.Partition < 0 || p.Offset < listEarliest:
		return 0, kerr.InvalidCommitOffsetSize.Code
	case p.Offset >= 0:
		return p.Offset, 0
	}
	start, end, code := s.partitionOffsets(topic, p.Partition)
	if p.Offset == listEarliest {
		return start, code
	}
	return end, code
}

func commitErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, runnel.ErrNotOwner):
		return errRebalancing
	case errors.Is(err, runnel.ErrGroupActive):
		return errIllegalGeneration
	case errors.Is(err, runnel.ErrOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, runnel.ErrInvalidArgument):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, runnel.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.CoordinatorNotAvailable.Code
	}
	return topicErrorCode(err)
}

func fill(codes []int16, code int16) {
	for i := range codes {
		codes[i] = code
	}
}

func (c *conn) offsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		topics, code := c.s.committed(req.Group, req.Topics)
		resp.ErrorCode = code
		if code != 0 && req.Version < 2 {
			topics = everyPartitionFailed(req.Topics, code)
		}
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.topic
			for _, p := range t.parts {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.partition, p.offset, -1, p.code
				rp.Metadata = noMetadata()
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		var want []kmsg.OffsetFetchRequestTopic
		if rg.Topics != nil {
			want = []kmsg.OffsetFetchRequestTopic{}
			for _, t := range rg.Topics {
				want = append(want, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		topics, code := c.s.committed(rg.Group, want)
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, code
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.topic
			for _, p := range t.parts {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.partition, p.offset, -1, p.code
				rp.Metadata = noMetadata()
				rt.Partitions = append(rt.Partitions, rp)
			}
			g.Topics = append(g.Topics, rt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

// noMetadata is a fetched offset's metadata: "", not null (the field's
// zero value), which kafka-python hands its callers as None where a Kafka
// broker's answer gives them "". (KafkaJS's admin fetchOffsets turns ""
// into null itself, from Kafka too.)
func noMetadata() *string { return kmsg.StringPtr("") }

type committedTopic struct {
	topic string
	parts []committedPartition
}

type committedPartition struct {
	partition int32
	offset    int64 // -1: none
	code      int16
}

// everyPartitionFailed answers a group-level error at OffsetFetch v0-1,
// whose response has no group error code, in every partition the request
// names, with no offset, as Kafka's broker does: dropped by the encoding,
// the error left an answer with no partitions, which a client reads as
// no commits.
func everyPartitionFailed(topics []kmsg.OffsetFetchRequestTopic, code int16) []committedTopic {
	var out []committedTopic
	for _, t := range topics {
		ct := committedTopic{topic: t.Topic}
		for _, p := range t.Partitions {
			ct.parts = append(ct.parts, committedPartition{partition: p, offset: -1, code: code})
		}
		out = append(out, ct)
	}
	return out
}

// committed reads a group's committed offsets: for the topics asked (nil:
// every topic the group has committed for), from runnel's offsets files.
func (s *Server) committed(group string, want []kmsg.OffsetFetchRequestTopic) ([]committedTopic, int16) {
	info, err := s.log.DescribeGroup(group)
	var damaged map[string]bool
	switch {
	case errors.Is(err, runnel.ErrGroupNotFound):
	case errors.Is(err, runnel.ErrInvalidName):
		return nil, kerr.InvalidGroupID.Code
	case err != nil:
		s.opts.Logger.Warn("kafka: read committed offsets", "group", group, "err", err)
		if damaged = damagedTopics(err); len(damaged) == 0 {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
	}
	byTopic := map[string]runnel.GroupTopic{}
	for _, gt := range info.Topics {
		byTopic[gt.Topic] = gt
	}
	var out []committedTopic
	if want == nil {
		for _, gt := range info.Topics {
			ct := committedTopic{topic: gt.Topic}
			for _, gp := range gt.Partitions {
				if gp.Committed >= 0 {
					ct.parts = append(ct.parts, committedPartition{partition: int32(gp.Partition), offset: gp.Committed})
				}
			}
			if len(ct.parts) > 0 {
				out = append(out, ct)
			}
		}
		return out, 0
	}
	for _, t := range want {
		ct := committedTopic{topic: t.Topic}
		gt := byTopic[t.Topic]
		for _, p := range t.Partitions {
			cp := committedPartition{partition: p, offset: -1}
			if int(p) >= 0 && int(p) < len(gt.Partitions) {
				cp.offset = gt.Partitions[p].Committed
			}
			if damaged[t.Topic] {
				// Its offsets file is damaged (logged, with the file):
				// not "no commit", which would move the consumer.
				cp.code = kerr.KafkaStorageError.Code
			}
			ct.parts = append(ct.parts, cp)
		}
		out = append(out, ct)
	}
	return out, 0
}

// damagedTopics names the topics whose offsets DescribeGroup could not
// read, from its error (runnel.GroupTopicErrors); none if the error is
// about the whole group.
func damagedTopics(err error) map[string]bool {
	out := map[string]bool{}
	for _, gte := range runnel.GroupTopicErrors(err) {
		out[gte.Topic] = true
	}
	return out
}
