package kafka

import (
	"errors"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords: v0-2. runnel.Log.DeleteRecords moves each partition's
// log start offset to the offset asked for (-1: the high watermark),
// synced before the answer, and the answer's low watermark is the start
// after it. As in Kafka's broker, an offset past the high watermark is
// OFFSET_OUT_OF_RANGE and one at or below the start leaves it where it
// is; a topic or partition there is not is UNKNOWN_TOPIC_OR_PARTITION,
// and a partition whose writer lock another process keeps past the
// request's timeout is REQUEST_TIMED_OUT, left as it was. Fetches below
// the start then get OFFSET_OUT_OF_RANGE, those at records a connection
// read ahead before the call too (runnel.Consumer.DeletedBelow), every
// fetch sent after the call reports the start as its log start offset,
// and ListOffsets' earliest is the start.

func init() { supports(kmsg.DeleteRecords, 0, 2) }

func (c *conn) deleteRecords(req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := c.s.adminContext(req.TimeoutMillis)
	defer cancel()
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			if p.Offset < -1 {
				// Kafka's answer to an offset below -1.
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			start, err := c.s.log.DeleteRecords(ctx, t.Topic, int(p.Partition), p.Offset)
			switch {
			case err == nil:
				rp.LowWatermark = start
				c.s.opts.Logger.Info("kafka: records deleted", "topic", t.Topic, "partition", p.Partition, "start", start)
				if h := c.s.topics.cached(t.Topic); h != nil && int(p.Partition) < h.partitions() {
					c.s.logStart(h, p.Partition, true) // answers that report the start see it at once
				}
			case errors.Is(err, runnel.ErrInvalidArgument):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code // no such partition
			default:
				rp.ErrorCode = fetchErrorCode(err)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
