package runnel

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// The writer lock between appends (DESIGN §3 step 1). Taking and releasing
// an fcntl lock for every append costs two system calls, and a Log that
// appended last still has to read the next header to learn that nobody else
// did. So a Log that appended keeps the lock across back-to-back appends,
// as long as no other holder wants it:
//
//   - Anyone who finds the lock taken counts itself in the waiters word of
//     partition.meta (a presence count, presence.go) and wakes the word's
//     sleepers before blocking for the lock.
//   - After each append the holder keeps the lock only if that count is
//     zero and it has not met contention lately; a goroutine (watchHold)
//     then sleeps on the word and lets the lock go as soon as it moves, or
//     once the partition has been idle for holdIdle. Whoever else lets a
//     kept lock go (a release of the partition's files, close) stops the
//     watcher, which then ends without waiting for anything (p.wmu among
//     them: a writer may hold it while it waits for another process).
//   - The lock is an open-file-description lock, which the kernel drops
//     when its holder dies, so a dead process never keeps it.
//
// While the lock stayed held since this Log's last append, the tail it
// knows is exact: the append skips the tail check.

// Variables so that tests can stretch them.
var (
	// holdIdle is how long, at least, a Log keeps the writer lock after
	// its last append with nobody else waiting (at most twice as long).
	holdIdle = 2 * time.Millisecond
	// contendedHold is how long after meeting contention a Log releases
	// the lock after every append instead of keeping it: when processes
	// take turns, handing the lock over through the waiters word would
	// cost each append two cross-process wake-ups.
	contendedHold = 20 * time.Millisecond
)

// lockWriter takes the partition's writer lock for an append or for
// maintenance, unless this Log holds it already, opening the lock file and
// the shared mapping on first use (and after releaseFiles). It gives up
// when ctx ends. The caller holds p.wmu.
func (p *partition) lockWriter(ctx context.Context) error {
	_, err := p.takeWriter(ctx, true)
	return err
}

// tryLockWriter is lockWriter for a caller that must not wait (a sender
// leading its own frame): got is false when another holder has the lock.
func (p *partition) tryLockWriter() (got bool, err error) {
	return p.takeWriter(context.Background(), false)
}

// takeWriter is lockWriter and tryLockWriter: wait says whether to wait
// for a lock that is taken.
func (p *partition) takeWriter(ctx context.Context, wait bool) (got bool, err error) {
	if p.held {
		return true, nil
	}
	if err := p.openMetaFiles(); err != nil {
		return false, err
	}
	got, err = p.meta.TryLock(writerLockByte)
	if err != nil {
		return false, err
	}
	if !got {
		if !wait {
			return false, nil
		}
		// Taken: wait (partition.go), unless a bounded close gave up.
		if err := p.waitWriterLock(ctx); err != nil {
			return false, err
		}
		p.contended = time.Now()
	}
	p.held, p.exact = true, false
	p.zerosLeft, p.zerosOK = p.shm.takeZeros()
	p.log.stats.writerLocks.Add(1)
	return true, nil
}

// lockAnnounced takes the writer lock through lf. When it is taken, it
// counts itself among the waiters (so that a holder keeping the lock lets
// it go) and, if the holder keeps it, wakes the holder's watcher before it
// blocks. slot, if not nil, is the caller's waiter slot: claimed through
// lf on first contention and kept (lf's locks are then what this process's
// healing, through another lock file, sees as live); nil claims one for
// this call. waited says the lock was not free.
func lockAnnounced(ctx context.Context, lf *lockFile, m *metaMap, slot *presenceSlot) (waited bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if got, err := lf.TryLock(writerLockByte); err != nil || got {
		return false, err
	}
	switch {
	case slot == nil:
		s := m.waiting.claim(lf)
		defer m.waiting.release(s)
		slot = &s
	case slot.lf == nil:
		*slot = m.waiting.claim(lf)
	}
	m.waiting.enter(*slot)
	// A holder that releases after each append needs no wake-up. One
	// that keeps the lock sets the kept word before its watcher looks at
	// the count, so either this sees it set, or the watcher sees the
	// count raised and does not sleep (sequentially consistent atomics).
	if m.kept().Load() != 0 {
		wakeAll(m.waiting.count())
	}
	err = lf.Lock(ctx, writerLockByte)
	m.waiting.leave(*slot)
	return true, err
}

// unlockWriter releases the writer lock now. The caller holds p.wmu.
// handOver says another writer is about to take it (or may soon): then
// the zeros this Log extended the segment by stay, for the next holder to
// write into (leaveZeros); otherwise they are cut back to the tail, so that
// a partition nobody writes to ends where its data does.
func (p *partition) unlockWriter(handOver bool) {
	if !p.held || p.poisoned.Load() {
		// A poisoned partition keeps the lock until the kernel is done
		// with the writes it may still do (ring_linux.go).
		return
	}
	if p.exact {
		p.shm.kept().Store(0)
	}
	if handOver && p.broken == nil {
		p.leaveZeros()
	} else {
		p.trimExtension()
	}
	p.meta.Unlock(writerLockByte)
	p.held, p.exact = false, false
}

