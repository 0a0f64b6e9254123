package runnel

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// The times a record's int64 nanoseconds hold, and one step past each.
var (
	earliestRecordTime = time.Unix(0, math.MinInt64)
	latestRecordTime   = time.Unix(0, math.MaxInt64)
	beforeRecordTimes  = earliestRecordTime.Add(-time.Nanosecond)
	afterRecordTimes   = latestRecordTime.Add(time.Nanosecond)
)

// TestRecordTimeRange sends records timed at the ends of what a record's
// timestamp holds, which come back as sent, and beyond them, which every
// way of sending refuses with ErrInvalidArgument and stores nothing of:
// time.Time.UnixNano wraps there, and a record of the year 3000 was stored
// as one of 1830, and one of 1600 as one of 2184.
func TestRecordTimeRange(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "times", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "times", nil)
	ctx := context.Background()
	good := []time.Time{
		earliestRecordTime,
		time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		latestRecordTime,
	}
	for _, tm := range good {
		if _, err := p.Send(ctx, Record{Value: []byte("v"), Time: tm}); err != nil {
			t.Fatalf("Send at %v: %v", tm, err)
		}
	}
	bad := []time.Time{
		beforeRecordTimes,
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), // not the zero Time
		afterRecordTimes,
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, tm := range bad {
		rec := Record{Value: []byte("v"), Time: tm}
		if _, err := p.Send(ctx, rec); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Send at %v: %v, want ErrInvalidArgument", tm, err)
		}
		var asyncErr error
		p.SendAsync(rec, func(_ Position, err error) { asyncErr = err })
		if !errors.Is(asyncErr, ErrInvalidArgument) {
			t.Errorf("SendAsync at %v: %v before it returned, want ErrInvalidArgument", tm, asyncErr)
		}
		if _, err := p.SendBatch(ctx, 0, []Record{{Value: []byte("ok")}, rec}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SendBatch with a record at %v: %v, want ErrInvalidArgument", tm, err)
		}
		var b RecordBatch
		if err := b.Add(rec); !errors.Is(err, ErrInvalidArgument) || b.Len() != 0 {
			t.Errorf("RecordBatch.Add at %v: %v, %d records in the batch; want ErrInvalidArgument and none", tm, err, b.Len())
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, "times", len(good), nil)
	for i, r := range got[:min(len(got), len(good))] {
		if !r.Time.Equal(good[i]) {
			t.Errorf("record %d: time %v, sent %v", i, r.Time.UTC(), good[i].UTC())
		}
	}
	if _, next, err := l.PartitionOffsets("times", 0); err != nil || next != int64(len(good)) {
		t.Errorf("partition ends at %d (%v), want %d: a refused record was stored", next, err, len(good))
	}
}

// TestAtTimeBeyondRecordTimes starts consumers at times outside those a
// record holds: before them is the first record, after them nothing.
// UnixNano wrapped such a time, and a consumer at the year 3000 read every
// record from the first.
func TestAtTimeBeyondRecordTimes(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "times", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "times", nil)
	ctx := context.Background()
	sent := []time.Time{time.Unix(0, 0), time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()}
	for _, tm := range sent {
		if _, err := p.Send(ctx, Record{Value: []byte("v"), Time: tm}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		at    time.Time
		first int64 // -1: no record
	}{
		{time.Time{}, 0},
		{beforeRecordTimes, 0},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{afterRecordTimes, -1},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), -1},
	}
	for _, tt := range tests {
		c, err := l.Consumer("times", &ConsumerOptions{Start: AtTime(tt.at)})
		if err != nil {
			t.Fatalf("Consumer at %v: %v", tt.at, err)
		}
		recs, err := c.TryPoll()
		c.Close()
		switch {
		case err != nil:
			t.Errorf("AtTime(%v): %v", tt.at, err)
		case tt.first < 0 && len(recs) > 0:
			t.Errorf("AtTime(%v): records from offset %d, want none", tt.at, recs[0].Offset)
		case tt.first >= 0 && (len(recs) == 0 || recs[0].Offset != tt.first):
			t.Errorf("AtTime(%v): %d records, want them from offset %d", tt.at, len(recs), tt.first)
		}
	}
}
