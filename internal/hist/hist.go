// Package hist is a latency histogram cheap enough for an append or request
// path: fixed, log-spaced buckets of atomic counters, so that recording a
// duration takes a few comparisons and two atomic adds, never a lock or an
// allocation. Readers take a snapshot, which is not atomic across buckets:
// an observation in flight may show in its bucket before the sum, which
// monitoring tolerates (Prometheus client libraries make the same trade).
package hist

import (
	"sync/atomic"
	"time"
)

// Bounds are the buckets' upper bounds, inclusive, on a 1–2.5–5 scale from
// 10µs to 10s: fine enough to tell an NVMe fdatasync (tens of µs) from a
// virtual disk's (about a millisecond) and from a stalled one (seconds),
// and few enough to keep a histogram at 21 words. Durations past the last
// bound are counted in an overflow bucket (Prometheus's +Inf).
var Bounds = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second,
}

// Histogram counts durations by bucket. The zero value is empty and ready.
type Histogram struct {
	counts [len(Bounds) + 1]atomic.Int64 // the last is the overflow bucket
	sum    atomic.Int64                  // nanoseconds
}

// Observe records one duration. A negative one (a clock step) counts as 0.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(Bounds) && d > Bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot is a histogram's counts at one moment: Counts[i] observations in
// (Bounds[i-1], Bounds[i]], the last entry past every bound.
type Snapshot struct {
	Counts [len(Bounds) + 1]int64
	Sum    time.Duration
}

// Load reads the histogram.
func (h *Histogram) Load() Snapshot {
	var s Snapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Count is the number of observations.
func (s Snapshot) Count() int64 {
	var n int64
	for _, c := range s.Counts {
		n += c
	}
	return n
}
