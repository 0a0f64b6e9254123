package runnel

import (
	"fmt"

	"github.com/runnel-log/runnel/internal/frame"
)

// Where the data of a segment ends is decided here, for every caller: the
// writer (which cuts what it finds there, or refuses to append), readers
// (which wait there, or report damage), Verify and recovery.

// tailKind is what follows the last good frame of a segment.
type tailKind int

const (
	// tailEnd: nothing follows; the data ends here.
	tailEnd tailKind = iota
	// tailMoved: the frame there became good while it was judged (a live
	// writer committed it): read on.
	tailMoved
	// tailTorn: bytes that hold no committed data, and no committed data
	// after them: what a writer left unfinished (or, after a power loss,
	// bytes that were never synced). The next writer cuts them off.
	tailTorn
	// tailDamage: committed data is unreadable: good committed frames
	// follow the bytes, or offsets known to have been committed are gone.
	tailDamage
)

func (k tailKind) String() string {
	switch k {
	case tailEnd:
		return "end"
	case tailMoved:
		return "moved"
	case tailTorn:
		return "torn tail"
	case tailDamage:
		return "damage"
	}
	return fmt.Sprintf("tailKind(%d)", int(k))
}

// tailRules is what a judgement knows beyond the segment's bytes.
type tailRules struct {
	// knownEnd: every offset below it is known to have been committed
	// (by a synced checkpoint, a durable point, an index entry or a
	// later segment). Data that ends before it is damage, never a torn
	// tail, even after a power loss: with powerLoss set, only what was
	// synced may count. Zero when nothing is known.
	knownEnd int64
	// knownBy says where knownEnd comes from, for the report.
	knownBy string
	// nextSegment, if not 0, is the base of a later segment: the segment
	// judged must end in a seal (a writer seals a segment before it
	// creates the next), so whatever ends it otherwise is damage.
	nextSegment int64
	// findNext makes the writer's walk look for a later segment before it
	// judges a tail (a recovery that walks every segment): a writer
	// appending to the last segment knows it is the last.
	findNext bool
	// powerLoss: the bytes at the cursor may never have been synced and
	// the machine restarted since, so they may be missing or stale
	// anywhere. A later segment still counts (nextSegment): its writer
	// synced every segment before it.
	// A break there is the end of the data, even with good frames after
	// it: recovery cuts it, and reports what those frames held.
	powerLoss bool
}

// missing reports whether data that ends at offset next lacks something
// the rules know was committed: offsets, or the seal before a later
// segment.
func (r tailRules) missing(next int64) bool {
	return next >= 0 && next < r.knownEnd || r.nextSegment > 0
}

// tailVerdict is the judgement of what is at a cursor that stopped on
// something other than a good frame.
type tailVerdict struct {
	kind  tailKind
	pos   int64 // where the good data ends
	next  int64 // the offset there
	size  int64 // the file's size when judged
	cause error // what is at pos; nil for a clean end
	// resume is the first good frame after pos with offsets from next
	// on, if found: where committed data resumes (damage), or what a
	// power loss's cut drops.
	resume    segFrame
	found     bool
	resumeEnd int64 // the offset after the good frames that follow resume
	// unsure: good committed frames follow pos, but where the data
	// resumes could not be told (see resync): damage all the same, which
	// nothing may cut.
	unsure bool
}

// lost returns the offsets the verdict says are unreadable, [from, to),
// with to ≤ from when none are known.
func (v tailVerdict) lost(rules tailRules) (from, to int64) {
	if v.found {
		return v.next, v.resume.meta.Base
	}
	return v.next, rules.knownEnd
}

