package runnel

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A Log's budget of open files (Options.MaxOpenFiles). Partitions it
// appends to take three quarters, at filesPerPartition each; the segment
// cache for readers (segcache.go) takes the rest.
//
// The partitions whose files are open form a ring that a clock hand
// sweeps (the CLOCK approximation of least recently used): every append
// marks its partition used, and when one more partition opens its files
// than the budget allows, the hand passes over the partitions marked used,
// unmarking them, and releases the first one it finds unmarked, which no
// append touched since the hand last went by. A sweep on a timer does the
// same to every partition unmarked since the last sweep: a partition left
// alone for between one and two idleRelease periods closes its files even
// when the budget has room.

// filesPerPartition is what a partition this Log appends to holds open
// (partfiles.go).
const filesPerPartition = 5

const (
	minMaxOpenFiles = 16
	// floorMaxOpenFiles is the least default budget, for a process whose
	// limit is tiny: some files must be open to do anything.
	floorMaxOpenFiles = 64
)

// idleRelease is how long a partition is left with no append, at least
// (at most twice as long), before it releases its files. A variable so
// that tests can drive the sweeps themselves.
var idleRelease = 10 * time.Second

// defaultMaxOpenFiles is half of the process's descriptor limit now.
func defaultMaxOpenFiles() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 1 << 16
	}
	return int(min(max(lim.Cur/2, floorMaxOpenFiles), 1<<20))
}

// splitBudget divides a budget of open files between appended partitions
// and the readers' segment cache.
func splitBudget(budget int) (parts, segments int) {
	segments = max(budget/4, 2)
	parts = max((budget-segments)/filesPerPartition, 1)
	return parts, segments
}

// openSlot is a partition's place in the ring.
type openSlot struct {
	used     atomic.Bool   // appended since the hand last passed
	admitted atomic.Bool   // in the ring (elem != nil), read lock-free
	elem     *list.Element // guarded by openParts.mu
}

// openParts is the ring of a Log's partitions with files open.
type openParts struct {
	mu    sync.Mutex
	limit int
	ring  *list.List // of *partition
	hand  *list.Element

	stop chan struct{} // ends the idle sweeps
	done chan struct{}
}

func newOpenParts(limit int) *openParts {
	return &openParts{limit: limit, ring: list.New()}
}

// used marks p used after an append or maintenance opened or used its
// files, admitting it to the ring (and making room) if it is not there.
// The caller holds none of p's locks.
func (o *openParts) used(p *partition) {
	if !p.open.used.Load() {
		p.open.used.Store(true)
	}
	if !p.open.admitted.Load() {
		o.admit(p)
	}
}

// admit puts p in the ring, then releases other partitions' files while
// the ring holds more than the budget. A partition that is busy (an
// append, a sync in flight) keeps its files and its place; if every one
// is, the ring stays over the budget until the next admission.
func (o *openParts) admit(p *partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.insertLocked(p)
	for tries := 2 * o.ring.Len(); o.ring.Len() > o.limit && tries > 0; tries-- {
		q := o.pickLocked(p)
		if q == nil {
			return
		}
		o.mu.Unlock()
		released := q.releaseFiles()
		o.mu.Lock()
		if !released {
			o.insertLocked(q)
		}
	}
}

// insertLocked adds p to the ring unless it is there. The caller holds
// o.mu.
func (o *openParts) insertLocked(p *partition) {
	if p.open.elem != nil || p.isClosed() {
		return
	}
	p.open.elem = o.ring.PushBack(p)
	p.open.admitted.Store(true)
}

// removeLocked takes p out of the ring. The caller holds o.mu.
func (o *openParts) removeLocked(p *partition) {
	if p.open.elem == nil {
		return
	}
	if o.hand == p.open.elem {
		o.hand = o.hand.Next()
	}
	o.ring.Remove(p.open.elem)
	p.open.elem = nil
	p.open.admitted.Store(false)
}

// pickLocked moves the hand to the first partition other than except not
// used since the hand last passed, takes it out of the ring and returns
// it; nil if there is none (only except). The caller holds o.mu.
func (o *openParts) pickLocked(except *partition) *partition {
	for range 2*o.ring.Len() + 1 {
		e := o.hand
		if e == nil {
			e = o.ring.Front()
			if e == nil {
				return nil
			}
		}
		o.hand = e.Next()
		q := e.Value.(*partition)
		if q == except || q.open.used.Swap(false) {
			continue
		}
		o.removeLocked(q)
		return q
	}
	return nil
}

// forget takes a closing partition out of the ring.
func (o *openParts) forget(p *partition) {
	o.mu.Lock()
	o.removeLocked(p)
	o.mu.Unlock()
}

// sweep releases the files of every partition not used since the last
// sweep, and unmarks the others.
func (o *openParts) sweep() {
	o.mu.Lock()
	var idle []*partition
	for e := o.ring.Front(); e != nil; {
		next := e.Next()
		q := e.Value.(*partition)
		if !q.open.used.Swap(false) {
			o.removeLocked(q)
			idle = append(idle, q)
		}
		e = next
	}
	o.mu.Unlock()
	for _, q := range idle {
		if !q.releaseFiles() {
			o.mu.Lock()
			o.insertLocked(q)
			o.mu.Unlock()
		}
	}
}

// startSweeps runs sweep, and then also, every idleRelease until
// stopSweeps.
func (o *openParts) startSweeps(every time.Duration, also func()) {
	o.stop, o.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(o.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-t.C:
				o.sweep()
				also()
			}
		}
	}()
}

func (o *openParts) stopSweeps() {
	if o.stop != nil {
		close(o.stop)
		<-o.done
	}
}

// openCount returns how many partitions are in the ring.
func (o *openParts) openCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ring.Len()
}