// afterAppend keeps the writer lock for the next append, or releases it.
// ok says the append succeeded. The caller holds p.wmu. (It reads the
// clock only after contention: where the clock is a system call, as on
// some virtual machines, an append would pay for it.)
func (p *partition) afterAppend(ok bool) {
	if !ok || p.broken != nil {
		p.unlockWriter(false)
		return
	}
	if p.shm.waiting.count().Load() != 0 {
		// Someone waits, or a waiter died counted: heal the count so
		// that a dead waiter does not stop this from holding on for good.
		p.shm.waiting.heal(p.shm.lf)
		if p.shm.waiting.count().Load() != 0 {
			p.contended = time.Now()
		}
	}
	if !p.contended.IsZero() {
		if time.Since(p.contended) < contendedHold {
			p.unlockWriter(true)
			return
		}
		p.contended = time.Time{}
	}
	if !p.exact {
		p.shm.kept().Store(1)
	}
	p.exact = true
	p.appends.Add(1)
	if p.watch == nil {
		w := &holdWatch{done: make(chan struct{})}
		w.reading.Store(true)
		p.watch = w
		go p.watchHold(p.shm, w)
	}
}

// holdWatch is one run of watchHold, the watcher of a kept writer lock.
type holdWatch struct {
	// stop is set to 1, and woken, by whoever lets the kept lock go and
	// ends the watch (stopHoldLocked). The watcher sleeps on it: a word
	// of its own, which no earlier or later watch's stop touches, so it
	// sees a stop that came before it first ran.
	stop atomic.Uint32
	// reading says the watcher may be reading the shared mapping outside
	// p.wmu (the waiters word it sleeps on): set under p.wmu, cleared by
	// the watcher before it takes p.wmu.
	reading atomic.Bool
	// done is closed when the watcher will read the mapping no more.
	done chan struct{}
}

// testHookWatchHold, if set, runs as a watcher starts.
var testHookWatchHold func()

// testHookWatcherWoke, if set, runs as a watcher wakes from its sleep,
// before it says it is done with the mapping (and takes p.wmu).
var testHookWatcherWoke func(p *partition)

// watchHold runs while the Log keeps the writer lock between appends: it
// releases the lock as soon as another holder counts itself as waiting,
// or once no append came for holdIdle; or it ends when stopped
// (stopHoldLocked), which lets the lock go itself.
//
// Once it knows it is stopped, a watcher touches nothing of the
// partition's but p.wmu, to let it go: it may be stopped while it waits
// for p.wmu, and by the time it has it, the stopper may have closed the
// partition's files and a new append started another watch.
func (p *partition) watchHold(m *metaMap, w *holdWatch) {
	defer close(w.done)
	if testHookWatchHold != nil {
		testHookWatchHold()
	}
	words := []*atomic.Uint32{m.waiting.count()}
	expect := []uint32{0}
	seen := p.appends.Load()
	for {
		if m.waiting.count().Load() == 0 {
			waitWords(words, expect, &w.stop, 0, holdIdle)
		}
		if testHookWatcherWoke != nil {
			testHookWatcherWoke(p)
		}
		// Done with the mapping until it holds p.wmu. Stopped, it ends
		// here, without p.wmu: a writer may hold that while it waits,
		// as long as another process likes, for the lock the stopper let
		// go, and the stopper waits for this (stopHoldLocked).
		w.reading.Store(false)
		if w.stop.Load() != 0 {
			return
		}
		p.wmu.Lock()
		if w.stop.Load() != 0 {
			p.wmu.Unlock()
			return
		}
		if !p.held {
			p.watch = nil
			p.wmu.Unlock()
			return
		}
		n := p.appends.Load()
		wanted := m.waiting.count().Load() != 0
		if wanted || n == seen {
			if wanted {
				p.contended = time.Now()
			}
			p.unlockWriter(wanted)
			p.watch = nil
			p.wmu.Unlock()
			return
		}
		seen = n
		w.reading.Store(true)
		p.wmu.Unlock()
	}
}

// stopHoldLocked lets a kept writer lock go and stops its watcher, so
// that the shared mapping the watcher sleeps on can be unmapped once it
// is done with it: stopHoldLocked returns a channel closed then, or nil
// if it is done already (it waits for p.wmu, and ends when it has it).
// Waiting on the channel waits for nothing but the watcher's goroutine,
// woken here: a stopped watcher never takes p.wmu to end. The caller
// holds p.wmu.
func (p *partition) stopHoldLocked() <-chan struct{} {
	p.unlockWriter(false)
	w := p.watch
	if w == nil {
		return nil
	}
	p.watch = nil
	// Stop, then look at reading; the watcher clears reading, then looks
	// at stop (sequentially consistent atomics): if this sees it still
	// reading, it sees the stop once it is done, and ends there.
	w.stop.Store(1)
	wakePrivate(&w.stop)
	if !w.reading.Load() {
		return nil
	}
	return w.done
}

// stopHold is stopHoldLocked for a caller that does not hold p.wmu: it
// waits for p.wmu (close's is bounded by giveUp: the writers that hold
// it waiting for another process's lock end then), and for the watcher.
func (p *partition) stopHold() {
	p.wmu.Lock()
	done := p.stopHoldLocked()
	p.wmu.Unlock()
	if done != nil {
		<-done
	}
}

// poison makes the partition refuse appends after an append failed with
// writes possibly still running in the kernel, and keeps the writer lock
// until they are done: released earlier, the next writer (in any process)
// could append where a late write of this one still lands. The caller
// holds p.wmu and the writer lock.
func (p *partition) poison(err error, drained <-chan struct{}) {
	p.broken = fmt.Errorf("%w; the partition refuses appends until reopened", err)
	p.poisoned.Store(true)
	p.exact = false
	meta := p.meta
	go func() {
		<-drained
		p.wmu.Lock()
		defer p.wmu.Unlock()
		p.poisoned.Store(false)
		if p.metaOrphan {
			meta.Close() // the partition closed meanwhile
			return
		}
		p.unlockWriter(false)
	}()
}
