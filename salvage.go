package runnel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/runnel-log/runnel/internal/frame"
)

// Salvage (Repair with RepairOptions.Salvage) turns damage inside
// committed data into gaps: the unreadable bytes are overwritten, in
// place, by gap frames that mark exactly the offsets they held as lost, so
// that every later frame keeps its position and its offsets and is
// readable again. The damage is judged by the cursor's tail rules, as
// everywhere; only what is done about it differs.
//
// Writing a gap is crash-safe: the filler goes first, the header (already
// committed, checksummed) last, then fdatasync. A crash in between leaves
// the bytes still unreadable, and salvaging again finishes the job.

// salvage replaces what is unreadable in partition p with gaps, under its
// writer lock, and reports each gap.
func (p *partition) salvage(ctx context.Context) ([]RepairAction, error) {
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A recovery that is due runs first: after a power loss, what follows
	// the synced checkpoint is cut as usual, not kept.
	p.dropActive()
	p.broken = nil
	if err := p.findTail(); err != nil && !errors.As(err, new(*CorruptError)) {
		return nil, err
	}
	p.dropActive()
	p.broken = nil
	s := salvager{p: p}
	bases, err := listSegments(p.dir)
	if err != nil {
		return nil, fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
	}
	expect := int64(-1)
	for i, base := range bases {
		if err := ctx.Err(); err != nil {
			return s.actions, err
		}
		if expect >= 0 && base != expect {
			if base < expect {
				return s.actions, fmt.Errorf("runnel: salvage %s: segment %020d overlaps the one before, which ends at offset %d", p.dir, base, expect)
			}
			// Segments [expect, base) are missing: make one of a gap.
			if err := s.missingSegment(expect, base, true); err != nil {
				return s.actions, err
			}
		}
		later := int64(-1)
		if i+1 < len(bases) {
			later = bases[i+1]
		}
		next, err := s.segment(base, later)
		if err != nil {
			return s.actions, err
		}
		expect = next
	}
	if expect >= 0 {
		// The last segment ends in a seal, and the one it names is
		// missing: if offsets there are known committed, it was there.
		if known := p.knownCommitted(evidence{}).knownEnd; known > expect {
			if err := s.missingSegment(expect, known, false); err != nil {
				return s.actions, err
			}
		}
	}
	if s.created {
		if err := syncDir(p.dir); err != nil {
			return s.actions, err
		}
	}
	// The tail afresh: the indexes were rebuilt, the gaps are good frames.
	p.dropActive()
	p.broken = nil
	if err := p.findTail(); err != nil {
		return s.actions, err
	}
	p.shm.publishTail(p.w.tail(), p.w.maxTS)
	target := checkpoint{boot: currentBootID, base: p.w.base, pos: p.w.pos, next: p.w.next}
	if err := p.syncUpTo(target); err != nil {
		return s.actions, err
	}
	if recorded, err := p.recordCheckpoint(target); err != nil || !recorded {
		return s.actions, err
	}
	return s.actions, p.shm.syncCheckpoint()
}

// salvager is one salvage of a partition.
type salvager struct {
	p       *partition
	actions []RepairAction
	created bool // a segment was created: the directory needs a sync
}

func (s *salvager) act(path string, pos, bytes, from, to int64) {
	s.actions = append(s.actions, RepairAction{Kind: RepairSalvaged, Topic: s.p.topic.name, Partition: s.p.id,
		Path: path, Pos: pos, Bytes: bytes, From: from, To: to})
	if to > from {
		s.p.log.opts.Logger.Warn("runnel: salvaged a partition: records lost", "path", path, "pos", pos,
			"from_offset", from, "to_offset", to-1, "count", to-from)
	}
}

