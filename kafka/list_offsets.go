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
		cfg, err := c.s.log.TopicConfig(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch = 0
			rp.Timestamp = -1
			switch code := partitionCode(cfg, err, p.Partition); {
			case code != 0:
				rp.ErrorCode = code
			case p.Timestamp == listLatest:
				_, rp.Offset, rp.ErrorCode = c.s.partitionOffsets(t.Topic, p.Partition)
			case p.Timestamp == listEarliest:
				rp.Offset, _, rp.ErrorCode = c.s.partitionOffsets(t.Topic, p.Partition)
			case p.Timestamp < 0:
				rp.ErrorCode = kerr.UnsupportedVersion.Code
			default:
				var perr error
				rp.Offset, rp.Timestamp, perr = c.s.offsetForTime(t.Topic, int(p.Partition), p.Timestamp)
				rp.ErrorCode = topicErrorCode(perr)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// partitionCode is the error code for partition p of a topic whose
// TopicConfig gave cfg and err: the error's, or UNKNOWN_TOPIC_OR_PARTITION
// for a partition the topic does not have.
func partitionCode(cfg runnel.TopicConfig, err error, p int32) int16 {
	switch {
	case err != nil:
		return topicErrorCode(err)
	case p < 0 || int(p) >= cfg.Partitions:
		return kerr.UnknownTopicOrPartition.Code
	}
	return 0
}

// partitionOffsets looks partition p of topic up on disk: its start and
// end, or the error code for a topic or partition there is not, or that
// could not be read.
func (s *Server) partitionOffsets(topic string, p int32) (start, end int64, code int16) {
	if p < 0 {
		return 0, 0, kerr.UnknownTopicOrPartition.Code
	}
	start, end, err := s.log.PartitionOffsets(topic, int(p))
	if errors.Is(err, runnel.ErrInvalidArgument) { // no such partition
		return 0, 0, kerr.UnknownTopicOrPartition.Code
	}
	return start, end, topicErrorCode(err)
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
