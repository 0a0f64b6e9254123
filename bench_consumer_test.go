package runnel

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkFirstRecord measures a fresh consumer's time to its first
// record on a partition of 1.1 M small records: Log.Consumer plus the first
// Poll, from the start, from the middle (an index lookup), from the end's
// last record, and from the middle record's time (a time index lookup).
//
//	go test -run '^$' -bench FirstRecord .
func BenchmarkFirstRecord(b *testing.B) {
	const stored = 1_100_000
	l, p := benchLog(b, Buffered, "")
	value := []byte("job-42")
	for i := range stored {
		p.SendAsync(Record{Value: value, Time: benchTime(i)}, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, start := range []struct {
		name string
		sp   StartPosition
	}{
		{"earliest", Earliest},
		{"middle", AtOffset(stored / 2)},
		{"last", AtOffset(stored - 1)},
		{"time", AtTime(benchTime(stored / 2))},
	} {
		b.Run(fmt.Sprintf("start=%s", start.name), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			var batch int
			for b.Loop() {
				c, err := l.Consumer("bench", &ConsumerOptions{Start: start.sp})
				if err != nil {
					b.Fatal(err)
				}
				recs, err := c.Poll(ctx)
				if err != nil || len(recs) == 0 {
					b.Fatalf("Poll: %d records, %v", len(recs), err)
				}
				batch = len(recs)
				c.Close()
			}
			b.ReportMetric(float64(batch), "records/poll")
		})
	}
}

// benchTime is the timestamp of the i-th record a benchmark stores.
func benchTime(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Microsecond) }

// BenchmarkStartByTime measures a fresh consumer's time to its first record
// when it starts by time, at the last segment's middle record, in a
// partition of 1, 16 or 64 segments of 1 MiB: the time index of every
// segment before it says to pass it over, and that of the last says where
// to start. Each entry used is checked against the log; a sealed
// segment's, once per Log (checked=before), or at every lookup, as in a
// process that looks up once (checked=never).
//
//	go test -run '^$' -bench StartByTime .
func BenchmarkStartByTime(b *testing.B) {
	const segBytes = 1 << 20
	value := make([]byte, 100)
	for _, segs := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("segments=%d", segs), func(b *testing.B) {
			l := openTest(b, b.TempDir(), &Options{Durability: Buffered})
			mustCreate(b, l, "bench", TopicConfig{Partitions: 1, SegmentBytes: segBytes})
			p, err := l.Producer("bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			// Frames of 100 records, the same in every run.
			stored := 0
			send := func(n int) []int64 {
				batch := make([]Record, 100)
				for ; n > 0; n -= len(batch) {
					batch = batch[:min(n, len(batch))]
					for i := range batch {
						batch[i] = Record{Value: value, Time: benchTime(stored + i)}
					}
					if _, err := p.SendBatch(context.Background(), 0, batch); err != nil {
						b.Fatal(err)
					}
					stored += len(batch)
				}
				bases, err := listSegments(partDir(l, "bench", 0))
				if err != nil {
					b.Fatal(err)
				}
				return bases
			}
			// Fill segments up to the last, and that one halfway.
			bases := send(100)
			for len(bases) < segs {
				bases = send(100)
			}
			perSeg := segBytes / (len(value) + 16)
			if segs > 1 {
				perSeg = int(bases[1] - bases[0])
			}
			if bases = send(max(perSeg/2-(stored-int(bases[segs-1])), 0)); len(bases) != segs {
				b.Fatalf("test setup: %d segments, want %d", len(bases), segs)
			}
			want := (int(bases[segs-1]) + stored) / 2
			for _, cold := range []bool{false, true} {
				name := "checked=before"
				if cold {
					name = "checked=never"
				}
				b.Run(name, func(b *testing.B) {
					ctx := context.Background()
					b.ReportAllocs()
					for b.Loop() {
						if cold {
							// As a new Log: no seal's time entry checked yet.
							clearSealChecks(l)
						}
						c, err := l.Consumer("bench", &ConsumerOptions{Start: AtTime(benchTime(want))})
						if err != nil {
							b.Fatal(err)
						}
						recs, err := c.Poll(ctx)
						if err != nil || len(recs) == 0 || recs[0].Offset != int64(want) {
							b.Fatalf("Poll: %d records, %v; want offset %d first", len(recs), err, want)
						}
						c.Close()
					}
				})
			}
		})
	}
}

// BenchmarkFollow measures a consumer that follows a writer record by
// record, as a job queue's worker does: one buffered Send, then a TryPoll
// that returns it, per op (the Send is a third of it or so; see
// BenchmarkProduce's lone sender).
//
//	go test -run '^$' -bench Follow -benchtime 300000x .
func BenchmarkFollow(b *testing.B) {
	l, p := benchLog(b, Buffered, "")
	c, err := l.Consumer("bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := []byte("job-42")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Send(ctx, Record{Value: value}); err != nil {
			b.Fatal(err)
		}
		recs, err := c.TryPoll()
		if err != nil || len(recs) != 1 {
			b.Fatalf("TryPoll: %d records, %v; want the one sent", len(recs), err)
		}
	}
}
