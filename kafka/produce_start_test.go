package kafka

import (
	"context"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceLogStartOffset: a Produce response (v5+) carries the
// partition's log start offset, as Kafka's does, on a stored batch and on
// one refused for its producer state (franz-go tells a producer forgotten
// because retention removed its batches, which it may carry on from, from
// data loss by it); a partition the topic does not have gets -1. A start
// retention moves shows in a later answer, and at once in a refusal's.
func TestProduceLogStartOffset(t *testing.T) {
	ts := startServer(t, nil)
	if err := ts.log.CreateTopic("ls", runnel.TopicConfig{Partitions: 1, SegmentBytes: 64 << 10, RetentionBytes: 128 << 10}); err != nil {
		t.Fatal(err)
	}
	fill := func() int64 { // about 6 segments; retention keeps 2 or 3
		value := make([]byte, 1000)
		var recs []runnel.Record
		for range 400 {
			recs = append(recs, runnel.Record{Value: value})
		}
		produceNative(t, ts.log, "ls", recs)
		if err := ts.log.EnforceRetention(context.Background()); err != nil {
			t.Fatal(err)
		}
		start, _, err := ts.log.PartitionOffsets("ls", 0)
		if err != nil {
			t.Fatal(err)
		}
		return start
	}
	start := fill()
	if start == 0 {
		t.Fatal("retention removed nothing")
	}
	rc := ts.raw()
	partition := func(req *kmsg.ProduceRequest) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		pr := rc.request(req).(*kmsg.ProduceResponse)
		if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			t.Fatalf("response has %d topics", len(pr.Topics))
		}
		return pr.Topics[0].Partitions[0]
	}
	pid, epoch := rc.initProducer()
	if p := partition(produceBatch("ls", 0, pid, epoch, 0, "a", 9)); p.ErrorCode != 0 || p.BaseOffset != 400 || p.LogStartOffset != start {
		t.Fatalf("stored: code %d, base %d, log start %d; want 0, 400, %d", p.ErrorCode, p.BaseOffset, p.LogStartOffset, start)
	}
	if p := partition(produceBatch("ls", 3, -1, -1, -1, "x", 9)); p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.LogStartOffset != -1 {
		t.Errorf("unknown partition: code %d, log start %d; want UNKNOWN_TOPIC_OR_PARTITION, -1", p.ErrorCode, p.LogStartOffset)
	}

	moved := fill()
	if moved <= start {
		t.Fatalf("retention left the start at %d", moved)
	}
	if p := partition(produceBatch("ls", 0, pid, epoch, 5, "gap", 9)); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code || p.LogStartOffset != moved {
		t.Errorf("out of order: code %d, log start %d; want OUT_OF_ORDER_SEQUENCE_NUMBER, %d", p.ErrorCode, p.LogStartOffset, moved)
	}
	seq := int32(1)
	waitFor(t, "a stored batch's answer with the moved start", func() bool {
		p := partition(produceBatch("ls", 0, pid, epoch, seq, "b", 9))
		if p.ErrorCode != 0 || p.LogStartOffset < start || p.LogStartOffset > moved {
			t.Fatalf("stored: code %d, log start %d; want 0 and from %d to %d", p.ErrorCode, p.LogStartOffset, start, moved)
		}
		seq++
		return p.LogStartOffset == moved
	})
}
