package kafka

import (
	"context"
	"errors"
	"slices"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0 (kafka-consumer-groups --delete-offsets, kadm's
// DeleteOffsets). A group's committed offsets for the partitions named
// become none (runnel.Log.DeleteGroupOffsets), unless the group's members
// consume the topic: Kafka members of this server subscribed to it, or
// any live member of runnel group G for it, native or Kafka, in any
// process (GROUP_SUBSCRIBED_TO_TOPIC for its partitions). A topic the
// group has no offsets for has nothing to delete, and succeeds. A group
// of another protocol than "consumer" with members here is
// NON_EMPTY_GROUP: which topics its members use is not known.

func init() { supports(kmsg.OffsetDelete, 0, 0) }

func (c *conn) offsetDelete(req *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	groups, err := c.s.log.ListGroups()
	_, ptype, _, kafkaMembers := c.s.groupSummary(req.Group)
	switch {
	case !c.s.validGroup(req.Group):
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	case err != nil:
		c.s.opts.Logger.Warn("kafka: list groups", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	case kafkaMembers && ptype != consumerProtocol:
		// Not a consumer group (Kafka Connect's, say): its members'
		// topics are not known, so none is safe to delete.
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	case !kafkaMembers && !slices.Contains(groups, req.Group):
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		// Kafka answers each partition once, however often it is named.
		var parts []kmsg.OffsetDeleteRequestTopicPartition
		for _, p := range t.Partitions {
			if !slices.ContainsFunc(parts, func(q kmsg.OffsetDeleteRequestTopicPartition) bool { return q.Partition == p.Partition }) {
				parts = append(parts, p)
			}
		}
		codes := c.s.deleteOffsets(req.Group, t.Topic, parts)
		for i, p := range parts {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// deleteOffsets deletes group's committed offsets for topic's partitions
// and returns each one's code.
func (s *Server) deleteOffsets(group, topic string, parts []kmsg.OffsetDeleteRequestTopicPartition) []int16 {
	codes := make([]int16, len(parts))
	fill := func(code int16) []int16 {
		for i := range codes {
			if codes[i] == 0 {
				codes[i] = code
			}
		}
		return codes
	}
	cfg, err := s.log.TopicConfig(topic)
	if err != nil {
		return fill(topicErrorCode(err))
	}
	var valid []int
	for i, p := range parts {
		if p.Partition < 0 || int(p.Partition) >= cfg.Partitions {
			codes[i] = kerr.UnknownTopicOrPartition.Code
		} else {
			valid = append(valid, int(p.Partition))
		}
	}
	if len(valid) == 0 {
		return codes
	}
	if s.kafkaSubscribed(group, topic) {
		return fill(kerr.GroupSubscribedToTopic.Code)
	}
	ctx, cancel := s.adminContext(0)
	defer cancel()
	switch err := s.log.DeleteGroupOffsets(ctx, group, topic, valid); {
	case err == nil, errors.Is(err, runnel.ErrGroupNotFound):
		return codes // nothing was committed for the topic: nothing to delete
	case errors.Is(err, runnel.ErrGroupActive):
		return fill(kerr.GroupSubscribedToTopic.Code)
	case errors.Is(err, runnel.ErrTopicNotFound):
		return fill(kerr.UnknownTopicOrPartition.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Another admin call on the group held it all along.
		return fill(kerr.RequestTimedOut.Code)
	default:
		s.opts.Logger.Warn("kafka: OffsetDelete failed", "group", group, "topic", topic, "err", err)
		return fill(kerr.UnknownServerError.Code)
	}
}

// kafkaSubscribed reports whether a Kafka member of this server's group
// subscribes to topic (it may not hold a runnel membership for it yet).
func (s *Server) kafkaSubscribed(group, topic string) bool {
	g := s.groups.group(group, false)
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(subscribedTopics(p.Metadata), topic) {
				return true
			}
		}
	}
	return false
}
