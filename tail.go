package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/runnel-log/runnel/internal/frame"
	"golang.org/x/sys/unix"
)

// Tail discovery and repair (DESIGN §3, steps 2 and 3): under the writer
// lock, find where the committed data of a partition ends, and cut off
// whatever a writer left unfinished past it. The frame rules are the
// cursor's; the verdict at the end is judgeTail's, which readers and
// Verify share.

// repair runs the writer's tail check under the writer lock without
// appending: it recovers after a reboot, cuts what writers left
// unfinished, and reports damage. Readers call it when they are stuck at
// bytes no live writer is writing; it waits for the writer lock until ctx
// ends.
func (p *partition) repair(ctx context.Context) error {
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if p.broken != nil {
		return p.broken
	}
	return p.findTail()
}

// findTail makes p.w describe the true tail of the partition, repairing
// what a writer left unfinished. The caller holds the writer lock.
func (p *partition) findTail() error {
	p.reopenParked()
	if p.w == nil {
		return p.discoverTail(evidence{})
	}
	if done, err := p.skipToPublished(); err != nil || done {
		return err
	}
	// The usual case: this Log appended last, so the file still ends where
	// its last frame did.
	end, err := p.w.probeEnd(p.w.pos)
	if err != nil {
		p.dropActive()
		return err
	}
	switch {
	case end < p.w.pos:
		// The file is shorter than what this Log appended to it:
		// committed data is gone. Judge the partition afresh, with what
		// this Log knows it wrote as evidence.
		known := p.w.next
		p.log.opts.Logger.Error("runnel: segment shorter than the data written to it", "path", p.w.path, "size", end, "written", p.w.pos)
		p.dropActive()
		return p.discoverTail(evidence{next: known, by: "this process appended them"})
	case end == p.w.pos:
		return nil
	case p.adoptZeros(p.w.pos, end):
		return nil
	}
	if p.activeRemoved() {
		// Another writer rolled past this segment and retention removed
		// it: following its seal would re-create the next segment, so
		// find the tail afresh.
		p.dropActive()
		return p.discoverTail(evidence{})
	}
	// Another writer appended, or left bytes unfinished: walk its frames,
	// catching up with its index entries where one is due.
	p.w.idx.stale = true
	known := p.knownCommitted(evidence{next: p.w.next, by: "this process appended them"})
	return p.walkTail(p.w.pos, p.w.next, false, known)
}

// skipToPublished moves p.w to the tail that other writers published in
// partition.meta, when that is ahead of it in the same segment, instead of
// walking their frames from where this Log left off: their index entries
// are on file and the newest timestamp is published with the tail
// (appendLocked does both before it publishes), so the walk would only
// read headers to learn what the tail says. It reports whether p.w is at
// the tail; false leaves p.w as it was, for findTail's walk.
//
// The tail is a hint, trusted only when it checks out (heldTail: whole,
// of this machine run) and the file reaches it. What follows it is
// judged as ever: a writer may have died after committing a frame and
// before publishing it, or left a torn one, and the walk from there finds
// it by the cursor's rules. A tail in a later segment is not followed:
// the walk follows the seal, with the syncs that takes.
func (p *partition) skipToPublished() (bool, error) {
	t, maxTS, ok := p.shm.heldTail()
	if !ok || t.base != p.w.base || t.pos <= p.w.pos || t.next < p.w.next {
		return false, nil
	}
	end, err := p.w.probeEnd(t.pos)
	if err != nil {
		p.dropActive()
		return false, err
	}
	zeros := p.adoptZeros(t.pos, end)
	if end < t.pos || end > t.pos && !zeros && p.activeRemoved() {
		// The file does not reach the tail (someone cut it), or the
		// segment was sealed and removed: findTail's own checks decide.
		return false, nil
	}
	p.w.idx.stale = true // their entries: read when one is due
	known := p.knownCommitted(evidence{next: p.w.next, by: "this process appended them"})
	p.w.pos, p.w.next, p.w.maxTS = t.pos, t.next, max(p.w.maxTS, maxTS)
	if end == t.pos || zeros {
		return true, nil
	}
	return true, p.walkTail(t.pos, t.next, false, known)
}

// probeEnd reads the bytes around pos and returns where the file ends, up
// to a few bytes past pos: the eight before pos prove the file was not cut
// short, anything after it was appended since. It takes one pread: a read
// of a regular file returns fewer bytes than asked only at its end, and
// os.File.ReadAt would ask again to be sure, a second system call on every
// append that follows another process's.
func (a *activeSeg) probeEnd(pos int64) (int64, error) {
	at := max(pos-8, 0)
	n, err := unix.Pread(a.fd, a.probe[:], at)
	if err != nil {
		// Interrupted, say: ReadAt retries what it can.
		n, err = a.f.ReadAt(a.probe[:], at)
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("runnel: read %s: %w", a.path, err)
	}
	return at + int64(n), nil
}

// probedZeros says whether the bytes probeEnd just read past pos, up to
// end, are zeros.
func (a *activeSeg) probedZeros(pos, end int64) bool {
	at := max(pos-8, 0)
	for _, b := range a.probe[pos-at : end-at] {
		if b != 0 {
			return false
		}
	}
	return true
}