// judgeTail judges what is at the cursor's position, which the last read
// did not find to be a good frame. It reads afresh: the caller loaded the
// rules before, so a writer that committed meanwhile is seen (tailMoved),
// never taken for damage.
func (c *cursor) judgeTail(rules tailRules) (tailVerdict, error) {
	c.invalidate()
	c.forgetZeros() // judge the zeros afresh too
	v := tailVerdict{pos: c.pos, next: c.next}
	f, st, err := c.peek()
	if err != nil {
		return v, err
	}
	if st.good() {
		v.kind = tailMoved
		return v, nil
	}
	v.cause = f.cause
	if st == frameEnd && !f.eof {
		v.cause = errZeroFrame
	}
	fst, err := c.f.Stat()
	if err != nil {
		return v, fmt.Errorf("runnel: stat %s: %w", c.path, err)
	}
	v.size = fst.Size()
	if st == frameEnd && f.eof {
		if rules.missing(c.next) {
			v.kind = tailDamage
			return v, nil
		}
		v.kind = tailEnd
		return v, nil
	}
	r, err := c.resync(c.pos, max(c.next, 0))
	if err != nil {
		return v, err
	}
	v.resume, v.found, v.resumeEnd, v.unsure = r.f, r.found, r.end, r.unsure
	if (v.found || v.unsure) && !rules.powerLoss {
		// A frame read before the later one may have been committed in
		// between (a live writer's two appends): look again.
		c.invalidate()
		if _, st, err := c.peek(); err != nil {
			return v, err
		} else if st.good() {
			v.kind = tailMoved
			return v, nil
		}
		v.kind = tailDamage
		return v, nil
	}
	if rules.missing(c.next) {
		v.kind = tailDamage
		return v, nil
	}
	v.kind = tailTorn
	return v, nil
}

// chainEnd follows good frames from f by their headers and returns the
// offset after them, how far the committed data after a break reaches in
// this segment (a seal's offset, if it ends in one), and the byte where
// they end. It walks with c itself, whose window the search is reading
// anyway, and leaves c where it was; each header read is taken from
// budget.
func (c *cursor) chainEnd(f segFrame, budget *int64) (next, pos int64) {
	savedPos, savedNext, verify := c.pos, c.next, c.verify
	c.seek(f.pos, f.meta.Base)
	c.verify = false
	c.walk(func(segFrame) bool {
		*budget -= frame.HeaderSize
		return *budget >= 0
	})
	next, pos = max(c.next, f.meta.End()), max(c.pos, f.pos+f.meta.Size())
	c.pos, c.next, c.verify = savedPos, savedNext, verify
	return next, pos
}

// describe says what the verdict found, in words for an error or a report.
func (v tailVerdict) describe(rules tailRules) string {
	what := "zero bytes where a frame should start"
	if v.cause != nil && v.cause != errZeroFrame {
		what = v.cause.Error()
	}
	from, to := v.lost(rules)
	switch {
	case v.kind == tailDamage && v.found:
		s := fmt.Sprintf("%s; committed data resumes at byte %d", what, v.resume.pos)
		if v.resume.meta.Base > v.next {
			s += fmt.Sprintf(" with offset %d (offsets %d to %d unreadable)", v.resume.meta.Base, from, v.resume.meta.Base-1)
		}
		return s
	case v.kind == tailDamage && v.unsure:
		return fmt.Sprintf("%s; committed data follows, but where it resumes cannot be told", what)
	case v.kind == tailDamage && to <= from && rules.nextSegment > 0 && v.cause == nil:
		return fmt.Sprintf("the segment ends without a seal, but segment %020d%s follows", rules.nextSegment, logExt)
	case v.kind == tailDamage && to <= from && rules.nextSegment > 0:
		return fmt.Sprintf("%s; the segment has no seal, but segment %020d%s follows", what, rules.nextSegment, logExt)
	case v.kind == tailDamage && v.cause == nil:
		return fmt.Sprintf("the data ends at offset %d, but offsets to %d are known committed (%s): they are gone", from, to-1, rules.knownBy)
	case v.kind == tailDamage:
		return fmt.Sprintf("%s; offsets %d to %d are known committed (%s): they are gone", what, from, to-1, rules.knownBy)
	}
	return what
}

var errZeroFrame = fmt.Errorf("zero bytes where a frame should start")
