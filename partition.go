package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// partition is a Log's handle on one partition directory. Its writer side
// (batch queue in producer.go, appends in append.go) is shared by every
// Producer of the Log; readers (reader.go) only read its files.
type partition struct {
	log   *Log
	topic *topic
	id    int
	dir   string

	// The write stage, guarded by mu (batch.go).
	mu      sync.Mutex
	work    sync.Cond    // the writer goroutine waits for a pending record
	space   sync.Cond    // senders wait for room in the pending batch
	pending *batch       // records waiting to be written; never nil after the first
	writing bool         // the write token: a batch is being appended
	handed  *batch       // a leader's batch, with the token, for the writer goroutine
	senders atomic.Int32 // senders blocked waiting for an acknowledgement
	last    *batch       // the newest batch taken for writing
	spare   *frame.Builder
	// spareBatch is a batch given back for reuse (recycle).
	spareBatch *batch
	cbsHint    int   // the most callbacks a batch had: a new slice's capacity (batch.go)
	unsynced   int64 // bytes of batches taken for writing, not yet settled by the sync stage (Durable)
	closed     bool
	closeErr   error // what sends fail with once closed: ErrClosed, or the topic was deleted
	started    bool
	loopDone   chan struct{}
	batchCap   atomic.Int64 // half the segment size: the largest batch

	// The sync stage, Durable mode (commit.go).
	sq  syncQueue
	cur atomic.Pointer[segFile] // the active segment's file, for syncs
	// syncMu is held with the sync lock, whose holder is p.meta's open
	// file description, which this Log's goroutines share. It guards the
	// fields after it.
	syncMu          sync.Mutex
	lastSync        time.Duration // how long the last fdatasync took
	syncSlot        presenceSlot  // a sleeping-reader slot for awaitWoken
	syncSlotClaimed bool

	// Appends, guarded by wmu: leaders, the writer goroutine, the
	// periodic syncer, maintenance and Close take turns.
	wmu    sync.Mutex
	meta   *lockFile  // partition.meta: byte 0 is the writer lock
	shm    *metaMap   // partition.meta mapped: wake-ups, the durable point
	w      *activeSeg // this Log's view of the tail; nil until first append
	broken error      // sticky: committed data is damaged, appends refused
	dirty  bool       // written since the last fdatasync (not Durable mode)
	ckpt   ckptState  // synced checkpoints (checkpoint.go)

	// wmuWaitsLeft counts the waits of lockWmuContext that gave up and
	// still wait for wmu, to let it go as soon as they get it: while
	// there is one, the periodic sync adds none.
	wmuWaitsLeft atomic.Int32

	// Releasing the files of an idle partition (partfiles.go), under wmu
	// but for fileUsers: syncs and checkpoints using p.shm and p.meta
	// outside wmu.
	fileUsers     atomic.Int32
	releasedTail  logPos // Buffered: the unsynced tail when its files closed
	releasedDirty bool
	parked        *activeSeg // the active segment as it was, files closed (reopenParked)
	open          openSlot   // its place among the Log's open partitions (openparts.go)

	// Keeping the writer lock between appends (writerlock.go), under wmu.
	waitSlot  presenceSlot // a writer-lock waiter slot, claimed on first contention
	held      bool         // this Log holds the writer lock
	exact     bool         // held since this Log's last append: p.w is the tail
	zerosLeft zeroRun      // the zeros the last holder left (takeZeros), if zerosOK
	zerosOK   bool
	contended time.Time     // when another holder last wanted the lock
	watch     *holdWatch    // the kept lock's watcher, if one runs
	appends   atomic.Uint64 // appends under a kept lock, for watchHold

	// poisoned: an append failed with writes possibly still running in
	// the kernel; the writer lock stays held until they end (poison).
	poisoned   atomic.Bool
	metaOrphan bool // closed while poisoned: the drain closes p.meta

	// abandon is closed when a bounded close (Log.CloseContext,
	// DeleteTopicContext) runs out of time: every wait for the writer
	// lock, now or later, ends with ErrClosed.
	abandon     chan struct{}
	abandonOnce sync.Once
	abandoned   atomic.Bool // a wait ended so

	counts partCounters // for Stats (stats_count.go)

	// sealChecks holds, by segment base, the seal time entries this Log
	// checked against their sealed segments (sealCheck, index.go). They
	// go with the handle when the topic is deleted, and forgetSealChecks
	// drops those of segments retention removed.
	sealChecks sync.Map
}

