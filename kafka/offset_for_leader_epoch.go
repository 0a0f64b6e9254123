package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-4. Every partition has had one leader epoch,
// 0, since it was created, so its end offset is the partition's; a client
// asking about a later epoch is ahead of the server (UNKNOWN_LEADER_EPOCH
// when it says the current epoch is past 0, FENCED_LEADER_EPOCH never
// arises).

func init() { supports(kmsg.OffsetForLeaderEpoch, 0, 4) }

func (c *conn) offsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		cfg, err := c.s.log.TopicConfig(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			switch code := partitionCode(cfg, err, p.Partition); {
			case code != 0:
				rp.ErrorCode = code
			case p.CurrentLeaderEpoch > 0:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case p.LeaderEpoch > 0:
				rp.LeaderEpoch, rp.EndOffset = -1, -1
			default:
				rp.LeaderEpoch = 0
				_, rp.EndOffset, rp.ErrorCode = c.s.partitionOffsets(t.Topic, p.Partition)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
