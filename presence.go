package runnel

import "sync/atomic"

// A presence count is a word in partition.meta that says how many holders,
// in any process, are doing something others must react to: readers asleep
// on the append sequence (a writer then issues FUTEX_WAKE), processes
// waiting for the writer lock (its holder then lets it go). A count that a
// holder raises and lowers itself would stay raised for good when the
// holder is killed in between, and every later append would pay for a
// reader or waiter that no longer exists.
//
// So each holder first claims a slot: a word of its own in partition.meta,
// claimed by taking a byte-range lock on that word's first byte, which the
// kernel drops when the holder dies. The holder raises the count before it
// marks its slot, and clears its slot before it lowers the count, so that
// a marked slot always stands for a share of the count. A marked slot
// whose lock nobody holds was left by a dead holder: heal, which takes the
// slot's lock before it touches the slot (so that no live holder can claim
// it meanwhile), clears it and lowers the count for it.
//
// The order matters because a holder can die between its two stores. In
// this order it leaves the count one too high (an unmarked share nobody
// can heal): appends then pay for a wake-up that wakes nobody, or a writer
// lets the lock go after each append, but nobody is ever missed. In the
// other order it would leave a marked slot without a share, and healing it
// would take a live holder's share, or wrap the count to 2^32-1 and let the
// next live holder bring it to zero while it sleeps: a reader that sleeps
// through every append, a kept lock that ignores its waiters. For the same
// reason the count is lowered only while it is above zero.
//
// A holder that finds every slot taken still counts itself, without a
// slot; such a holder, too, can only leak an over-count.

// presence is one presence count and its slots in a partition.meta mapping.
type presence struct {
	m        *metaMap
	countOff int
	slotsOff int
	slots    int

	heals atomic.Uint32 // calls of heal, to bound its cost
}

// presenceSlot is a claimed slot: its index, or -1 for a slot-less holder,
// and the lock file that holds its lock (nil: not claimed yet).
type presenceSlot struct {
	i  int
	lf *lockFile
}

// healEvery bounds how often one process scans a count's slots for dead
// holders: once per this many calls of heal. A scan costs a byte-range
// lock call per marked slot.
const healEvery = 64

func (p *presence) count() *atomic.Uint32 { return p.m.u32(p.countOff) }

func (p *presence) slotOff(i int) int { return p.slotsOff + 4*i }

// claim takes a free slot for a holder that locks through lf. A slot
// marked by a dead holder is healed on the way. The slot is the holder's
// until release (or its death).
func (p *presence) claim(lf *lockFile) presenceSlot {
	for i := range p.slots {
		off := p.slotOff(i)
		got, err := lf.TryLock(int64(off))
		if err != nil {
			break
		}
		if !got {
			continue
		}
		p.clearDead(i)
		return presenceSlot{i: i, lf: lf}
	}
	return presenceSlot{i: -1, lf: lf}
}

// release gives a claimed slot back. The holder must not be counted.
func (p *presence) release(s presenceSlot) {
	if s.i >= 0 {
		s.lf.Unlock(int64(p.slotOff(s.i)))
	}
}

// enter counts the holder of s in: the count first, then the slot.
func (p *presence) enter(s presenceSlot) {
	p.count().Add(1)
	if h := testHookPresence; h != nil {
		h(p.countOff, s)
	}
	if s.i >= 0 {
		p.m.u32(p.slotOff(s.i)).Store(1)
	}
}

// leave counts the holder of s out: the slot first, then the count.
func (p *presence) leave(s presenceSlot) {
	if s.i >= 0 {
		p.m.u32(p.slotOff(s.i)).Store(0)
	}
	p.lower()
}

// clearDead clears slot i, whose lock the caller holds, if a dead holder
// left it marked, and takes that holder out of the count.
func (p *presence) clearDead(i int) {
	if p.m.u32(p.slotOff(i)).CompareAndSwap(1, 0) {
		p.lower()
	}
}

// lower takes one from the count, unless it is zero: a count that some
// other process under-counted (a holder of an older runnel killed between
// its stores, say) must not wrap around.
func (p *presence) lower() {
	c := p.count()
	for {
		n := c.Load()
		if n == 0 || c.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// testHookPresence, when a test sets it, runs between a holder's two
// stores in enter, with the count's offset in partition.meta and the
// holder's slot: a child process stops there to be killed.
var testHookPresence func(countOff int, s presenceSlot)

// heal takes holders that died while counted out of the count: at once
// on the first call, then on every healEvery-th. Callers call it when the
// count looks wrong: non-zero while nobody seems to be there. lf must be a
// lock file no live holder of this count uses.
func (p *presence) heal(lf *lockFile) {
	if p.heals.Add(1)%healEvery == 1 {
		p.healNow(lf)
	}
}

// healNow is heal without the rate limit.
func (p *presence) healNow(lf *lockFile) {
	for i := range p.slots {
		off := p.slotOff(i)
		if p.m.u32(off).Load() == 0 {
			continue
		}
		got, err := lf.TryLock(int64(off))
		if err != nil || !got {
			continue // a live holder, or no way to tell
		}
		p.clearDead(i)
		lf.Unlock(int64(off))
	}
}
