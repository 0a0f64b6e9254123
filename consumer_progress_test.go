package runnel

import (
	"math/rand/v2"
	"testing"
)

// progress against a plain model: records handed over in offset order,
// some offsets skipped, marks in random order; markedUpTo must be the first
// handed-over offset not marked (or next, when all are).
func TestProgressModel(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var p progress
		start := int64(rng.IntN(1000))
		p.reset(start)
		handed := map[int64]bool{}
		marked := map[int64]bool{}
		var order []int64
		off := start
		for range 300 + rng.IntN(300) {
			switch rng.IntN(10) {
			case 0: // a gap: records skipped (a start time, retention)
				off += int64(1 + rng.IntN(200))
				if rng.IntN(2) == 0 {
					p.skipTo(off)
					continue
				}
			}
			p.hand(off)
			handed[off] = true
			order = append(order, off)
			off++
			// Mark some handed-over record, in any order, sometimes twice.
			for range rng.IntN(3) {
				m := order[rng.IntN(len(order))]
				marked[m] = true
				p.mark(m)
			}
			if rng.IntN(5) == 0 {
				p.mark(off + int64(rng.IntN(10))) // not handed over: ignored
			}
			want := p.next
			for o := start; o < p.next; o++ {
				if handed[o] && !marked[o] {
					want = o
					break
				}
			}
			if got := p.markedUpTo(); got != want {
				t.Fatalf("seed %d: markedUpTo %d, want %d (next %d)", seed, got, want, p.next)
			}
		}
	}
}

func TestProgressCommittedAndReset(t *testing.T) {
	var p progress
	p.reset(noPosition)
	p.mark(3)
	if got := p.markedUpTo(); got != noPosition {
		t.Errorf("unknown position: markedUpTo %d", got)
	}
	for o := int64(10); o < 200; o++ {
		p.hand(o)
	}
	p.mark(150)
	p.committed(100) // a Commit of 100: marks below it are moot
	if got := p.markedUpTo(); got != 100 {
		t.Errorf("after a commit of 100: %d", got)
	}
	for o := int64(100); o < 150; o++ {
		p.mark(o)
	}
	if got := p.markedUpTo(); got != 151 {
		t.Errorf("after marking 100-150: %d", got)
	}
	p.committed(500) // beyond what was handed over: up to next
	if got := p.markedUpTo(); got != 200 {
		t.Errorf("after a commit past next: %d", got)
	}
	p.reset(40) // a Seek back
	p.mark(45)
	p.hand(40)
	p.hand(41)
	p.mark(41)
	if got := p.markedUpTo(); got != 40 {
		t.Errorf("after a Seek back, 40 open: %d", got)
	}
	if len(p.marked) > 1 {
		t.Errorf("%d words of marks kept for two offsets", len(p.marked))
	}
}
