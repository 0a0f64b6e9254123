package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/tracefmt"
)

// Durable mode's second stage: group commit across processes (DESIGN §3
// step 6, §5). An append commits its frame under the writer lock, publishes
// the new tail in partition.meta and lets the lock go; only then is the
// frame made durable, by an fdatasync that serves every frame committed
// before it started, whichever process wrote it:
//
//   - The durable point in partition.meta says how far the log is on disk.
//     A frame that ends at or before it is durable: its senders are
//     acknowledged without another fdatasync.
//   - Otherwise the appender takes the partition's sync lock (a byte-range
//     lock, so a dead syncer cannot keep it), reads the published tail,
//     fdatasyncs the segment, moves the durable point to that tail, bumps
//     the durable sequence and wakes whoever sleeps on it.
//   - An appender that finds the sync lock taken sleeps on the durable
//     sequence (a futex on the shared word) until that sync ends, then
//     looks again: the sync may have covered its frame, or it syncs next.
//
// In one process, the partition's committed batches queue for the sync
// stage while the next frames are written (pipelining): one goroutine at a
// time runs sync rounds for the partition, each covering every batch
// committed before it began. A sender alone runs the round itself; a
// background goroutine takes over when other batches are left waiting.

// syncerCheck bounds a sleep on another process's sync: if that process
// died mid-sync, nothing wakes the sleepers, and its lock is free again.
// (A variable: tests stretch it.)
var syncerCheck = 10 * time.Millisecond

// syncQueue is a partition's durability stage in this Log.
type syncQueue struct {
	mu       sync.Mutex
	wait     []*batch      // committed (or failed) batches, in commit order
	running  bool          // a goroutine runs sync rounds (runSyncs)
	idle     sync.Cond     // signalled when running ends with nothing waiting
	released int           // blocked senders the last round acknowledged
	took     time.Duration // how long the last round's sync took
	kick     chan struct{}
	loopDone chan struct{} // closed when the background syncer exits
}

// awaitDurable queues a committed batch for the sync stage. inline says
// the caller waits for b anyway and may run the sync rounds itself: then
// it returns true if the caller must (runSyncs(b)).
func (p *partition) awaitDurable(b *batch, inline bool) (run bool) {
	q := &p.sq
	q.mu.Lock()
	q.wait = append(q.wait, b)
	if q.running {
		q.mu.Unlock()
		return false
	}
	q.running = true
	q.mu.Unlock()
	if inline {
		return true
	}
	p.kickSyncer()
	return false
}

