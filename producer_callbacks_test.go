package runnel

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCallbacksAcrossManyFrames: a SendAsync stream that spans many
// frames, whose batches reuse each other's callback slices (batch.go),
// calls every callback exactly once, with its record's offset, in send
// order; mixing records without a callback and both Acks shifts nothing.
func TestCallbacksAcrossManyFrames(t *testing.T) {
	const n = 20000
	eachModeAndAcks(t, func(t *testing.T, l *Log, p *Producer) {
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

// eachModeAndAcks runs test on a Buffered and a Durable Log with small
// frames (hundreds of batches, most sent while another is in flight),
// with a producer of each Acks to its topic "t" of one partition.
func eachModeAndAcks(t *testing.T, test func(t *testing.T, l *Log, p *Producer)) {
	for _, d := range []Durability{Buffered, Durable} {
		for _, acks := range []Acks{AckDurability, AckCommitted} {
			t.Run(fmt.Sprintf("%s/acks=%d", d, acks), func(t *testing.T) {
				l := openTest(t, t.TempDir(), &Options{Durability: d, MaxBatchBytes: 2048})
				mustCreate(t, l, "t", TopicConfig{Partitions: 1})
				test(t, l, mustProducer(t, l, "t", &ProducerOptions{Acks: acks}))
			})
		}
	}
}

// TestCallbackRuns: records sent one after another with one callback
// share an entry (a run, batch.addCallback), which calls it once for each
// record, with that record's offset or the batch's error, in send order
// among the other callbacks; the acknowledgement a run waits for is its
// own, so a run never spans both.
func TestCallbackRuns(t *testing.T) {
	var got []string
	cb := func(name string) func(Position, error) {
		return func(pos Position, err error) {
			if err != nil {
				got = append(got, fmt.Sprintf("%s:%v", name, err))
				return
			}
			got = append(got, fmt.Sprintf("%s@%d", name, pos.Offset))
		}
	}
	f, g := cb("f"), cb("g")
	b := &batch{base: 10}
	b.addCallback(0, f, false)
	b.addCallback(1, f, false)
	b.addCallback(2, g, false)
	b.addCallback(3, f, false)
	b.addCallback(4, f, false)
	b.addCallback(6, f, false) // record 5 had none: not part of the run
	b.addCallback(7, f, true)  // acknowledged at commit: a run of its own
	if n := len(b.cbs); n != 5 {
		t.Errorf("%d entries for runs f f, g, f f, f, f (at commit): want 5", n)
	}
	rest := b.callBack(0, nil, true)
	if diff := cmp.Diff([]string{"f@17"}, got); diff != "" {
		t.Errorf("at commit (-want +got):\n%s", diff)
	}
	got = nil
	b.cbs = rest
	b.callBack(0, nil, false)
	if diff := cmp.Diff([]string{"f@10", "f@11", "g@12", "f@13", "f@14", "f@16"}, got); diff != "" {
		t.Errorf("once durable (-want +got):\n%s", diff)
	}

	got = nil
	failed := &batch{}
	for i := range 3 {
		failed.addCallback(i, g, false)
	}
	failed.callBack(0, ErrClosed, false)
	if diff := cmp.Diff([]string{"g:" + ErrClosed.Error(), "g:" + ErrClosed.Error(), "g:" + ErrClosed.Error()}, got); diff != "" {
		t.Errorf("a failed run (-want +got):\n%s", diff)
	}
}

// TestSharedCallbackStream: one callback for a whole SendAsync stream, as
// a streaming program passes, with batches and records without a
// callback among its records, is called once for each of its records,
// with its offset, in order, across many frames and both Acks.
func TestSharedCallbackStream(t *testing.T) {
	const n = 20000
	eachModeAndAcks(t, func(t *testing.T, l *Log, p *Producer) {
		var offsets []int64 // callbacks of one partition run one at a time
		done := func(pos Position, err error) {
			if err != nil {
				t.Errorf("callback: %v", err)
			}
			offsets = append(offsets, pos.Offset)
		}
		var want []int64
		value := make([]byte, 100)
		for i := 0; i < n; i++ {
			switch {
			case i%97 == 5:
				p.SendAsync(Record{Value: value}, nil)
			case i%89 == 7:
				// A batch of two: its callback once, for the first.
				p.SendBatchAsync(0, []Record{{Value: value}, {Value: value}}, func(base int64, err error) {
					done(Position{Offset: base}, err)
				})
				want = append(want, int64(i))
				i++
			default:
				p.SendAsync(Record{Value: value}, done)
				want = append(want, int64(i))
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, offsets); diff != "" {
			t.Errorf("offsets called back (-want +got):\n%s", diff)
		}
		if st := l.Stats(); st.FramesWritten < 100 {
			t.Errorf("Stats %+v: want at least 100 frames", st)
		}
	})
}
