package runnel

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// TestCallbacksAcrossManyFrames: a SendAsync stream that spans many
// frames, whose batches reuse each other's callback slices (batch.go),
// calls every callback exactly once, with its record's offset, in send
// order; mixing records without a callback and both Acks shifts nothing.
func TestCallbacksAcrossManyFrames(t *testing.T) {
	const n = 20000
	for _, d := range []Durability{Buffered, Durable} {
		for _, acks := range []Acks{AckDurability, AckCommitted} {
			t.Run(fmt.Sprintf("%s/acks=%d", d, acks), func(t *testing.T) {
				// Small frames: hundreds of batches, most sent while
				// another is in flight.
				l := openTest(t, t.TempDir(), &Options{Durability: d, MaxBatchBytes: 2048})
				mustCreate(t, l, "t", TopicConfig{Partitions: 1})
				p := mustProducer(t, l, "t", &ProducerOptions{Acks: acks})
				calls := make([]atomic.Int32, n)
				offsets := make([]atomic.Int64, n)
				var order atomic.Int64 // the next index expected to call back
				var outOfOrder atomic.Int64
				value := make([]byte, 100)
				for i := range n {
					if i%7 == 3 {
						// No callback: its slot must not shift the others.
						p.SendAsync(Record{Value: value}, nil)
						continue
					}
					p.SendAsync(Record{Value: value}, func(pos Position, err error) {
						if err != nil {
							t.Errorf("record %d: %v", i, err)
						}
						calls[i].Add(1)
						offsets[i].Store(pos.Offset)
						if prev := order.Swap(int64(i)); prev > int64(i) {
							outOfOrder.Add(1)
						}
					})
					if i%5000 == 4999 {
						if err := p.Flush(context.Background()); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := p.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					want := int32(1)
					if i%7 == 3 {
						want = 0
					}
					if got := calls[i].Load(); got != want {
						t.Fatalf("record %d: %d callbacks, want %d", i, got, want)
					}
					if want == 1 && offsets[i].Load() != int64(i) {
						t.Fatalf("record %d: called back with offset %d", i, offsets[i].Load())
					}
				}
				if k := outOfOrder.Load(); k != 0 {
					t.Errorf("%d callbacks out of send order", k)
				}
				if st := l.Stats(); st.FramesWritten < 100 || st.RecordsWritten != n {
					t.Fatalf("Stats %+v: want %d records in at least 100 frames", st, n)
				}
			})
		}
	}
}