const metaFileName = "partition.meta"

func newPartition(l *Log, t *topic, id int) *partition {
	p := &partition{
		log:   l,
		topic: t,
		id:    id,
		dir:   partitionDir(l.topicDir(t.name), id),

		abandon: make(chan struct{}),
	}
	p.work.L = &p.mu
	p.space.L = &p.mu
	p.sq.idle.L = &p.sq.mu
	p.batchCap.Store(t.cfg.SegmentBytes / 2)
	return p
}

// lockForMaintenance takes the partition's writer lock, in this process
// and across processes, for work that rewrites its files outside an append
// (retention, repair). It fails with ErrClosed once the partition is
// closed. unlock releases both locks.
func (p *partition) lockForMaintenance(ctx context.Context) (unlock func(), err error) {
	return p.lockOutsideAppend(ctx, false)
}

// lockForCheckpoint is lockForMaintenance for recording a checkpoint,
// which leaves the segments as they are: a writer lock this Log kept
// across appends stays kept, with the tail it knows. Letting it go, as
// every checkpoint did (one per 8 MiB of log), trimmed the zeros extended
// ahead of the tail, and the next append took the lock again, found the
// tail, and extended and mapped the segment anew: a SendAsync stream of
// 660 MB on the loaded test machine took the writer lock 132 times, 63
// without the checkpoints' (Stats.WriterLocks; the rest are the kept
// lock's watcher letting it go while appends paused).
// TestCheckpointKeepsWriterLock checks that the lock stays kept.
func (p *partition) lockForCheckpoint(ctx context.Context) (unlock func(), err error) {
	return p.lockOutsideAppend(ctx, true)
}

// lockOutsideAppend is lockForMaintenance and lockForCheckpoint: keep says
// whether unlock leaves a writer lock kept from the last append held.
func (p *partition) lockOutsideAppend(ctx context.Context, keep bool) (unlock func(), err error) {
	if err := p.lockWmuContext(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.wmu.Unlock()
		return nil, ErrClosed
	}
	kept := keep && p.held
	if err := p.lockWriter(ctx); err != nil {
		p.wmu.Unlock()
		return nil, err
	}
	return func() {
		if keep && !kept && p.zerosOK {
			// The zeros another writer left are as they were: leave the
			// statement for the next holder, as a checkpoint found it.
			p.shm.leaveZeros(p.zerosLeft)
			p.zerosOK = false
		}
		if !kept {
			p.unlockWriter(false)
		}
		p.wmu.Unlock()
		p.log.parts.used(p) // its files are open now: count them
	}, nil
}

// lockWmuContext takes p.wmu, or returns ctx.Err() if ctx ends first.
// Whoever holds p.wmu may be waiting for the writer lock itself, with no
// bound of this caller's: the Log's retention pass or a checkpoint waits
// for as long as another process keeps the lock (stopped, hung), and
// EnforceRetention, Repair or a Poll's repair behind it waited as long.
func (p *partition) lockWmuContext(ctx context.Context) error {
	if p.wmu.TryLock() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	got, gaveUp := make(chan struct{}), make(chan struct{})
	go func() {
		p.wmu.Lock()
		select {
		case got <- struct{}{}:
		case <-gaveUp:
			p.wmu.Unlock()
			p.wmuWaitsLeft.Add(-1)
		}
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		p.wmuWaitsLeft.Add(1)
		close(gaveUp)
		return ctx.Err()
	}
}

// giveUp ends the partition's waits for the writer lock and, in the
// background syncer, for another process's fdatasync, present and future,
// with ErrClosed: the bounded close that called it is out of time.
func (p *partition) giveUp() { p.abandonOnce.Do(func() { close(p.abandon) }) }

