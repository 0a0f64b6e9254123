package kafka

import (
	"errors"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-6. Timestamp -2 asks for the earliest offset, -1 for the
// latest (the high watermark), and any other for the first record whose
// timestamp, in milliseconds, is at or after it (offset -1 if none is).
// v7's max-timestamp query (-3) is not offered.

func init() { supports(kmsg.ListOffsets, 1, 6) }

const (
	listLatest   = -1
	listEarliest = -2
)

func (c *conn) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		info, err := c.s.log.DescribeTopic(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch = 0
			pi, code := partitionOf(info, err, p.Partition)
			switch {
			case code != 0:
				rp.ErrorCode = code
			default:
				rp.Timestamp = -1
				switch p.Timestamp {
				case listLatest:
					rp.Offset = pi.NextOffset
				case listEarliest:
					rp.Offset = pi.StartOffset
				default:
					if p.Timestamp < 0 {
						rp.ErrorCode = kerr.UnsupportedVersion.Code
						break
					}
					var perr error
					rp.Offset, rp.Timestamp, perr = c.s.offsetForTime(t.Topic, int(p.Partition), p.Timestamp)
					rp.ErrorCode = topicErrorCode(perr)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// partitionOf picks partition p of a DescribeTopic answer, or the error
// code for the answer's error or a partition it does not have.
func partitionOf(info runnel.TopicInfo, err error, p int32) (runnel.PartitionInfo, int16) {
	switch {
	case err != nil:
		return runnel.PartitionInfo{}, topicErrorCode(err)
	case p < 0 || int(p) >= len(info.Partitions):
		return runnel.PartitionInfo{}, kerr.UnknownTopicOrPartition.Code
	}
	return info.Partitions[p], 0
}

// offsetForTime finds the first record at or after ms and returns its
// offset and timestamp, or -1, -1 if there is none.
func (s *Server) offsetForTime(topic string, partition int, ms int64) (int64, int64, error) {
	cons, err := s.log.Consumer(topic, &runnel.ConsumerOptions{
		Partitions: []int{partition}, Start: runnel.AtTime(time.UnixMilli(ms)), MaxPollBytes: minPollBytes,
	})
	if errors.Is(err, runnel.ErrOutOfRange) {
		return -1, -1, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer cons.Close()
	recs, err := cons.TryPoll()
	if err != nil || len(recs) == 0 {
		return -1, -1, err
	}
	return recs[0].Offset, recs[0].Time.UnixMilli(), nil
}
