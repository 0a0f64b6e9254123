package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram: 16 buckets per power of two, so
// every quantile it reports is within about 6% of the true value. Fixed
// size, so recording millions of samples does not inflate peak RSS.
type hist struct {
	Counts [60 * 16]uint64 `json:"-"`
	N      uint64
}

const histSub = 16

func histIndex(ns uint64) int {
	if ns < 2*histSub {
		return int(ns)
	}
	shift := bits.Len64(ns) - 5 // mantissa in [16, 32)
	return shift*histSub + int(ns>>shift)
}

// histValue is the midpoint of bucket i, in nanoseconds.
func histValue(i int) float64 {
	if i < 2*histSub {
		return float64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	lo := m << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := histIndex(uint64(d))
	if i >= len(h.Counts) {
		i = len(h.Counts) - 1
	}
	h.Counts[i]++
	h.N++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
}

// quantile returns the q-quantile in microseconds.
func (h *hist) quantile(q float64) float64 {
	if h.N == 0 {
		return 0
	}
	rank := uint64(q * float64(h.N))
	if rank >= h.N {
		rank = h.N - 1
	}
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen > rank {
			return histValue(i) / 1e3
		}
	}
	return 0
}