// untilGivenUp is a context that ends when giveUp is called (or cancel),
// for waits on other processes that a bounded close ends.
func (p *partition) untilGivenUp() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.abandon:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// waitWriterLock waits for the writer lock, which another process (or
// Log) holds, announced (writerlock.go), until ctx ends or the partition
// is given up. The caller holds p.wmu.
func (p *partition) waitWriterLock(ctx context.Context) error {
	select {
	case <-p.abandon:
		return p.gaveUp()
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.abandon:
			cancel()
		case <-wctx.Done():
		}
	}()
	_, err := lockAnnounced(wctx, p.meta, p.shm, &p.waitSlot)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return p.gaveUp()
	}
	return err
}

// gaveUp notes and returns the error of a wait for the writer lock that a
// bounded close ended.
func (p *partition) gaveUp() error {
	p.abandoned.Store(true)
	return fmt.Errorf("%w: gave up waiting for another process's writer lock on %s", ErrClosed, p.dir)
}

// closeSync is close's fdatasync in the modes that do not sync each
// append, until a bounded close is out of time (giveUp): behind a stopped
// process's sync lock it gives up, the records committed, not known
// durable.
func (p *partition) closeSync() error {
	ctx, cancel := p.untilGivenUp()
	defer cancel()
	err := p.syncNow(ctx)
	if err != nil && ctx.Err() != nil {
		return p.gaveUpSync()
	}
	return err
}

// gaveUpSync notes and returns the error of the records whose fdatasync a
// bounded close stopped waiting for: another process held the sync lock.
// They are committed, so readers may see them, but not known durable.
func (p *partition) gaveUpSync() error {
	p.abandoned.Store(true)
	return fmt.Errorf("%w: gave up waiting for another process's fdatasync on %s (the records are committed, not known durable)", ErrClosed, p.dir)
}

// close drains the write and sync stages, then closes the partition's
// files. Later sends fail with reason.
func (p *partition) close(reason error) error {
	p.mu.Lock()
	if !p.closed {
		p.closed, p.closeErr = true, reason
	}
	p.work.Broadcast()
	p.space.Broadcast()
	for p.writing { // a leader's write
		p.work.Wait()
	}
	// Read after the leader's write: a leader that found the writer lock
	// taken started the writer goroutine to append for it.
	started := p.started
	p.mu.Unlock()
	if started {
		<-p.loopDone
	}
	p.drainSyncs()
	var errs []error
	if p.log.opts.Durability != Durable {
		errs = append(errs, p.closeSync())
	}
	p.stopHold()
	p.log.parts.forget(p)
	p.waitFileUsers()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.cutLeftZeros()
	if p.w != nil {
		p.cur.Store(nil)
		errs = append(errs, p.w.close())
		p.w = nil
	}
	if p.meta != nil {
		if p.poisoned.Load() {
			// The kernel may still write for the failed append: the
			// lock (and so the file) stays until it is done (poison).
			p.metaOrphan = true
		} else {
			errs = append(errs, p.meta.Close())
		}
		p.meta = nil
	}
	errs = append(errs, p.shm.close())
	p.shm = nil
	return errors.Join(errs...)
}

// openShared maps the partition's partition.meta, for a reader or the
// writer. The handle may be older than the files it opens: if another Log
// deleted the topic meanwhile, or deleted it and created it anew,
// p.dir names a partition of another incarnation or nothing, and that
// incarnation's meta must not stand in for this one's (whose deleted
// flag would stop the caller). So it checks, after opening, that the
// handle is still current (Log.topicCurrent: the same directory and topic
// ID), and fails with ErrTopicNotFound otherwise. Checking after suffices:
// a delete sets the flag in the meta files before it moves the directory.
func (p *partition) openShared() (*metaMap, error) {
	m, err := openMeta(p.dir)
	if err != nil {
		return nil, p.orMissing(err)
	}
	if !p.log.topicCurrent(p.topic) {
		m.close()
		return nil, topicDeleted(p.topic.name)
	}
	return m, nil
}

