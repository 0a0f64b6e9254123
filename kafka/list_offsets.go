package kafka

import (
	"errors"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-10. Timestamp -2 asks for the earliest offset, -1 for
// the latest (the high watermark), and any other for the first record whose
// timestamp, in milliseconds, is at or after it (offset -1 if none is).
// The queries of later versions are answered as a Kafka broker without
// tiered storage answers them, at any version, as Kafka does: -3 (v7,
// KIP-734) the record with the largest timestamp, -4 (v8, the start of
// the log kept locally) the earliest offset, -5 (v9, the newest offset in
// tiered storage) offset -1. v10's timeout bounds tiered storage lookups,
// which there are none of.

func init() { supports(kmsg.ListOffsets, 1, 10) }

const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
	listLatestTiered  = -5
)

func (c *conn) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	twice := partitionsNamedTwice(req)
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
			case twice[namedPartition{t.Topic, p.Partition}]:
				rp.ErrorCode = kerr.InvalidRequest.Code
			case code != 0:
				rp.ErrorCode = code
			case p.Timestamp == listLatest:
				_, rp.Offset, rp.ErrorCode = c.s.partitionOffsets(t.Topic, p.Partition)
			case p.Timestamp == listEarliest, p.Timestamp == listEarliestLocal:
				rp.Offset, _, rp.ErrorCode = c.s.partitionOffsets(t.Topic, p.Partition)
			case p.Timestamp == listLatestTiered:
				rp.Offset = -1
			case p.Timestamp == listMaxTimestamp:
				var perr error
				rp.Offset, rp.Timestamp, perr = c.s.maxTimestamp(t.Topic, int(p.Partition))
				rp.ErrorCode = topicErrorCode(perr)
			case p.Timestamp < 0:
				rp.ErrorCode = kerr.UnsupportedVersion.Code
			default:
				var perr error
				rp.Offset, rp.Timestamp, perr = c.s.offsetForTime(t.Topic, int(p.Partition), p.Timestamp)
				rp.ErrorCode = topicErrorCode(perr)
			}
			// Kafka gives no leader epoch with an offset it did not find,
			// and none of the three with an error.
			switch {
			case rp.ErrorCode != 0:
				rp.Offset, rp.Timestamp, rp.LeaderEpoch = -1, -1, -1
			case rp.Offset < 0:
				rp.LeaderEpoch = -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// namedPartition is a partition of a topic as a request names it.
type namedPartition struct {
	topic     string
	partition int32
}

// partitionsNamedTwice is the partitions a ListOffsets request names more
// than once, in one topic entry or in two: Kafka's broker answers each
// entry of such a partition INVALID_REQUEST (its duplicatePartitions).
func partitionsNamedTwice(req *kmsg.ListOffsetsRequest) map[namedPartition]bool {
	var named []namedPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			named = append(named, namedPartition{t.Topic, p.Partition})
		}
	}
	return namedTwice(named, func(np namedPartition) namedPartition { return np })
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
	rec, ok, err := s.log.FirstRecord(topic, partition, runnel.AtTime(time.UnixMilli(ms)))
	if err != nil || !ok {
		return -1, -1, err
	}
	return rec.Offset, rec.Time.UnixMilli(), nil
}

// maxTimestamp finds the record with the largest timestamp in milliseconds,
// the first such by offset, as Kafka's max-timestamp query does: its offset
// and timestamp, or -1, -1 if the partition holds no record. runnel keeps
// no partition's largest timestamp, so it is searched for with the time
// lookups offsetForTime makes, each of which answers whether a record is
// at or after a time, and which: from the newest record's time, usually
// the largest (one lookup then says so; the first record's where a
// salvage marked the newest offsets lost), in steps that double while
// records newer than the last found are found, then by halves between the
// newest found and the first time none is at. That is a few lookups when
// only a few records are newer than the newest, and at most about 110.
func (s *Server) maxTimestamp(topic string, partition int) (int64, int64, error) {
	start, end, err := s.log.PartitionOffsets(topic, partition)
	if err != nil || start == end {
		return -1, -1, err
	}
	last, ok, err := s.log.FirstRecord(topic, partition, runnel.AtOffset(end-1))
	if err == nil && !ok {
		// The newest offsets were lost (a salvage's gap at the end):
		// start from the first record there is, if any.
		last, ok, err = s.log.FirstRecord(topic, partition, runnel.Earliest)
	}
	if err != nil || !ok {
		return -1, -1, err
	}
	lo := last.Time.UnixMilli() // a record is at lo
	hi := int64(maxMillis)      // none is after hi
	bounded := false            // hi is below a time none is at
	for step := int64(1); lo < hi; {
		probe := lo + min(step, hi-lo)
		off, ms, err := s.offsetForTime(topic, partition, probe)
		if err != nil {
			return 0, 0, err
		}
		if off < 0 {
			hi, bounded = probe-1, true
		} else {
			lo = ms
		}
		if bounded {
			step = max((hi-lo)/2, 1)
		} else {
			step *= 2
		}
	}
	return s.offsetForTime(topic, partition, lo)
}