// segment salvages segment base (later: the next one's base, -1 for the
// last) and returns the base the next segment must have (-1 when it is
// the last).
func (s *salvager) segment(base, later int64) (int64, error) {
	p := s.p
	path := segmentPath(p.dir, base, logExt)
	f, err := openRegular(path, os.O_RDWR, 0)
	if err != nil {
		return -1, fmt.Errorf("runnel: salvage %s: %w", path, err)
	}
	defer f.Close()
	changed := false
	c := newCursor(f, path, 0, base)
	for {
		fr, st, err := c.Next()
		if err != nil {
			return -1, err
		}
		switch st {
		case frameOK:
			if _, err := recordsErr(fr); err == nil {
				continue
			}
			// Checksummed, but its records are bad (damage the checksum
			// could not catch): the whole frame is a gap.
			if err := writeGap(f, fr.pos, fr.pos+fr.meta.Size(), fr.meta.Base, fr.meta.End()); err != nil {
				return -1, err
			}
			s.act(path, fr.pos, fr.meta.Size(), fr.meta.Base, fr.meta.End())
			changed = true
			continue
		case frameGap:
			continue
		case frameSeal:
			if fst, err := f.Stat(); err == nil && fst.Size() > c.pos {
				// Bytes after a seal are never read.
				if err := s.truncate(f, c.pos); err != nil {
					return -1, err
				}
				s.act(path, c.pos, fst.Size()-c.pos, c.next, c.next)
				changed = true
			}
			return c.next, s.finish(f, base, changed)
		}
		// Same-boot rules: nothing committed is cut, whatever the
		// checkpoint's boot (the recovery above has run).
		rules := segmentRules(p.shm, base, c.pos, later, noneUnsynced)
		v, err := c.judgeTail(rules)
		if err != nil {
			return -1, err
		}
		switch v.kind {
		case tailMoved:
			continue
		case tailEnd:
			if later < 0 {
				return -1, s.finish(f, base, changed)
			}
		case tailTorn:
			if later < 0 {
				// What a writer left unfinished: cut, as plain repair does.
				if err := s.truncate(f, v.pos); err != nil {
					return -1, err
				}
				s.act(path, v.pos, v.size-v.pos, v.next, v.next)
				return -1, s.finish(f, base, true)
			}
		case tailDamage:
			if v.unsure {
				// Committed data follows, but where it resumes cannot be
				// told: a gap there could take it for lost, or keep a
				// frame that was never written. Change nothing.
				return -1, &CorruptError{Path: path, Pos: v.pos, Offset: v.next, To: -1,
					Err: fmt.Errorf("salvage cannot mend this: %s", v.describe(rules))}
			}
			if v.found {
				from, to := v.pos, v.resume.pos
				lo, hi := v.next, v.resume.meta.Base
				resume := v.resume.pos
				if to-from < frame.HeaderSize {
					// Too few bytes for a gap's header: it takes the
					// frame after them too.
					to, hi = v.resume.pos+v.resume.meta.Size(), v.resume.meta.End()
					resume = to
					if v.resume.meta.Kind == frame.KindSeal {
						if err := writeGap(f, from, to, lo, hi); err != nil {
							return -1, err
						}
						s.act(path, from, to-from, lo, hi)
						if err := writeSeal(f, to, hi); err != nil {
							return -1, err
						}
						c.seek(to, hi)
						c.invalidate()
						changed = true
						continue
					}
				}
				if err := writeGap(f, from, to, lo, hi); err != nil {
					return -1, err
				}
				s.act(path, from, to-from, lo, hi)
				changed = true
				c.seek(resume, hi)
				c.invalidate()
				continue
			}
		}
		// The data of the segment ends at v.pos, before offsets known
		// committed (or, not the last segment, before its seal): cut what
		// is unreadable there, mark the rest as a gap, and seal it.
		end := rules.knownEnd
		if later >= 0 {
			end = later
		}
		if end < v.next {
			return -1, fmt.Errorf("runnel: salvage %s: the segment reaches offset %d, past the next segment's base %d", path, v.next, end)
		}
		fst, err := f.Stat()
		if err != nil {
			return -1, err
		}
		if err := s.truncate(f, v.pos); err != nil {
			return -1, err
		}
		pos := v.pos
		if end > v.next || fst.Size() > v.pos {
			if err := writeGap(f, pos, pos+frame.HeaderSize, v.next, end); err != nil {
				return -1, err
			}
			s.act(path, pos, fst.Size()-pos, v.next, end)
			pos += frame.HeaderSize
		}
		if later >= 0 {
			if err := writeSeal(f, pos, later); err != nil {
				return -1, err
			}
		}
		if err := s.finish(f, base, true); err != nil {
			return -1, err
		}
		if later >= 0 {
			return later, nil
		}
		return -1, nil
	}
}

