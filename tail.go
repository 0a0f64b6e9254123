package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/runnel-log/runnel/internal/frame"
)

// Tail discovery and repair (DESIGN §3, steps 2 and 3): under the writer
// lock, find where the committed data of a partition ends, and cut off
// whatever a dead writer left past it.

// repair runs the writer's tail check under the writer lock without
// appending: it cuts a dead writer's leftovers, and reports damage. Readers
// call it when they are stuck at bytes no live writer is writing; it waits
// for the writer lock until ctx ends.
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

// findTail makes p.w describe the true tail of the partition, repairing a
// dead writer's leftovers. The caller holds the writer lock.
func (p *partition) findTail() error {
	if p.w != nil {
		// The usual case: this Log appended last, so the next header is
		// still empty. One pread tells.
		n, err := p.w.f.ReadAt(p.w.probe[:], p.w.pos)
		if err != nil && !errors.Is(err, io.EOF) {
			p.dropActive()
			return fmt.Errorf("runnel: read %s: %w", p.w.path, err)
		}
		if n == 0 {
			return nil
		}
		if p.activeRemoved() {
			// Another writer rolled past this segment and retention
			// removed it: following its seal would re-create the next
			// segment, so find the tail afresh.
			p.dropActive()
			return p.discoverTail()
		}
		// Another writer appended, or died leaving bytes: catch up with
		// its index entries, then walk its frames.
		if err := p.w.idx.refresh(); err != nil {
			p.dropActive()
			return err
		}
		return p.walkTail(p.w.pos, p.w.next, false)
	}
	return p.discoverTail()
}

// discoverTail opens the partition's last segment and walks to its tail
// from the last index entry, so its cost is bounded by the index interval,
// not the log size.
func (p *partition) discoverTail() error {
	if err := p.recoverAfterReboot(); err != nil {
		return err
	}
	bases, err := listSegments(p.dir)
	if err != nil {
		return fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
	}
	base := int64(0)
	if len(bases) > 0 {
		base = bases[len(bases)-1]
	}
	if err := p.openActive(base); err != nil {
		return err
	}
	pos, next := int64(0), base
	if p.w.idx.entries > 0 {
		pos, next = p.w.idx.lastPos, base+p.w.idx.lastRel
		m, _, st, _ := newScanner(p.w.f, p.w.path).frameAt(pos)
		if st != frameOK || m.Base != next {
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
	return p.walkTail(pos, next, true)
}

// walkTail walks committed frames from pos to the tail and leaves p.w
// there, following seals into later segments and repairing a torn or
// uncommitted tail. verify checks every frame's checksum; without it only
// headers are read, which is enough after a live writer's appends.
func (p *partition) walkTail(pos, next int64, verify bool) error {
	for {
		s := newScanner(p.w.f, p.w.path)
		s.verify = verify
		t := s.walk(pos, next, func(fpos int64, m frame.Meta) bool {
			if p.w.idx.due(fpos) && fpos > p.w.idx.lastPos {
				p.w.idx.add(m.Base-p.w.base, fpos, p.w.maxTS)
			}
			p.w.maxTS = max(p.w.maxTS, m.MaxTime)
			return true
		})
		p.w.pos, p.w.next = t.pos, t.next
		if t.sealed {
			// Another writer rolled (or died having sealed): move on.
			p.w.idx.addTime(t.next-p.w.base, p.w.maxTS)
			if err := p.openActive(t.next); err != nil {
				return err
			}
			pos, next = 0, t.next
			continue
		}
		return p.repairTail(s, t)
	}
}

// repairTail handles whatever follows the last good frame: nothing (done),
// a dead writer's torn or uncommitted frame (cut it off), or damage with
// committed frames after it (report ErrCorrupt, cut nothing).
func (p *partition) repairTail(s *scanner, t tailScan) error {
	st, err := p.w.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() <= t.pos {
		return nil
	}
	if at, found, err := s.committedAfter(t.pos); err != nil {
		return err
	} else if found {
		cause := t.cause
		if cause == nil {
			cause = fmt.Errorf("uncommitted frame followed by a committed one at byte %d", at)
		}
		p.broken = &CorruptError{Path: p.w.path, Pos: t.pos, Offset: t.next, Err: cause}
		p.log.opts.Logger.Error("runnel: corrupt partition, appends refused", "err", p.broken)
		return p.broken
	}
	cut := st.Size() - t.pos
	if err := p.w.f.Truncate(t.pos); err != nil {
		return fmt.Errorf("runnel: repair %s: %w", p.w.path, err)
	}
	if p.log.opts.Durability != Buffered {
		if err := fdatasync(p.w.fd); err != nil {
			return err
		}
	}
	p.log.stats.repairs.Add(1)
	p.log.stats.repairedBytes.Add(cut)
	p.log.opts.Logger.Warn("runnel: cut torn tail", "path", p.w.path, "pos", t.pos, "bytes", cut, "next_offset", t.next, "reason", fmt.Sprint(t.cause))
	return nil
}
