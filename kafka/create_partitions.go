package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-3 (kafka-topics.sh --alter --partitions, kadm's
// CreatePartitions and UpdatePartitions, KafkaJS's and kafka-python's
// create_partitions), through runnel.Log.AlterTopic: the new partitions
// start empty, and groups' members take them in their shares. A group
// that existed before them has committed offset 0 there (runnel's
// growth), which OffsetFetch answers: a member whose auto.offset.reset
// is latest reads the records produced before it took a new partition,
// where Kafka, with no offset to answer, has it skip them. A count not
// above the topic's is INVALID_PARTITIONS, as in Kafka; so is one past
// 65,536, or more partitions added in one request than Options.
// MaxPartitions allows CreateTopics to make. An assignment is taken when
// it asks for what a one-broker Kafka accepts: one entry per partition
// added, each with the one replica on broker 0; anything else is
// INVALID_REPLICA_ASSIGNMENT. A topic named twice in one request is
// refused, every entry of it, and grown by none, as in Kafka. With
// ValidateOnly every check is made and nothing changes. Waiting for
// another process's admin call on the topic is bounded by the request's
// timeout (REQUEST_TIMED_OUT).

func init() { supports(kmsg.CreatePartitions, 0, 3) }

func (c *conn) createPartitions(req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	twice := namedTwice(req.Topics, func(t kmsg.CreatePartitionsRequestTopic) string { return t.Topic })
	ctx, cancel := c.s.adminContext(req.TimeoutMillis)
	defer cancel()
	added := 0 // partitions the request's topics added so far
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, msg string) {
			rt.ErrorCode, rt.ErrorMessage = code, &msg
		}
		cfg, err := c.s.log.TopicConfig(t.Topic)
		switch {
		case twice[t.Topic]:
			fail(kerr.InvalidRequest.Code, "topic named twice in one request")
		case errors.Is(err, runnel.ErrTopicNotFound):
			fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %s does not exist", t.Topic))
		case err != nil:
			fail(topicErrorCode(err), err.Error())
		default:
			code, msg := checkGrowth(t, cfg.Partitions, c.s.opts.MaxPartitions-added)
			switch {
			case code != 0:
				fail(code, msg)
			case req.ValidateOnly:
			default:
				code, msg = c.s.growTopic(ctx, t.Topic, int(t.Count))
				if code != 0 {
					fail(code, msg)
				}
			}
			if rt.ErrorCode == 0 {
				added += int(t.Count) - cfg.Partitions
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// checkGrowth checks a request to grow topic t of n partitions by at most
// room: the count, and the assignment if there is one.
func checkGrowth(t kmsg.CreatePartitionsRequestTopic, n, room int) (int16, string) {
	count := int(t.Count)
	switch {
	case count < n:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("topic %s has %d partitions; %d would not be an increase (a partition count never shrinks)", t.Topic, n, count)
	case count == n:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("topic %s already has %d partitions", t.Topic, n)
	case count > 1<<16:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: a topic has at most 65536", count)
	case count-n > room:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions added: this server adds at most %d in one request (runnel serve -max-partitions)", count-n, room)
	case t.Assignment == nil:
		return 0, ""
	case len(t.Assignment) != count-n:
		return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("%d partitions added, but %d assignments given: one per partition added", count-n, len(t.Assignment))
	}
	for i, a := range t.Assignment {
		if code, msg := checkReplicas(int32(n+i), a.Replicas); code != 0 {
			return code, msg
		}
	}
	return 0, ""
}

// growTopic grows topic name to count partitions, unless another call
// made it as large meanwhile, and returns the error code and message for
// the topic's entry of the response.
func (s *Server) growTopic(ctx context.Context, name string, count int) (int16, string) {
	var had int
	err := s.log.AlterTopicContext(ctx, name, func(cfg *runnel.TopicConfig) {
		had = cfg.Partitions
		cfg.Partitions = max(cfg.Partitions, count)
	})
	switch {
	case err != nil:
		return topicErrorCode(err), err.Error()
	case had >= count:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("topic %s has %d partitions already (grown meanwhile)", name, had)
	}
	s.opts.Logger.Info("kafka: partitions added", "topic", name, "from", had, "to", count)
	return 0, ""
}
