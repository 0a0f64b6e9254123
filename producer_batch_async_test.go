package runnel

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestSendBatchAsyncPipelined queues batches one after another without
// waiting: they are stored in send order, each at consecutive offsets from
// the base its callback got, and the callbacks come in that order.
func TestSendBatchAsyncPipelined(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d})
			mustCreate(t, l, "a", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "a", nil)
			const batches, size = 200, 5
			var mu sync.Mutex
			var bases []int64
			var wg sync.WaitGroup
			wg.Add(batches)
			for i := range batches {
				recs := make([]Record, size)
				for j := range recs {
					recs[j].Value = fmt.Appendf(nil, "%d/%d", i, j)
				}
				p.SendBatchAsync(0, recs, func(base int64, err error) {
					defer wg.Done()
					if err != nil {
						t.Errorf("batch %d: %v", i, err)
						return
					}
					mu.Lock()
					bases = append(bases, base)
					mu.Unlock()
				})
			}
			wg.Wait()
			for i, base := range bases {
				if base != int64(i*size) {
					t.Fatalf("callback %d got base %d, want %d (send order)", i, base, i*size)
				}
			}
			got := readAll(t, l, "a", batches*size, nil)
			for k, r := range got {
				if want := fmt.Sprintf("%d/%d", k/size, k%size); string(r.Value) != want {
					t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Value, want)
				}
			}
		})
	}
}

func TestSendBatchAsyncRejects(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "a", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "a", nil)
	value := make([]byte, 1<<20-16)
	big := make([]Record, MaxFrameBytes/(1<<20)+1) // over one frame
	for i := range big {
		big[i].Value = value
	}
	for name, tc := range map[string]struct {
		partition int
		recs      []Record
		want      error
	}{
		"too large":     {0, big, ErrTooLarge},
		"bad partition": {3, []Record{{}}, ErrInvalidArgument},
		"empty":         {0, nil, ErrInvalidArgument},
	} {
		called := false
		p.SendBatchAsync(tc.partition, tc.recs, func(_ int64, err error) {
			called = true
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", name, err, tc.want)
			}
		})
		if !called {
			t.Errorf("%s: the error did not come before SendBatchAsync returned", name)
		}
	}
}