// missingSegment creates segment base, missing between two others, as a
// gap up to next and a seal naming it; or, missing at the end (sealed
// false), as a gap up to next, after which appends go on.
func (s *salvager) missingSegment(base, next int64, sealed bool) error {
	path := segmentPath(s.p.dir, base, logExt)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("runnel: salvage: create %s: %w", path, err)
	}
	defer f.Close()
	s.created = true
	if err := writeGap(f, 0, frame.HeaderSize, base, next); err != nil {
		return err
	}
	if sealed {
		if err := writeSeal(f, frame.HeaderSize, next); err != nil {
			return err
		}
	}
	s.act(path, 0, 0, base, next)
	return s.finish(f, base, true)
}

// truncate cuts f at pos.
func (s *salvager) truncate(f *os.File, pos int64) error {
	if err := f.Truncate(pos); err != nil {
		return fmt.Errorf("runnel: salvage %s: %w", f.Name(), err)
	}
	return nil
}

// finish syncs a segment the salvage changed and rebuilds its indexes.
func (s *salvager) finish(f *os.File, base int64, changed bool) error {
	if !changed {
		return nil
	}
	if err := fdatasync(int(f.Fd())); err != nil {
		return err
	}
	return rebuildIndex(s.p.dir, base, s.p.topic.cfg.IndexIntervalBytes)
}

// writeGap overwrites bytes [from, to) of f (8-aligned, at least a header)
// with gap frames marking offsets [lo, hi) as lost: filler first, then each
// header. Frames are at most frame.MaxSize, so a long span takes several;
// the later ones mark no offsets.
func writeGap(f *os.File, from, to, lo, hi int64) error {
	if hi-lo > math.MaxUint32 || hi < lo {
		return fmt.Errorf("runnel: salvage %s: %d offsets lost at byte %d are more than a gap frame holds", f.Name(), hi-lo, from)
	}
	zeros := make([]byte, min(to-from, 1<<20))
	for pos := from; pos < to; {
		n := min(to-pos, frame.MaxSize&^(frame.Align-1))
		if rest := to - pos - n; rest > 0 && rest < frame.HeaderSize {
			n -= frame.HeaderSize // leave room for the next header
		}
		for z := pos + frame.HeaderSize; z < pos+n; {
			k := min(pos+n-z, int64(len(zeros)))
			if _, err := f.WriteAt(zeros[:k], z); err != nil {
				return fmt.Errorf("runnel: salvage %s: %w", f.Name(), err)
			}
			z += k
		}
		base, count := hi, uint32(0)
		if pos == from {
			base, count = lo, uint32(hi-lo)
		}
		if _, err := f.WriteAt(frame.AppendGap(nil, base, count, uint32(n)), pos); err != nil {
			return fmt.Errorf("runnel: salvage %s: %w", f.Name(), err)
		}
		pos += n
	}
	return nil
}

// writeSeal writes a committed seal naming next at pos of f.
func writeSeal(f *os.File, pos, next int64) error {
	if _, err := f.WriteAt(frame.AppendSeal(nil, next), pos); err != nil {
		return fmt.Errorf("runnel: salvage %s: %w", f.Name(), err)
	}
	return nil
}
