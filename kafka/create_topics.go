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
// the configs of configs.go. Replication factor -1 or 1 only; explicit replica
// assignments are refused. A topic whose name another process holds (an
// admin call on it) is waited for until the request's timeout, then gets
// REQUEST_TIMED_OUT.

func init() { supports(kmsg.CreateTopics, 0, 7) }

func (c *conn) createTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]bool{}
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
		case seen[t.Topic]:
			fail(kerr.InvalidRequest.Code, "topic named twice in one request")
		case cfg.Partitions < 1:
			fail(kerr.InvalidPartitions.Code, "the partition count must be at least 1")
		case cfg.Partitions > c.s.opts.MaxPartitions-asked:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions after %d: this server creates at most %d in one request (runnel serve -max-partitions)", cfg.Partitions, asked, c.s.opts.MaxPartitions))
		case t.ReplicationFactor != -1 && t.ReplicationFactor != 1:
			fail(kerr.InvalidReplicationFactor.Code, "runnel is one broker: replication factor 1 (or -1)")
		case len(t.ReplicaAssignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "replica assignments are not supported")
		case cfgErr != nil:
			fail(kerr.InvalidConfig.Code, cfgErr.Error())
		case req.ValidateOnly:
			if _, err := c.s.log.TopicConfig(t.Topic); err == nil {
				fail(kerr.TopicAlreadyExists.Code, "topic exists")
			} else if !errors.Is(err, runnel.ErrTopicNotFound) {
				fail(topicErrorCode(err), err.Error())
			}
		default:
			if err := c.s.log.CreateTopicContext(ctx, t.Topic, cfg); err != nil {
				code := topicErrorCode(err)
				if errors.Is(err, runnel.ErrInvalidArgument) {
					code = kerr.InvalidConfig.Code
				}
				fail(code, err.Error())
			} else {
				c.s.opts.Logger.Info("kafka: topic created", "topic", t.Topic, "partitions", cfg.Partitions)
			}
		}
		seen[t.Topic] = true
		if rt.ErrorCode == 0 {
			asked += cfg.Partitions
			rt.NumPartitions, rt.ReplicationFactor = int32(cfg.Partitions), 1
			if stored, err := c.s.log.TopicConfig(t.Topic); err == nil {
				cfg = stored
			}
			for _, tc := range c.s.topicConfigs(cfg) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly = tc.name, kmsg.StringPtr(tc.value), tc.readOnly
				rc.Source = int8(kmsg.ConfigSourceDefaultConfig)
				if tc.isSet {
					rc.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
				}
				rt.Configs = append(rt.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