// discoverTail opens the partition's last segment and walks to its tail
// from the last index entry, so its cost is bounded by the index interval,
// not the log size. After a reboot, recovery finds the tail instead, by
// verifying everything after the last synced checkpoint.
func (p *partition) discoverTail(ev evidence) error {
	if done, err := p.recoverIfRebooted(ev); err != nil || done {
		if err != nil {
			return err
		}
		return p.continueAtLogStart()
	}
	p.countFromCheckpoint()
	bases, err := listSegments(p.dir)
	if err != nil {
		return fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
	}
	base := int64(0)
	if len(bases) > 0 {
		base = bases[len(bases)-1]
	}
	// Read the evidence of what was committed before opening the segment,
	// which trims index entries the log no longer backs.
	rules := p.knownCommitted(ev)
	if err := p.openActive(base); err != nil {
		return err
	}
	if len(bases) == 0 {
		if err := p.segmentCreated(); err != nil {
			return err
		}
	}
	pos, next := int64(0), base
	if p.w.idx.entries > 0 {
		pos, next = p.w.idx.lastPos, base+p.w.idx.lastRel
		if _, st, err := newCursor(p.w.f, p.w.path, pos, next).peek(); err != nil {
			return err
		} else if st != frameOK && st != frameGap {
			// The last index entry points at no frame of its offset
			// (e.g. the log lost pages the index kept): the log is the
			// truth, so rebuild the index from it.
			p.log.opts.Logger.Warn("runnel: index disagrees with log, rebuilding", "path", p.w.idx.offPath)
			p.dropActive()
			if err := rebuildIndex(p.dir, base, p.topic.cfg.IndexIntervalBytes); err != nil {
				return err
			}
			if err := p.openActive(base); err != nil {
				return err
			}
			pos, next = 0, base
		}
	}
	if err := p.walkTail(pos, next, true, rules); err != nil {
		return err
	}
	return p.continueAtLogStart()
}

// walkTail walks good frames from pos to the tail and leaves p.w there,
// following seals into later segments and repairing a torn tail. verify
// checks every frame's checksum; without it only headers are read, which
// is enough after a live writer's appends.
func (p *partition) walkTail(pos, next int64, verify bool, rules tailRules) error {
	_, err := p.walkTailReport(pos, next, verify, rules)
	return err
}

// tailFound is what walkTailReport found and did at the tail.
type tailFound struct {
	verdict tailVerdict
	cutFile string
	cut     int64 // bytes cut off
	frames  int   // frames walked
}

func (p *partition) walkTailReport(pos, next int64, verify bool, rules tailRules) (tailFound, error) {
	var tf tailFound
	for {
		c := newCursor(p.w.f, p.w.path, pos, next)
		c.verify = verify
		_, st, err := c.walk(func(f segFrame) bool {
			if p.w.idx.due(f.pos) && f.pos > p.w.idx.lastPos {
				p.w.idx.add(f.meta.Base-p.w.base, f.pos, p.w.maxTS)
			}
			if f.meta.Kind == frame.KindRecords {
				p.w.maxTS = max(p.w.maxTS, f.meta.MaxTime)
			}
			tf.frames++
			return true
		})
		p.w.pos, p.w.next = c.pos, c.next
		if err != nil {
			return tf, err
		}
		if st == frameSeal {
			// Another writer rolled (or died having sealed): move on.
			p.w.idx.addTime(c.next-p.w.base, p.w.maxTS)
			if err := p.followSeal(c.next); err != nil {
				return tf, err
			}
			pos, next = 0, c.next
			continue
		}
		judged := rules
		if rules.findNext {
			// A later segment is evidence even after a power loss: its
			// writer synced every segment before it first (followSeal).
			if next, err := nextSegmentAfter(p.dir, p.w.base); err != nil {
				return tf, err
			} else if next > 0 {
				judged.addSegment(next)
			}
		}
		v, cut, err := p.repairTail(c, judged)
		tf.verdict = v
		if cut > 0 {
			tf.cutFile, tf.cut = p.w.path, cut
		}
		if err == nil && v.kind == tailMoved {
			pos, next = c.pos, c.next // cannot happen under the lock; walk on
			continue
		}
		return tf, err
	}
}

// followSeal makes segment next, which a seal just named, the active one.
// The writer that rolled synced the sealed segment before it created the
// next one, and the next one's directory entry after; but it may have
// died (or failed) between any two of those steps, and the next writer
// cannot tell. So whoever follows a seal does them again, in every mode:
// a later segment vouches for every frame before it (FORMAT.md), and a
// durable point recorded in it for its directory entry. Both syncs cost
// little when they were done already.
//
// A writer that died between the seal and creating the segment left it
// missing: it is created now. But with later segments there, it is
// missing from the middle of the partition: damage (missingSegment).
func (p *partition) followSeal(next int64) error {
	if err := fdatasync(p.w.fd); err != nil {
		return fmt.Errorf("runnel: sync %s: %w", p.w.path, err)
	}
	if _, err := os.Stat(segmentPath(p.dir, next, logExt)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	} else if err != nil {
		if later, err := nextSegmentAfter(p.dir, next); err != nil {
			return err
		} else if later > 0 {
			p.broken = missingSegment(p.dir, next, later)
			p.log.opts.Logger.Error("runnel: corrupt partition, appends refused", "err", p.broken)
			return p.broken
		}
	}
	if err := p.openActive(next); err != nil {
		return err
	}
	return p.segmentCreated()
}

