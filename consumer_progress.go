package runnel

import (
	"math/bits"
	"slices"
)

// progress is what a Consumer has handed the application from one
// partition, and which of those records the application marked processed
// (MarkRecords). It decides what each kind of commit covers:
//
//   - Commit and auto-commit: every record handed over, up to next;
//   - CommitMarked and auto-commit of marks: the records below floor,
//     which were all handed over and marked (or never handed over: skipped
//     by a start time or by a reset past records retention removed).
//
// The consumer's mutex guards it.
type progress struct {
	// next is the offset after the last record handed over, or where the
	// partition was positioned; noPosition while unknown (the reader is
	// in error, or still looking for its start time).
	next int64
	// floor is the first offset handed over and not marked.
	floor int64
	// skipped lists ranges in [floor, next) that were never handed over,
	// in increasing order: they count as marked.
	skipped []offsetRange
	// marked has bit i set for offset markBase+i, marked and at or past
	// floor.
	marked   []uint64
	markBase int64
}

type offsetRange struct{ lo, hi int64 }

const noPosition = -1

// reset starts over at offset pos (noPosition: unknown): after a seek, a
// reset or an assignment. Marks from before are dropped.
func (p *progress) reset(pos int64) {
	p.next, p.floor, p.markBase = pos, pos, pos
	p.skipped = p.skipped[:0]
	p.marked = p.marked[:0]
}

// hand records that the record at offset was handed to the application.
func (p *progress) hand(offset int64) {
	switch {
	case p.next == noPosition || offset < p.next:
		p.reset(offset)
	case offset > p.next:
		p.skipped = append(p.skipped, offsetRange{p.next, offset})
	}
	p.next = offset + 1
}

// skipTo records that the reader moved on to pos without handing over
// the records before it (its batch is done).
func (p *progress) skipTo(pos int64) {
	switch {
	case p.next == noPosition:
		p.reset(pos)
	case pos > p.next:
		p.skipped = append(p.skipped, offsetRange{p.next, pos})
		p.next = pos
	}
}

// mark records that the record at offset was processed. Offsets not
// handed over (any more) are ignored: below floor they are covered
// already; past next, or skipped, they were never handed over since the
// partition was last positioned.
func (p *progress) mark(offset int64) {
	if p.next == noPosition || offset < p.floor || offset >= p.next || p.isSkipped(offset) {
		return
	}
	i := offset - p.markBase
	w := int(i >> 6)
	for w >= len(p.marked) {
		p.marked = append(p.marked, 0)
	}
	p.marked[w] |= 1 << (i & 63)
	if offset == p.floor {
		p.advance()
	}
}

func (p *progress) isSkipped(offset int64) bool {
	_, found := slices.BinarySearchFunc(p.skipped, offset, func(r offsetRange, o int64) int {
		switch {
		case r.hi <= o:
			return -1
		case r.lo > o:
			return 1
		}
		return 0
	})
	return found
}

// advance moves floor over the run of marked and skipped offsets that
// starts at it.
func (p *progress) advance() {
	for p.floor < p.next {
		if len(p.skipped) > 0 && p.skipped[0].lo <= p.floor {
			p.floor = max(p.floor, p.skipped[0].hi)
			p.skipped = p.skipped[1:]
			continue
		}
		i := p.floor - p.markBase
		w := int(i >> 6)
		if w >= len(p.marked) {
			break
		}
		run := bits.TrailingZeros64(^(p.marked[w] >> (i & 63)))
		run = min(run, 64-int(i&63)) // the shift brought in zeros, not marks
		if run == 0 {
			break
		}
		p.floor += int64(run)
	}
	p.floor = min(p.floor, p.next)
	// Drop the words wholly below floor.
	if drop := int((p.floor - p.markBase) >> 6); drop > 0 {
		drop = min(drop, len(p.marked))
		p.marked = p.marked[drop:]
		p.markBase += int64(drop) << 6
	}
	if len(p.marked) == 0 {
		p.markBase = p.floor
	}
}

// committed records that offset was committed by a commit other than
// CommitMarked: marks below it are moot, so CommitMarked never commits
// less afterwards.
func (p *progress) committed(offset int64) {
	if p.next == noPosition || offset <= p.floor {
		return
	}
	p.floor = min(offset, p.next)
	for len(p.skipped) > 0 && p.skipped[0].hi <= p.floor {
		p.skipped = p.skipped[1:]
	}
	p.advance()
}

// markedUpTo is the offset CommitMarked commits: every record below it
// was marked (or skipped); noPosition while unknown.
func (p *progress) markedUpTo() int64 {
	if p.next == noPosition {
		return noPosition
	}
	p.advance()
	return p.floor
}
