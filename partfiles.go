package runnel

import (
	"context"
	"errors"
	"os"
	"time"
)

// A partition this Log appends to holds five descriptors: its active
// segment and two index files, partition.meta's mapping (whose lock file
// heals presence counts) and the writer's own lock file on it. A Log
// writing to thousands of partitions would run out, so a partition that
// went unused for a while, or that the Log's budget needs room from
// (openparts.go), releases them all: releaseFiles. Its next append opens
// them again (lockWriter, then findTail). The active segment's state is
// kept (p.parked): findTail reopens its three files and then checks the
// tail as after any append of this Log's with the lock let go since — one
// pread says whether another writer appended (or cut the file), and if
// one did, its index entries and frames are caught up with. A segment
// file that is gone, or another file by now, is forgotten and the tail
// found afresh, as the first append after Open does.
//
// Releasing must not pull a file from under anything that uses it:
//
//   - the writer lock, if kept between appends, is let go first (a kept
//     lock is only ever an optimisation; docs/FORMAT.md), and its watcher
//     stopped: the mapping stays until the watcher is done with it, which
//     a stopped watcher is without taking p.wmu (stopHoldLocked), since a
//     writer of this Log may hold p.wmu while it waits, as long as
//     another process likes, for the lock just let go;
//   - the sync stage must be idle and no syncNow or checkpoint may be
//     using the mapping (p.fileUsers), since they use p.shm and p.meta
//     outside p.wmu;
//   - a poisoned partition keeps its lock file until the kernel is done
//     with its writes (writerlock.go);
//   - in Periodic mode what was written is synced first (the interval's
//     promise); in Buffered mode the tail is remembered and Close syncs it
//     as it syncs every other partition it wrote.
//
// Releasing is an optimisation, and whoever asks for it must not wait on
// it: the Send or maintenance whose admission needs room (openParts.admit)
// and the idle sweep, which Close stops. So a partition that is not free
// to release now keeps its files until a later try: one in use (p.wmu
// taken, by a writer that may be waiting for another process), and in
// Periodic mode one whose sync cannot be had now because another process
// holds its sync lock, stopped (Ctrl-Z, SIGSTOP) or wedged in its
// fdatasync (syncIfFree).

// releaseFiles closes the partition's files if it is idle, and reports
// whether it did (or had none open). It waits for nothing another
// process does, and for nothing in this one but the last look of a
// stopped watcher of a kept writer lock at the mapping and, in Periodic
// mode, its own fdatasync. It takes p.wmu only if it is free.
func (p *partition) releaseFiles() bool {
	if !p.wmu.TryLock() {
		return false // an append or maintenance is under way
	}
	if p.isClosed() || p.shm == nil && p.meta == nil && p.w == nil {
		// Nothing open, or close takes care of it.
		p.wmu.Unlock()
		return true
	}
	if !p.idleLocked() {
		p.wmu.Unlock()
		return false
	}
	stopped := p.stopHoldLocked()
	p.wmu.Unlock()
	if stopped != nil {
		<-stopped // the watcher's last look at the mapping
	}
	if p.log.opts.Durability == Periodic && !p.syncIfFree() {
		return false
	}
	if !p.wmu.TryLock() {
		// Used again meanwhile, perhaps by a writer waiting for another
		// process's writer lock, as long as that process likes.
		return false
	}
	defer p.wmu.Unlock()
	if !p.idleLocked() || p.held || p.watch != nil || p.dirty && p.log.opts.Durability == Periodic {
		return false // used again meanwhile
	}
	return p.closeFilesLocked() == nil
}

// syncIfFree is releaseFiles' sync in Periodic mode: it syncs what this
// Log committed if p.wmu and the partition's sync lock are free now, and
// reports whether all of it is durable. It never waits for another
// process's fdatasync: the partition keeps its unsynced files instead,
// for the timer's sync or a later release.
func (p *partition) syncIfFree() bool {
	// An ended ctx: syncNow takes what is free and waits for nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.syncNow(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		p.log.opts.Logger.Error("runnel: sync before releasing files failed", "partition", p.dir, "err", err)
	}
	return err == nil
}

// idleLocked reports whether nothing uses the partition's files but
// p.wmu's holder: no write or sync in flight, no syncNow or checkpoint,
// no poisoned append. The caller holds p.wmu.
func (p *partition) idleLocked() bool {
	if p.poisoned.Load() || p.fileUsers.Load() != 0 || p.ckpt.queued.Load() {
		return false
	}
	p.mu.Lock()
	busy := p.writing || p.closed
	p.mu.Unlock()
	if busy {
		return false
	}
	p.sq.mu.Lock()
	syncing := p.sq.running || len(p.sq.wait) > 0
	p.sq.mu.Unlock()
	return !syncing
}

