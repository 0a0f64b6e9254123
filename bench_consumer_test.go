package runnel

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFirstRecord measures a fresh consumer's time to its first
// record on a partition of 1.1 M small records: Log.Consumer plus the first
// Poll, from the start, from the middle (an index lookup) and from the
// end's last record.
//
//	go test -run '^$' -bench FirstRecord .
func BenchmarkFirstRecord(b *testing.B) {
	const stored = 1_100_000
	l, p := benchLog(b, Buffered, "")
	value := []byte("job-42")
	for range stored {
		p.SendAsync(Record{Value: value}, nil)
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
