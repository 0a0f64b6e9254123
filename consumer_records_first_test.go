package runnel

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
)

// Poll hands records over or fails, never both: a caller that handles the
// error alone (as Go's convention has it, and as the examples and the CLI
// did) skipped records that counted as handed to it, which the next
// commit, automatic at Close, covered. The records come first, the error
// at the next Poll.

// pollRecordsThenError polls c twice: the first Poll must return want
// records and no error, the second no records and an error, which it
// returns.
func pollRecordsThenError(t *testing.T, c *Consumer, want int) error {
	t.Helper()
	recs, err := c.TryPoll()
	if len(recs) != want || err != nil {
		t.Fatalf("first Poll: %d records and %v, want %d records and no error", len(recs), err, want)
	}
	recs, err = c.Poll(context.Background())
	if len(recs) != 0 || err == nil {
		t.Fatalf("second Poll: %d records and %v, want the error alone", len(recs), err)
	}
	return err
}

// TestPollRecordsBeforeRetention: a consumer reads a segment's last
// record, then finds the next segment removed by retention.
func TestPollRecordsBeforeRetention(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	value := make([]byte, 1000)
	for range 4 * minSegmentBytes / len(value) {
		if _, err := p.Send(ctx, Record{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	bases, err := listSegments(partDir(l, "t", 0))
	if err != nil || len(bases) < 4 {
		t.Fatalf("test setup: segments %v, %v", bases, err)
	}
	// All of the first segment but its last record.
	c, err := l.Consumer("t", &ConsumerOptions{MaxPollRecords: int(bases[1]) - 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if recs, err := c.TryPoll(); err != nil || len(recs) != int(bases[1])-1 {
		t.Fatalf("test setup: first Poll %d records, %v", len(recs), err)
	}
	if err := l.AlterTopic("t", func(cfg *TopicConfig) { cfg.RetentionBytes = 1 }); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if start, _, err := l.PartitionOffsets("t", 0); err != nil || start <= bases[1] {
		t.Fatalf("test setup: partition starts at %d (%v) after retention, want past %d", start, err, bases[1])
	}
	err = pollRecordsThenError(t, c, 1)
	if !errors.Is(err, ErrOutOfRange) {
		t.Errorf("second Poll: %v, want ErrOutOfRange", err)
	}
}

// TestPollRecordsBeforeDamage: one partition's records are handed over
// before another partition's damage is reported.
func TestPollRecordsBeforeDamage(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	ctx := context.Background()
	for i := range 6 {
		if _, err := p.Send(ctx, Record{Partition: i % 2, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	seg := parseSegment(t, segmentPath(partDir(l, "t", 1), 0, logExt), 0)
	if len(seg.Frames) < 2 {
		t.Fatalf("test setup: %d frames", len(seg.Frames))
	}
	flipByte(t, seg.Path, seg.Frames[0].Pos+frame.HeaderSize) // the first frame's first record
	c, err := l.Consumer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = pollRecordsThenError(t, c, 3)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("second Poll: %v, want ErrCorrupt", err)
	}
}
