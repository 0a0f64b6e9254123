package runnel

import (
	"context"
	"errors"
	"fmt"
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
	return p.waitWriterLock(ctx)
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
