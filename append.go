package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runnel-log/runnel/internal/frame"
)

// The append protocol (DESIGN §3): under the partition's writer lock, find
// the tail, repair whatever a dead writer left past it, write the frame
// uncommitted, commit it, sync by durability mode, index it, roll when the
// segment is full, release the lock.

const writerLockByte = 0

// activeSeg is this Log's view of the partition's last segment, valid
// between appends only while no other writer appended (checked cheaply on
// every append).
type activeSeg struct {
	base  int64
	path  string
	f     *os.File
	fd    int
	pos   int64 // where the next frame goes
	next  int64 // offset the next record gets
	maxTS int64 // newest record timestamp in the segment so far
	idx   *indexWriter
	probe [4]byte
}

func (a *activeSeg) close() error {
	return errors.Join(a.f.Close(), a.idx.close())
}

// appendBatch writes one finished batch and returns its base offset.
func (p *partition) appendBatch(fb *frame.Builder) (int64, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.broken != nil {
		return 0, p.broken
	}
	if err := p.lockWriter(); err != nil {
		return 0, err
	}
	defer p.meta.Unlock(writerLockByte)
	if p.shm.deleted() {
		p.broken = fmt.Errorf("%w: %s was deleted", ErrTopicNotFound, p.topic.name)
		return 0, p.broken
	}
	if err := p.findTail(); err != nil {
		return 0, err
	}
	w := p.w
	data := fb.Finish(w.next)
	if w.pos > 0 && w.pos+int64(len(data))+frame.HeaderSize > p.topic.cfg.SegmentBytes {
		if err := p.roll(); err != nil {
			return 0, err
		}
		w = p.w
		data = fb.Finish(w.next)
	}
	if err := p.commitFrame(data); err != nil {
		return 0, err
	}
	base := w.next
	if w.idx.due(w.pos) {
		if err := w.idx.add(base-w.base, w.pos, w.maxTS); err != nil {
			// Indexes are caches: a failed entry costs a longer scan.
			p.log.opts.Logger.Warn("runnel: index append failed", "path", w.idx.offPath, "err", err)
		}
	}
	w.maxTS = max(w.maxTS, fb.MaxTime())
	w.pos += int64(len(data))
	w.next += int64(fb.Count())
	if p.log.opts.Durability == Durable {
		p.shm.setDurablePoint(currentBootID, w.base, w.pos, w.next)
	}
	p.shm.published()
	p.log.stats.frames.Add(1)
	p.log.stats.records.Add(int64(fb.Count()))
	return base, nil
}

// lockWriter takes the partition's writer lock, opening the lock file and
// the shared mapping on first use. The caller holds p.wmu.
func (p *partition) lockWriter() error { return p.lockWriterContext(context.Background()) }

// lockWriterContext is lockWriter that gives up when ctx ends.
func (p *partition) lockWriterContext(ctx context.Context) error {
	if p.meta == nil {
		meta, err := openLockFile(filepath.Join(p.dir, metaFileName))
		if err != nil {
			return fmt.Errorf("runnel: open writer lock: %w", err)
		}
		p.meta = meta
	}
	if p.shm == nil {
		shm, err := openMeta(p.dir)
		if err != nil {
			return err
		}
		p.shm = shm
	}
	return p.meta.Lock(ctx, writerLockByte)
}

// repair runs the writer's tail check under the writer lock without
// appending: it cuts a dead writer's leftovers, and reports damage. Readers
// call it when they are stuck at bytes no live writer is writing.
func (p *partition) repair() error {
	unlock, err := p.lockForMaintenance(context.Background())
	if err != nil {
		return err
	}
	defer unlock()
	if p.broken != nil {
		return p.broken
	}
	return p.findTail()
}

// commitFrame writes one frame at the tail through the Log's backend,
// syncing as the durability mode asks.
func (p *partition) commitFrame(data []byte) error {
	sync := p.log.opts.Durability == Durable
	if err := p.log.app.appendFrame(p.w.fd, p.w.pos, data, sync); err != nil {
		err = fmt.Errorf("runnel: append to %s at byte %d: %w", p.w.path, p.w.pos, err)
		var state [1]byte
		if _, rerr := p.w.f.ReadAt(state[:], p.w.pos+frame.OffState); rerr == nil && state[0] == frame.StateCommitted {
			// The commit landed and the sync failed. After a failed
			// fdatasync the kernel may have dropped the dirty pages, so
			// nothing this Log wrote can be called durable any more:
			// refuse appends until the log is reopened, as databases do.
			p.broken = fmt.Errorf("%w; the partition refuses appends until reopened", err)
			p.dropActive()
			return p.broken
		}
		// The frame is uncommitted and maybe partly written: forget the
		// tail; the next append re-discovers and repairs it.
		p.dropActive()
		return err
	}
	if sync {
		p.log.stats.syncs.Add(1)
	} else {
		p.dirty = true
	}
	return nil
}

func (p *partition) dropActive() {
	if p.w == nil {
		return
	}
	// Periodic mode promises a sync within the interval for every segment,
	// including one this Log stops writing to.
	if p.dirty && p.log.opts.Durability == Periodic {
		if err := fdatasync(p.w.fd); err != nil {
			p.log.opts.Logger.Error("runnel: sync before closing segment", "path", p.w.path, "err", err)
		}
	}
	p.dirty = false
	p.w.close()
	p.w = nil
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

// openActive opens (creating) segment base as the active segment.
func (p *partition) openActive(base int64) error {
	p.dropActive()
	path := segmentPath(p.dir, base, logExt)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("runnel: open segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	idx, err := openIndexWriter(p.dir, base, st.Size(), p.topic.cfg.IndexIntervalBytes)
	if err == nil && !idx.consistent {
		// An entry was lost or damaged: the time index can no longer
		// vouch for the records before it. Rebuild both from the log.
		p.log.opts.Logger.Warn("runnel: indexes disagree, rebuilding", "path", path)
		idx.close()
		if err = rebuildIndex(p.dir, base, p.topic.cfg.IndexIntervalBytes); err == nil {
			idx, err = openIndexWriter(p.dir, base, st.Size(), p.topic.cfg.IndexIntervalBytes)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("runnel: open index of %s: %w", path, err)
	}
	p.w = &activeSeg{base: base, path: path, f: f, fd: int(f.Fd()), next: base, maxTS: idx.maxTS, idx: idx}
	return nil
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

// roll seals the active segment and starts the next one. The caller holds
// the writer lock, so no two processes can roll the same segment.
func (p *partition) roll() error {
	seal := frame.AppendSeal(nil, p.w.next)
	seal[frame.OffState] = frame.StateWritten
	if err := p.commitFrame(seal); err != nil {
		return err
	}
	p.w.idx.addTime(p.w.next-p.w.base, p.w.maxTS)
	next := p.w.next
	if err := p.openActive(next); err != nil {
		return err
	}
	if p.log.opts.Durability == Durable {
		if err := syncDir(p.dir); err != nil {
			return err
		}
	} else {
		p.dirDirty = true // the next periodic or closing sync covers it
	}
	if err := p.walkTail(0, next, true); err != nil {
		return err
	}
	p.retainAfterRoll()
	return nil
}
