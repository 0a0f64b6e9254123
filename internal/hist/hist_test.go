package hist

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestObserveBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{
		-time.Second,          // a clock step: bucket 0
		0,                     // bucket 0
		10 * time.Microsecond, // on the bound: bucket 0 (bounds are inclusive)
		10*time.Microsecond + 1,
		time.Millisecond,
		10 * time.Second,
		10*time.Second + 1, // overflow
		time.Hour,          // overflow
	} {
		h.Observe(d)
	}
	s := h.Load()
	var want [len(Bounds) + 1]int64
	want[0] = 3
	want[1] = 1
	want[6] = 1 // 1ms
	want[len(Bounds)-1] = 1
	want[len(Bounds)] = 2
	if diff := cmp.Diff(want, s.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if s.Count() != 8 {
		t.Errorf("count %d, want 8", s.Count())
	}
	wantSum := 10*time.Microsecond + 10*time.Microsecond + 1 + time.Millisecond + 10*time.Second + 10*time.Second + 1 + time.Hour
	if s.Sum != wantSum {
		t.Errorf("sum %v, want %v", s.Sum, wantSum)
	}
}

func TestBoundsIncrease(t *testing.T) {
	for i := 1; i < len(Bounds); i++ {
		if Bounds[i] <= Bounds[i-1] {
			t.Fatalf("bound %d (%v) is not above bound %d (%v)", i, Bounds[i], i-1, Bounds[i-1])
		}
	}
}

func TestObserveConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Observe(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if n := h.Load().Count(); n != 8000 {
		t.Fatalf("count %d after 8000 observations", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(time.Duration(i&1023) * time.Microsecond)
	}
}
