package kafka

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-12. One broker, node 0, leads every partition with leader
// epoch 0 and is the only replica. Each topic is reported with its id
// (v10+, topic_ids.go), and a topic that v12 names by id alone is looked
// up and answered with its name, or UNKNOWN_TOPIC_ID. Every other API is
// capped below the versions that address topics by id alone (Fetch 13,
// Produce 13, OffsetCommit 10, OffsetFetch 10, DeleteTopics 6), so
// clients keep naming them.

func init() { supports(kmsg.Metadata, 0, 12) }

func (c *conn) metadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := c.brokerAddr()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, host, port
	resp.Brokers = append(resp.Brokers, b)
	resp.ClusterID = &c.s.clusterID
	resp.ControllerID = 0
	if req.IncludeClusterAuthorizedOperations && req.Version <= 10 {
		resp.AuthorizedOperations = clusterOperations
	}

	var names []string
	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		var err error
		if names, err = c.s.log.Topics(); err != nil {
			c.s.opts.Logger.Error("kafka: list topics", "err", err)
		}
	}
	// A topic named twice is answered once, as Kafka's broker takes the
	// request's topics as a set.
	named := make(map[string]bool, len(req.Topics))
	for _, t := range req.Topics {
		name := t.Topic
		if name == nil {
			found, ok := topicNamed(c.s.log, t.TopicID)
			if !ok {
				rt := kmsg.NewMetadataResponseTopic()
				rt.TopicID = t.TopicID
				rt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, rt)
				continue
			}
			name = &found
		}
		if named[*name] {
			continue
		}
		named[*name] = true
		names = append(names, *name)
	}
	autoCreate := c.s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, name := range names {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		if req.IncludeTopicAuthorizedOperations {
			rt.AuthorizedOperations = topicOperations
		}
		// The config and the id from one read: a topic deleted and made
		// again meanwhile is answered as one of the two, not a mix.
		cfg, id, err := c.s.log.TopicConfigAndID(name)
		if errors.Is(err, runnel.ErrTopicNotFound) && autoCreate && !all {
			if err = c.s.autoCreate(name); err == nil {
				cfg, id, err = c.s.log.TopicConfigAndID(name)
			}
		}
		if err != nil {
			rt.ErrorCode = topicNameErrorCode(err)
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		if req.Version >= 10 {
			rt.TopicID = kafkaTopicID(id)
		}
		for p := range cfg.Partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition = int32(p)
			rp.Leader, rp.LeaderEpoch = 0, 0
			rp.Replicas, rp.ISR = []int32{0}, []int32{0}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// brokerAddr is the address clients are told to use: Options.Advertise,
// else the address this connection reached.
func (c *conn) brokerAddr() (string, int32) {
	addr := c.s.opts.Advertise
	if addr == "" {
		addr = c.nc.LocalAddr().String()
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

// autoCreate creates a topic with the default partition count; one that
// another client created first is fine.
func (s *Server) autoCreate(name string) error {
	ctx, cancel := s.adminContext(0)
	defer cancel()
	err := s.log.CreateTopicContext(ctx, name, runnel.TopicConfig{Partitions: s.opts.DefaultPartitions})
	if err == nil {
		s.opts.Logger.Info("kafka: topic auto-created", "topic", name, "partitions", s.opts.DefaultPartitions)
	}
	if errors.Is(err, runnel.ErrTopicExists) {
		return nil
	}
	return err
}

// topicErrorCode maps a runnel error about a topic to Kafka's code. A
// name no topic can have is a topic there is not, as Kafka's broker
// answers the requests that use a topic (Produce, Fetch, ListOffsets, the
// offset calls, DeleteTopics): it looks the partition up and checks no
// name rule. The calls that check the rule use topicNameErrorCode.
func topicErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, runnel.ErrTopicNotFound), errors.Is(err, runnel.ErrInvalidName):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, runnel.ErrCorrupt):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, runnel.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, runnel.ErrInvalidArgument):
		return kerr.InvalidRequest.Code
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code // another process's lock outlasted the wait
	case errors.As(err, new(syscall.Errno)):
		// The disk failed the call (full, read-only, an I/O error), as
		// Kafka's log directory fails: clients retry KAFKA_STORAGE_ERROR,
		// and a disk that has room again takes the retry. They give up on
		// UNKNOWN_SERVER_ERROR at once.
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// topicNameErrorCode is topicErrorCode for the calls where Kafka's broker
// checks a topic's name against its rule first (Metadata, CreateTopics,
// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs): a name
// outside it gets INVALID_TOPIC_EXCEPTION.
func topicNameErrorCode(err error) int16 {
	if errors.Is(err, runnel.ErrInvalidName) {
		return kerr.InvalidTopicException.Code
	}
	return topicErrorCode(err)
}
