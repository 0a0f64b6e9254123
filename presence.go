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
// kernel drops when the holder dies. The holder marks its slot before it
// raises the count and clears it after lowering the count. A marked slot
// whose lock nobody holds was left by a dead holder: heal, which takes the
// slot's lock before it touches the slot (so that no live holder can claim
// it meanwhile), clears it and lowers the count for it.
//
// A holder that finds every slot taken still counts itself, without a slot;
// only such slot-less holders can leak, and only if killed at that moment.

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

// enter counts the holder of s in.
func (p *presence) enter(s presenceSlot) {
	if s.i >= 0 {
		p.m.u32(p.slotOff(s.i)).Store(1)
	}
	p.count().Add(1)
}

// leave counts the holder of s out.
func (p *presence) leave(s presenceSlot) {
	p.count().Add(^uint32(0))
	if s.i >= 0 {
		p.m.u32(p.slotOff(s.i)).Store(0)
	}
}

// clearDead clears slot i, whose lock the caller holds, if a dead holder
// left it marked, and takes that holder out of the count.
func (p *presence) clearDead(i int) {
	if p.m.u32(p.slotOff(i)).CompareAndSwap(1, 0) {
		p.count().Add(^uint32(0))
	}
}

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