// kickSyncer hands the sync rounds to the partition's background syncer,
// starting it on first use. The caller set q.running.
func (p *partition) kickSyncer() {
	q := &p.sq
	q.mu.Lock()
	if q.kick == nil {
		q.kick = make(chan struct{}, 1)
		q.loopDone = make(chan struct{})
		go p.syncLoop(q.kick, q.loopDone)
	}
	kick := q.kick
	q.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// syncLoop is the background syncer: it runs sync rounds whenever kicked,
// until the partition closes (the kick channel is closed).
func (p *partition) syncLoop(kick <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	// A bounded Close out of time (giveUp) ends its wait for another
	// process's fdatasync, as it ends waits for the writer lock.
	ctx, cancel := p.untilGivenUp()
	defer cancel()
	for range kick {
		p.runSyncs(ctx, nil)
	}
}

// runSyncs runs sync rounds until no batch waits. A sender running them
// inline (own != nil) stops once own is acknowledged, or when ctx ends
// while it waits for another process's fdatasync, and hands what is left
// to the background syncer.
func (p *partition) runSyncs(ctx context.Context, own *batch) {
	q := &p.sq
	for {
		q.mu.Lock()
		if len(q.wait) == 0 {
			q.running = false
			q.idle.Broadcast()
			q.mu.Unlock()
			return
		}
		if own != nil && own.done().fired() {
			q.mu.Unlock()
			p.kickSyncer()
			return
		}
		target, ok := q.target()
		released, took := q.released, q.took
		q.mu.Unlock()

		var durable int64
		var err error
		var began time.Time
		if ok {
			tracePoint(tracefmt.LocalRegroupBegin)
			p.regroupSync(released, took)
			tracePoint(tracefmt.LocalRegroupEnd)
			if target, ok = p.syncTarget(); ok {
				began = time.Now()
				durable, err = p.syncShared(ctx, target)
				tracePoint(tracefmt.SyncWaitEnd)
			}
		}
		if err == errSyncAbandoned {
			if own != nil {
				p.kickSyncer()
				return
			}
			// The background syncer, given up by a bounded Close: what
			// waits fails, committed but not known durable.
			err = p.gaveUpSync()
		}
		q.mu.Lock()
		if !began.IsZero() {
			q.took = time.Since(began)
		}
		settled := q.popCovered(durable, err)
		q.released = 0
		for _, b := range settled {
			q.released += b.waiters
		}
		q.mu.Unlock()
		for _, b := range settled {
			b.settle(p.id)
			b.recycleCallbacks()
		}
	}
}

// target returns where the newest batch that committed ends. The caller
// holds q.mu.
func (q *syncQueue) target() (logPos, bool) {
	for i := len(q.wait) - 1; i >= 0; i-- {
		if q.wait[i].err == nil {
			return q.wait[i].end, true
		}
	}
	return logPos{}, false
}

// syncTarget returns where the newest batch waiting for the sync stage
// ends, now: more may have committed during the regroup.
func (p *partition) syncTarget() (logPos, bool) {
	p.sq.mu.Lock()
	defer p.sq.mu.Unlock()
	return p.sq.target()
}

// popCovered takes the batches off the head of the queue that the sync
// just settled: those durable up to offset durable, every one if the sync
// failed, and failed appends (which wait their turn, so that batches
// settle in commit order). The caller holds q.mu.
func (q *syncQueue) popCovered(durable int64, err error) []*batch {
	n := 0
	for _, b := range q.wait {
		if b.err == nil && err == nil && b.end.next > durable {
			break
		}
		if b.err == nil {
			b.syncErr = err
		}
		n++
	}
	settled := append([]*batch(nil), q.wait[:n]...)
	q.wait = append(q.wait[:0], q.wait[n:]...)
	return settled
}

// regroupSync lets the senders the last round released commit again
// before the next fdatasync starts, so that it carries them all instead
// of a first few: it waits, a fraction of the last fdatasync at most
// (syncRegroupWindow), while fewer blocked senders are queued than were
// released.
func (p *partition) regroupSync(released int, lastSync time.Duration) {
	if released <= 1 {
		return
	}
	deadline := time.Now().Add(syncRegroupWindow(lastSync))
	for time.Now().Before(deadline) {
		p.sq.mu.Lock()
		queued := 0
		for _, b := range p.sq.wait {
			queued += b.waiters
		}
		p.sq.mu.Unlock()
		if queued >= released {
			return
		}
		runtime.Gosched()
	}
}

// syncRegroupWindow bounds how long a sync waits for the senders the last
// one released, in this process (regroupSync) or in others (awaitWoken):
// a quarter of the last fdatasync's time. With 64 blocked senders, a
// fixed 50µs let 44–53 of them back into each fdatasync on a loaded
// 2-core machine, a quarter of the sync 53–58 (docs/PERFORMANCE.md); the
// wait costs at most a quarter of a sync when they do not come.
func syncRegroupWindow(lastSync time.Duration) time.Duration {
	return min(max(lastSync/4, 20*time.Microsecond), 2*time.Millisecond)
}

// errSyncAbandoned says that syncShared gave up waiting for another
// process's fdatasync because its caller's ctx ended.
var errSyncAbandoned = errors.New("runnel: wait for a shared fdatasync abandoned")

// syncShared makes the partition durable up to want, by an fdatasync of
// this process or another's, and returns the offset it is now durable up
// to (want.next or more). If ctx ends while it waits for another process's
// fdatasync, it returns errSyncAbandoned.
func (p *partition) syncShared(ctx context.Context, want logPos) (int64, error) {
	m := p.shm
	for {
		seq := m.durSeq().Load()
		if d, ok := m.durableNext(); ok && d >= want.next {
			return d, nil
		}
		got, err := p.trySyncLock()
		tracePoint(tracefmt.SyncLockTried)
		if err != nil {
			return 0, err
		}
		if got {
			return p.syncAndUnlock(want)
		}
		if ctx.Err() != nil {
			return 0, errSyncAbandoned
		}
		// Another process is syncing. Its fdatasync may cover want; if
		// it began too early, the next one is ours.
		p.log.stats.syncWaits.Add(1)
		tracePoint(tracefmt.SyncWaitBegin)
		waitWord(m.durSeq(), seq, syncerCheck)
		tracePoint(tracefmt.SyncWoken)
	}
}

// syncAndUnlock is syncShared's work once it took the sync lock
// (trySyncLock): syncHolding, then the lock let go; a failure breaks the
// partition.
func (p *partition) syncAndUnlock(want logPos) (int64, error) {
	d, err := p.syncHolding(want)
	p.unlockSync()
	if err != nil {
		p.breakAfterSync(err)
	}
	return d, err
}

// syncHolding is syncShared's work, holding the sync lock: fdatasync what
// lies between the durable point and the published tail (which is want or
// later) and record the tail as the durable point.
func (p *partition) syncHolding(want logPos) (int64, error) {
	m := p.shm
	boot, durBase, _, durNext, durOK := m.durablePoint()
	durOK = durOK && boot == currentBootID
	if durOK && durNext >= want.next {
		return durNext, nil
	}
	tracePoint(tracefmt.RegroupBegin)
	p.awaitWoken()
	tracePoint(tracefmt.RegroupEnd)
	t, ok := m.tail()
	if !ok || t.next < want.next {
		t = want
	}
	// The new durable point vouches for every frame before it, in every
	// segment from the current point's on, whoever wrote them. A roll
	// syncs the segment it seals, but a roller that died (or failed)
	// between its seal and that sync leaves a sealed segment that no
	// fdatasync covered, and the writers after it need not know: so the
	// durable point moves into a later segment only after every segment
	// since the old point, and the directory, were synced here.
	from := int64(math.MinInt64) // no point of this boot: every segment
	if durOK {
		from = durBase
	}
	began := time.Now()
	tailGone, err := p.syncSegments(from, t.base)
	p.lastSync = time.Since(began)
	if err == nil && !tailGone && (!durOK || t.next > durNext) {
		// (A tail whose segment retention removed meanwhile stays out of
		// the durable point, which must name an existing segment:
		// retention moves the point past the segments it removed.)
		m.setDurablePoint(currentBootID, t.base, t.pos, t.next)
	}
	// Wake the sleepers even after a failure: they try themselves.
	m.durSeq().Add(1)
	tracePoint(tracefmt.SyncWake)
	woken := wakeAll(m.durSeq())
	if err != nil {
		woken = 0
	}
	m.u32(metaWokeSeqOff).Store(m.seq().Load())
	m.u32(metaWokeOff).Store(uint32(woken))
	if err != nil {
		return 0, err
	}
	return t.next, nil
}

// syncSegments fdatasyncs the segments from base from up to base to, the
// published tail's, and the partition directory when that is more than
// one segment. A segment that retention removed (it lies below the first
// segment there is now) needs no sync: tailGone says that was the tail's.
func (p *partition) syncSegments(from, to int64) (tailGone bool, err error) {
	if from < to {
		bases, err := listSegments(p.dir)
		if err != nil {
			return false, fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
		}
		for _, b := range bases {
			if b < from || b >= to {
				continue
			}
			if err := p.syncSegment(b); err != nil && !p.removedByRetention(b, err) {
				return false, err
			}
		}
		// A roller syncs the directory entry of the segment it creates,
		// but may have died first.
		if err := syncDir(p.dir); err != nil {
			return false, err
		}
	}
	err = p.syncSegment(to)
	if err != nil && p.removedByRetention(to, err) {
		return true, nil
	}
	return false, err
}

// removedByRetention reports whether err, from syncing segment base, says
// the segment is gone because retention removed it: it is missing, and
// later segments are there. Retention removes sealed segments only, from
// the front, and a missing segment anywhere else is damage.
func (p *partition) removedByRetention(base int64, err error) bool {
	if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	bases, lerr := listSegments(p.dir)
	return lerr == nil && len(bases) > 0 && bases[0] > base
}

// unlockSync lets the sync lock go, and wakes whoever sleeps on the
// durable sequence again: a process that found the lock taken after the
// holder's last wake-up, and its frame not yet covered, would otherwise
// sleep until syncerCheck, though the lock is free for it now.
func (p *partition) unlockSync() error {
	err := p.meta.Unlock(syncLockByte)
	p.syncMu.Unlock()
	p.shm.durSeq().Add(1)
	wakeAll(p.shm.durSeq())
	return err
}

// awaitWoken is the cross-process half of regrouping: the processes
// that the last shared fdatasync woke are about to commit again, each a
// frame, and this sync should carry them rather than leave them to the
// next. So, holding the sync lock, wait until that many commits came (the
// append sequence counts them) or a quarter of the last fdatasync's time
// passed, asleep on the append sequence like a reader.
func (p *partition) awaitWoken() {
	m := p.shm
	woken := m.u32(metaWokeOff).Load()
	if woken == 0 {
		return
	}
	from := m.u32(metaWokeSeqOff).Load()
	if m.seq().Load()-from >= woken {
		return
	}
	if !p.syncSlotClaimed {
		// Claimed through p.meta, so that this Log's own healing of the
		// count (through the mapping's lock file) sees a live holder.
		p.syncSlot, p.syncSlotClaimed = m.sleeping.claim(p.meta), true
	}
	deadline := time.Now().Add(syncRegroupWindow(p.lastSync))
	for {
		cur := m.seq().Load()
		left := time.Until(deadline)
		if cur-from >= woken || left <= 0 {
			return
		}
		m.sleeping.enter(p.syncSlot)
		waitWord(m.seq(), cur, left)
		m.sleeping.leave(p.syncSlot)
	}
}

// syncSegment fdatasyncs segment base, through the active segment's
// file when that is the one.
func (p *partition) syncSegment(base int64) error {
	sf := p.cur.Load()
	if sf == nil || sf.base != base || !sf.acquire() {
		f, err := openRegular(segmentPath(p.dir, base, logExt), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("runnel: sync segment: %w", err)
		}
		sf = newSegFile(base, f)
	}
	began := time.Now()
	tracePoint(tracefmt.FdatasyncBegin)
	err := p.log.app.sync(sf.fd)
	tracePoint(tracefmt.FdatasyncEnd)
	if cerr := sf.release(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("runnel: sync %s: %w", sf.f.Name(), err)
	}
	p.log.stats.syncs.Add(1)
	p.observeSync(began)
	return nil
}

// breakAfterSync makes the partition refuse appends after a failed
// fdatasync: the kernel may have dropped the dirty pages, so nothing
// written can be called durable any more, as databases conclude.
func (p *partition) breakAfterSync(err error) {
	p.wmu.Lock()
	if p.broken == nil {
		p.broken = fmt.Errorf("%w; the partition refuses appends until reopened", err)
	}
	p.wmu.Unlock()
}

// setDurablePoint moves the durable point outside a sync: recovery, which
// holds the writer lock, calls it once it synced everything up to the
// point. It takes the sync lock so that no sync in flight writes the point
// at the same time, but only if the lock is free now: its holder may be
// another process stopped (Ctrl-Z, SIGSTOP) in the middle of its
// fdatasync, and recovery, holding the writer lock for a caller's append,
// must not wait for it. A point left behind the tail, or of another boot,
// only makes the next sync cover more: it syncs the segments from that
// point, or from the first.
func (p *partition) setDurablePoint(boot [16]byte, base, pos, next int64) error {
	got, err := p.trySyncLock()
	if err != nil || !got {
		return err
	}
	p.shm.setDurablePoint(boot, base, pos, next)
	return p.unlockSync()
}

// durablePointFrom moves a durable point that lay in a segment retention
// removed to the start of the new first segment, start, which keeps its
// coverage of everything left. A point with no boot id means "verify the
// last segment" and stays as it is. It moves the point only if the sync
// lock is free, as setDurablePoint: retention holds the writer lock too.
// A point left in a removed segment costs the next sync a directory sync
// at most: it syncs the segments there are from the first
// (syncSegments), as from the moved point.
func (p *partition) durablePointFrom(start int64) error {
	got, err := p.trySyncLock()
	if err != nil || !got {
		return err
	}
	m := p.shm
	if boot, base, _, _, ok := m.durablePoint(); ok && boot != ([16]byte{}) && base < start {
		m.setDurablePoint(boot, start, 0, start)
	}
	return p.unlockSync()
}

// trySyncLock takes p.syncMu and the sync lock if the lock is free; got
// is false, holding neither, when it is taken. unlockSync releases both.
// Nothing waits for the lock: its holder may be a process stopped in its
// fdatasync.
func (p *partition) trySyncLock() (got bool, err error) {
	p.syncMu.Lock()
	got, err = p.meta.TryLock(syncLockByte)
	if !got {
		p.syncMu.Unlock()
		if testHookSyncLockTaken != nil {
			testHookSyncLockTaken()
		}
	}
	if err != nil {
		return false, fmt.Errorf("runnel: sync lock of %s: %w", p.dir, err)
	}
	return got, nil
}

// testHookSyncLockTaken, if set, is called when trySyncLock finds the sync
// lock taken.
var testHookSyncLockTaken func()

// syncNow makes everything this Log committed to the partition durable:
// Periodic mode's timer and Close in the modes that do not sync each
// append. ctx bounds the wait for p.wmu, which this Log's writer holds
// while it waits for another process's writer lock, and the wait for
// another process's fdatasync (its sync lock, which a stopped process
// may hold for ever): the timer goes on to the other partitions rather
// than wait for either, and a bounded Close gives up. Then it returns
// ctx.Err(), and the tail stays for the next sync. A ctx that has ended
// already makes it sync only if both are free now (releaseFiles): it
// tries the sync lock before it takes the tail off p.dirty, so that a
// sync of this Log's meanwhile (the timer's, Close's) never finds the
// tail taken by one that then gives it back unsynced. The caller must not
// hold p.wmu.
func (p *partition) syncNow(ctx context.Context) error {
	if err := p.lockWmuContext(ctx); err != nil {
		return err
	}
	var t logPos
	switch {
	case p.dirty && p.w != nil:
		// A tail releaseFiles left unsynced is in this segment or an
		// earlier one, which its roll synced.
		t = p.w.tail()
	case p.releasedDirty:
		// releaseFiles closed the files with this tail unsynced
		// (Buffered mode): open what the sync needs again.
		if err := p.openMetaFiles(); err != nil {
			p.wmu.Unlock()
			return err
		}
		t = p.releasedTail
	default:
		p.wmu.Unlock()
		return nil
	}
	holding := false
	if ctx.Err() != nil {
		got, err := p.trySyncLock()
		if err != nil || !got {
			p.wmu.Unlock()
			if err != nil {
				return err
			}
			return ctx.Err()
		}
		holding = true
	}
	done, _ := p.useFiles() // p.shm and p.meta stay open for the sync
	p.dirty, p.releasedDirty = false, false
	p.wmu.Unlock()
	defer done()
	var err error
	if holding {
		_, err = p.syncAndUnlock(t)
	} else {
		_, err = p.syncShared(ctx, t)
	}
	if err == errSyncAbandoned {
		err = ctx.Err()
	}
	if err != nil {
		p.wmu.Lock()
		if p.w != nil {
			p.dirty = true // its tail covers t (see above)
		} else {
			p.releasedTail, p.releasedDirty = t, true
		}
		p.wmu.Unlock()
	}
	return err
}

// drainSyncs waits until the sync stage has settled every batch, then
// stops the background syncer. The write stage must be drained first.
func (p *partition) drainSyncs() {
	q := &p.sq
	q.mu.Lock()
	for q.running || len(q.wait) > 0 {
		q.idle.Wait()
	}
	kick, done := q.kick, q.loopDone
	q.kick = nil
	q.mu.Unlock()
	if kick != nil {
		close(kick)
		<-done
	}
}

// segFile is an open segment file that the active segment and a sync of
// it share, so that an fdatasync in flight never races the writer closing
// the file: the last one to let go closes it.
type segFile struct {
	base int64
	f    *os.File
	fd   int
	refs atomic.Int32
}

func newSegFile(base int64, f *os.File) *segFile {
	s := &segFile{base: base, f: f, fd: int(f.Fd())}
	s.refs.Store(1)
	return s
}

// acquire takes a reference, unless the file is closed already.
func (s *segFile) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference, closing the file with the last one.
func (s *segFile) release() error {
	if s.refs.Add(-1) == 0 {
		return s.f.Close()
	}
	return nil
}