// missingSegment is the damage of segment base missing from the middle of
// the partition: the seal before it names it, and segment later follows.
// A writer syncs a new segment's directory entry before it appends to it,
// long before a later segment can be created, so neither a crash nor a
// power loss explains it. The writer (followSeal), readers (segmentGone)
// and Verify all judge a missing segment by this rule and missingLast's.
func missingSegment(dir string, base, later int64) *CorruptError {
	return &CorruptError{Path: segmentPath(dir, base, logExt), Pos: 0, Offset: base, To: later,
		Err: fmt.Errorf("segment missing: the seal before it names it, and segment %020d%s follows", later, logExt)}
}

// missingLast is the damage of segment base missing at the end of the
// partition, where the seal before it names it: a writer that died before
// creating it explains that, unless offsets in it are known committed
// (rules): then it was there. nil when it is not damage.
func missingLast(dir string, base int64, rules tailRules) *CorruptError {
	if base >= rules.knownEnd {
		return nil
	}
	return &CorruptError{Path: segmentPath(dir, base, logExt), Pos: 0, Offset: base, To: rules.knownEnd,
		Err: fmt.Errorf("segment missing: the seal before it names it, and offsets to %d are known committed (%s)", rules.knownEnd-1, rules.knownBy)}
}

// segmentCreated makes the directory entry of a segment just created
// durable, in every mode, before anything is appended to it: a durable
// point or checkpoint in the segment vouches for its frames, whichever
// process records it (cross-process group commit, a periodic sync), and a
// power loss must not take the file they are in. It costs one directory
// sync per segment.
func (p *partition) segmentCreated() error {
	return syncDir(p.dir)
}

// repairTail judges what follows the last good frame of the active
// segment and acts on it: nothing there (done), what a writer left
// unfinished (cut it off), or damage (refuse appends with a
// *CorruptError, cut nothing). It returns the verdict and the bytes cut.
func (p *partition) repairTail(c *cursor, rules tailRules) (tailVerdict, int64, error) {
	v, err := c.judgeTail(rules)
	if err != nil {
		return v, 0, err
	}
	switch v.kind {
	case tailEnd:
		if v.size > v.pos {
			// Zeros a writer extended the file by, and died (or the
			// machine stopped) before it cut them: the data ends here,
			// and the file is made to end here too.
			if err := p.w.truncate(v.pos); err != nil {
				return v, 0, fmt.Errorf("runnel: cut zeros past the tail of %s: %w", p.w.path, err)
			}
		}
		return v, 0, nil
	case tailMoved:
		return v, 0, nil
	case tailDamage:
		p.broken = &CorruptError{Path: p.w.path, Pos: v.pos, Offset: v.next, Err: errors.New(v.describe(rules))}
		p.log.opts.Logger.Error("runnel: corrupt partition, appends refused", "err", p.broken)
		if !v.found {
			p.reportLoss(RecoveryReport{Partition: p.dir, FromSegment: p.w.base, FromPos: v.pos, CutPos: -1, NextOffset: v.next}, v, rules)
		}
		return v, 0, p.broken
	}
	cut := v.size - v.pos
	if err := p.w.truncate(v.pos); err != nil {
		return v, 0, fmt.Errorf("runnel: repair %s: %w", p.w.path, err)
	}
	if p.log.opts.Durability != Buffered || rules.powerLoss {
		if err := fdatasync(p.w.fd); err != nil {
			return v, 0, err
		}
	}
	p.noteRepair(cut)
	p.log.opts.Logger.Warn("runnel: cut torn tail", "path", p.w.path, "pos", v.pos, "bytes", cut, "next_offset", v.next, "reason", v.describe(rules))
	return v, cut, nil
}

// cutFailedAppend removes what an append that failed wrote past the tail
// (a frame cut short by a full disk, say): this writer is alive and holds
// the writer lock, so the bytes are nobody's, and left there they would
// look like a dead writer's. If the cut fails too, the next append's tail
// check cuts them.
func (p *partition) cutFailedAppend() {
	if err := p.w.truncate(p.w.pos); err != nil {
		p.log.opts.Logger.Warn("runnel: cannot cut a failed append", "path", p.w.path, "pos", p.w.pos, "err", err)
	}
}

// nextSegmentAfter returns the base of the first segment after base, or 0
// if there is none.
func nextSegmentAfter(dir string, base int64) (int64, error) {
	bases, err := listSegments(dir)
	if err != nil {
		return 0, fmt.Errorf("runnel: list segments of %s: %w", dir, err)
	}
	for _, b := range bases {
		if b > base {
			return b, nil
		}
	}
	return 0, nil
}
