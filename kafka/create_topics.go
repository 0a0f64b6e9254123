package kafka

import (
	"errors"
	"fmt"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics: v0-7, with the partition count (-1: Options.
// DefaultPartitions; at most Options.MaxPartitions in one request) and
// the configs of configs.go. Replication factor -1 or 1 only; a manual
// replica assignment is taken when it asks for what runnel does, each
// partition's one replica on broker 0 (as kafka-topics.sh
// --replica-assignment 0,0,0 sends it), and makes as many partitions. A
// topic named twice in one request is refused, every entry of it, and
// made by none, as in Kafka. A topic whose name another process holds (an admin call on it) is waited
// for until the request's timeout, then gets REQUEST_TIMED_OUT.

func init() { supports(kmsg.CreateTopics, 0, 7) }

func (c *conn) createTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	twice := namedTwice(req.Topics, func(t kmsg.CreateTopicsRequestTopic) string { return t.Topic })
	asked := 0 // partitions the request's topics asked for so far
	ctx, cancel := c.s.adminContext(req.TimeoutMillis)
	defer cancel()
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, msg string) {
			rt.ErrorCode, rt.ErrorMessage = code, &msg
		}
		cfg := runnel.TopicConfig{Partitions: int(t.NumPartitions)}
		if t.NumPartitions == -1 {
			cfg.Partitions = c.s.opts.DefaultPartitions
		}
		assignCode, assignMsg := checkAssignment(t)
		if len(t.ReplicaAssignment) > 0 {
			cfg.Partitions = len(t.ReplicaAssignment)
		}
		var cfgErr error
		for _, kv := range t.Configs {
			if cfgErr = c.s.applyTopicConfig(&cfg, kv.Name, kv.Value); cfgErr != nil {
				break
			}
		}
		if cfgErr == nil {
			// What CreateTopic would refuse, refused under ValidateOnly
			// too (a bad partition count is told apart below).
			cfgErr = cfg.Validate()
		}
		switch {
		case twice[t.Topic]:
			fail(kerr.InvalidRequest.Code, "topic named twice in one request")
		case assignCode != 0:
			fail(assignCode, assignMsg)
		case cfg.Partitions < 1:
			fail(kerr.InvalidPartitions.Code, "the partition count must be at least 1")
		case cfg.Partitions > c.s.opts.MaxPartitions-asked:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions after %d: this server creates at most %d in one request (runnel serve -max-partitions)", cfg.Partitions, asked, c.s.opts.MaxPartitions))
		case t.ReplicationFactor != -1 && t.ReplicationFactor != 1:
			fail(kerr.InvalidReplicationFactor.Code, "runnel is one broker: replication factor 1 (or -1)")
		case cfgErr != nil:
			fail(kerr.InvalidConfig.Code, cfgErr.Error())
		case req.ValidateOnly:
			if _, err := c.s.log.TopicConfig(t.Topic); err == nil {
				fail(kerr.TopicAlreadyExists.Code, "topic exists")
			} else if !errors.Is(err, runnel.ErrTopicNotFound) {
				fail(topicNameErrorCode(err), err.Error())
			}
		default:
			if err := c.s.log.CreateTopicContext(ctx, t.Topic, cfg); err != nil {
				code := topicNameErrorCode(err)
				if errors.Is(err, runnel.ErrInvalidArgument) {
					code = kerr.InvalidConfig.Code
				}
				fail(code, err.Error())
			} else {
				c.s.opts.Logger.Info("kafka: topic created", "topic", t.Topic, "partitions", cfg.Partitions)
			}
		}
		if rt.ErrorCode == 0 {
			asked += cfg.Partitions
			rt.NumPartitions, rt.ReplicationFactor = int32(cfg.Partitions), 1
			// The ID and the configs from one read: a topic deleted
			// and made again between two reads would be answered
			// with one topic's ID and the other's configs.
			if stored, id, err := c.s.log.TopicConfigAndID(t.Topic); err == nil {
				cfg = stored
				if !req.ValidateOnly {
					rt.TopicID = kafkaTopicID(id)
				}
			}
			for _, tc := range c.s.topicConfigs(cfg) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly = tc.name, kmsg.StringPtr(tc.value), tc.readOnly
				rc.Source = int8(kmsg.ConfigSourceDefaultConfig)
				if tc.isSet() {
					rc.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
				}
				rt.Configs = append(rt.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// checkAssignment refuses a manual replica assignment that asks for other
// than runnel's: with Kafka's codes, a count or factor beside it
// (INVALID_REQUEST, as Kafka takes one or the other), partitions that are
// not 0 to n-1 once each, or replicas other than broker 0 alone
// (INVALID_REPLICA_ASSIGNMENT). No assignment is fine.
func checkAssignment(t kmsg.CreateTopicsRequestTopic) (int16, string) {
	as := t.ReplicaAssignment
	if len(as) == 0 {
		return 0, ""
	}
	if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
		return kerr.InvalidRequest.Code, "a manual replica assignment takes a partition count and a replication factor of -1"
	}
	seen := make([]bool, len(as))
	for _, a := range as {
		switch {
		case a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition]:
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("the assignment's partitions must be 0 to %d, each once", len(as)-1)
		}
		if code, msg := checkReplicas(a.Partition, a.Replicas); code != 0 {
			return code, msg
		}
		seen[a.Partition] = true
	}
	return 0, ""
}

// checkReplicas refuses a partition's replicas in a manual assignment
// unless they are what runnel has: one, on broker 0.
func checkReplicas(partition int32, replicas []int32) (int16, string) {
	if len(replicas) != 1 || replicas[0] != 0 {
		return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("partition %d's replicas %v: runnel is one broker, node 0, with one replica of each partition", partition, replicas)
	}
	return 0, ""
}