// openWriterLock opens the writer's own holder of partition.meta's lock
// byte: the same file p.shm maps, which openShared checked belongs to this
// incarnation of the topic. The caller holds p.wmu and has set p.shm.
func (p *partition) openWriterLock() (*lockFile, error) {
	path := filepath.Join(p.dir, metaFileName)
	lf, err := openLockFile(path)
	if err != nil {
		return nil, p.log.orGone(p.topic, fmt.Errorf("runnel: open writer lock: %w", err))
	}
	same, err := sameFile(lf.File(), p.shm.lf.File())
	if err != nil || !same {
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("runnel: open writer lock %s: %w", path, err)
		}
		return nil, topicDeleted(p.topic.name)
	}
	return lf, nil
}

// describe reads the partition's extent from disk, without any lock.
func (p *partition) describe() (PartitionInfo, error) {
	info := PartitionInfo{Partition: p.id}
	bases, err := p.segmentBases()
	if err != nil || len(bases) == 0 {
		return info, err
	}
	info.Segments = len(bases)
	recorded, err := readLogStart(p.dir)
	if err != nil {
		return info, err
	}
	r, err := p.seekEndOf(bases)
	if err != nil {
		return info, err
	}
	defer r.close()
	info.StartOffset, info.NextOffset = partStart(bases[0], recorded, r.next), r.next
	for _, b := range bases {
		if b == r.base {
			// The segment the end was found in: its data, without the
			// zeros ahead of the tail (prealloc.go).
			info.Bytes += r.endSize
		} else if st, err := os.Stat(segmentPath(p.dir, b, logExt)); err == nil {
			info.Bytes += st.Size()
		}
	}
	return info, nil
}

// offsets is describe's StartOffset and NextOffset alone: the extent and
// the log-start file, nothing per segment.
func (p *partition) offsets() (start, next int64, err error) {
	first, next, err := p.extent()
	if err != nil {
		return 0, 0, err
	}
	recorded, err := readLogStart(p.dir)
	if err != nil {
		return 0, 0, err
	}
	return partStart(first, recorded, next), next, nil
}

// extent returns the first segment's base and the partition's end: one
// directory listing and the walk from the last index entry.
func (p *partition) extent() (first, next int64, err error) {
	bases, err := p.segmentBases()
	if err != nil {
		return 0, 0, err
	}
	return p.extentOf(bases)
}

// extentOf is extent for the partition whose segments are bases, as the
// caller listed them: the walk alone.
func (p *partition) extentOf(bases []int64) (first, next int64, err error) {
	if len(bases) == 0 {
		return 0, 0, nil
	}
	r, err := p.seekEndOf(bases)
	if err != nil {
		return 0, 0, err
	}
	defer r.close()
	return bases[0], r.next, nil
}

// endWindow is the read-ahead of a reader that only finds the end: it
// reads frame headers from the last index entry on, which lie within an
// index interval or so of the end (the default 1 MiB read-ahead, zeroed
// and filled on every call, was most of what DescribeTopic cost).
const endWindow = 16 << 10

// seekEndOf returns a reader at the end of the partition whose segments
// are bases. The caller closes it.
func (p *partition) seekEndOf(bases []int64) (*partReader, error) {
	r := newPartReader(p, endWindow)
	if err := r.seekEndFrom(bases[len(bases)-1]); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// testHookEndWalk, if set, runs as endOffset walks to a partition's end.
var testHookEndWalk func()

// endOffset finds the offset after the last committed record by reading,
// lock-free, from the last segment's last index entry.
func (p *partition) endOffset() (int64, error) {
	if testHookEndWalk != nil {
		testHookEndWalk()
	}
	_, next, err := p.extent()
	return next, err
}

// outOfRange is the error for offset, which p does not hold, with p's
// extent as it is on disk now.
func (p *partition) outOfRange(offset int64) error {
	e := &OutOfRangeError{Topic: p.topic.name, Partition: p.id, Offset: offset, End: -1}
	if info, err := p.describe(); err == nil {
		e.Start, e.End = info.StartOffset, info.NextOffset
	}
	return e
}