// closeFilesLocked closes the active segment, its indexes and the two
// descriptors of partition.meta. The caller holds p.wmu and made sure
// nothing else uses them (releaseFiles).
func (p *partition) closeFilesLocked() error {
	p.cutLeftZeros()
	if p.dirty && p.w != nil {
		// Buffered: Close syncs this tail (syncNow).
		p.releasedTail, p.dirty = p.w.tail(), false
		p.releasedDirty = true
	}
	var errs []error
	if p.w != nil {
		p.cur.Store(nil)
		errs = append(errs, p.w.close())
		if p.broken == nil {
			p.parked = p.w
		}
		p.w = nil
	}
	p.exact = false
	if p.meta != nil {
		p.syncMu.Lock()
		p.syncSlot, p.syncSlotClaimed = presenceSlot{}, false
		p.syncMu.Unlock()
		p.waitSlot = presenceSlot{}
		errs = append(errs, p.meta.Close())
		p.meta = nil
	}
	errs = append(errs, p.shm.close())
	p.shm = nil
	p.log.stats.fileReleases.Add(1)
	return errors.Join(errs...)
}

// openMetaFiles maps partition.meta and opens the writer's lock file on
// it, if they are not open: on first use, and after releaseFiles. The
// caller holds p.wmu.
func (p *partition) openMetaFiles() error {
	if p.shm == nil {
		shm, err := p.openShared()
		if err != nil {
			return err
		}
		p.shm = shm
	}
	if p.meta == nil {
		meta, err := p.openWriterLock()
		if err != nil {
			return err
		}
		p.meta = meta
	}
	return nil
}

// useFiles keeps the partition's mapping and lock file open until done is
// called, for work that uses them outside p.wmu (a sync, a checkpoint).
// ok is false when they are not open (released, or never opened). The
// caller holds p.wmu.
func (p *partition) useFiles() (done func(), ok bool) {
	if p.shm == nil || p.meta == nil {
		return nil, false
	}
	p.fileUsers.Add(1)
	return func() { p.fileUsers.Add(-1) }, true
}

// isClosed reports whether the partition was closed.
func (p *partition) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// reopenParked makes the parked active segment active again, reopening
// its files; if they are gone or replaced, it is forgotten, and findTail
// finds the tail afresh. The caller holds the writer lock.
func (p *partition) reopenParked() {
	a := p.parked
	if a == nil || p.w != nil {
		return
	}
	p.parked = nil
	f, err := openRegular(a.path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	st, err := f.Stat()
	if err != nil || !os.SameFile(st, a.id) {
		f.Close()
		return
	}
	off, err := openRegular(a.idx.offPath, os.O_RDWR, 0)
	if err != nil {
		f.Close()
		return
	}
	tim, err := openRegular(segmentPath(p.dir, a.base, timeIndexExt), os.O_RDWR, 0)
	if err != nil {
		f.Close()
		off.Close()
		return
	}
	a.idx.off, a.idx.tim = off, tim
	// Another writer may have rebuilt them meanwhile: go on from where
	// they end now.
	if err := a.idx.refresh(); err != nil {
		a.idx.close()
		f.Close()
		return
	}
	a.sf = newSegFile(a.base, f)
	a.f, a.fd, a.cm = f, a.sf.fd, nil
	if p.log.opts.Durability != Durable {
		a.cm = newCommitMap(a.sf.fd) // as openActive
	}
	p.w = a
	p.cur.Store(a.sf)
}

// testHookCloseWaits, if set, is called when a closing partition waits
// for a checkpoint or sync that uses its files.
var testHookCloseWaits func()

// waitFileUsers waits, as the partition closes, for the checkpoint or
// sync that uses its mapping and lock file outside p.wmu (useFiles) to
// let go of them, as releaseFiles does, so that close never unmaps
// partition.meta under a checkpoint's msync. Once p.closed is set, none
// uses them anew past its lock: lockForCheckpoint fails. The use is one
// fdatasync and msync long, and close is rare: a short poll will do.
func (p *partition) waitFileUsers() {
	if p.fileUsers.Load() == 0 {
		return
	}
	if testHookCloseWaits != nil {
		testHookCloseWaits()
	}
	for p.fileUsers.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
}
