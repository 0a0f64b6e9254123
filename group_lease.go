package runnel

import (
	"fmt"
	"iter"
	"slices"
	"time"
)

// Leases
//
// A member's death frees its partitions at once: the kernel drops its
// locks. That is right for a member that read its partitions itself, but
// not for a Kafka server's member, whose partitions a Kafka client reads:
// the client outlives the server's death and fetches on from the next
// server until its next heartbeat tells it to join again. A member taking
// a partition records a lease in its owner record
// (ConsumerOptions.Lease); when the partition's lock is free and the
// record still has the lease (its owner died, or left with Abandon),
// every other member leaves the partition alone until the lease has run,
// counted from when that member first saw it so: a member cannot know
// when the owner died, and waiting from first sight waits at least as
// long, as Kafka's coordinator waits out a dead member's session.
// A member that gives a partition up on purpose (a rebalance, Close, an
// expiry of MaxPollInterval, its Log's Close) writes the record without
// the lease before it unlocks, so that its successor takes it at once.
// A member that ConsumerOptions.Succeeds the gone owner's incarnation
// (incarnation.go) takes its partitions at once, as if they were its
// own, and tries them first: a restarted Kafka server's member taking
// back what its client still reads. It takes all of them, whatever its
// quota (inherits), and gives the extras up only as any member gives up
// what is beyond its quota: after OnRevoked, which for a Kafka member
// returns once its client let go, and without the lease.
//
// The lease rides in the high 16 bits of the owner record's slot word, in
// units of leaseUnit: the record has no spare bytes, and the slot is
// below 1024. A runnel from before leases looks the word up as a slot,
// finds no member in it, and only stops naming the partition's owner in
// DescribeGroup; nothing else of it reads the record.

const (
	// MaxLease is the longest ConsumerOptions.Lease: Kafka's default
	// group.max.session.timeout.ms.
	MaxLease = 30 * time.Minute

	leaseUnit     = 100 * time.Millisecond
	ownerSlotBits = 16
	ownerSlotMask = 1<<ownerSlotBits - 1
)

// ownerSlotWord is the owner record's first word: the slot, and the lease
// in leaseUnits, rounded up (a lease is never shortened).
func ownerSlotWord(slot int, lease time.Duration) uint32 {
	units := (lease + leaseUnit - 1) / leaseUnit
	return uint32(slot) | uint32(min(units, ownerSlotMask))<<ownerSlotBits
}

// splitOwnerSlotWord undoes ownerSlotWord.
func splitOwnerSlotWord(w uint32) (slot int, lease time.Duration) {
	return int(w & ownerSlotMask), time.Duration(w>>ownerSlotBits) * leaseUnit
}

// validateLease checks ConsumerOptions.Lease.
func validateLease(d time.Duration) error {
	if d < 0 || d > MaxLease {
		return fmt.Errorf("%w: Lease %v: want 0 (none) up to %v", ErrInvalidArgument, d, MaxLease)
	}
	return nil
}

// leaseSighting is when a member first saw a partition free under rec's
// lease.
type leaseSighting struct {
	rec  ownerRecord
	seen time.Time
}

// testHookLeaseNow, if set, is the clock leases are counted by.
var testHookLeaseNow func() time.Time

func leaseNow() time.Time {
	if testHookLeaseNow != nil {
		return testHookLeaseNow()
	}
	return time.Now()
}

// leaseHolds reports whether partition p, whose lock m has just taken and
// whose owner record it read under it (rec, ok: readOwner's), is still
// held back by the lease of an owner that is gone without giving it up,
// and notes when m first saw it so. The caller holds Consumer.mu.
//
// A free partition whose record carries a lease is held back whoever the
// record names, but m itself: an owner that lets a partition go on
// purpose clears the lease first (a failed clear leaves it to be waited
// out), so a lease on a free partition is a departure without a hand-over.
// Whether the owner is alive is not asked: its slot, once free, may
// already be locked by a joiner that has not yet written its member
// record, which still names the dead owner.
func (m *member) leaseHolds(p int, rec ownerRecord, ok bool) bool {
	if !ok || rec.lease == 0 || m.isOwner(rec) || m.succeeds(rec) {
		delete(m.sightings, p)
		return false
	}
	now := leaseNow()
	s, seen := m.sightings[p]
	if !seen || s.rec != rec {
		if m.sightings == nil {
			m.sightings = map[int]leaseSighting{}
		}
		m.sightings[p] = leaseSighting{rec: rec, seen: now}
		return true
	}
	if now.Sub(s.seen) < rec.lease {
		return true
	}
	delete(m.sightings, p)
	return false
}

// waitingOut reports, taking no lock, whether p is as m last saw it: its
// owner record the one m first saw free under a lease that has not run
// yet. Only a member that locks p rewrites the record, and incarnations
// do not come back, so the answer is leaseHolds', for one read instead
// of a lock's try, a read and a look at the owner's slot, at each of the
// checks of a member waiting a lease out. A record being written reads
// as another (its checksum fails), which leaseHolds then looks at.
func (m *member) waitingOut(p int) bool {
	s, ok := m.sightings[p]
	if !ok || leaseNow().Sub(s.seen) >= s.rec.lease {
		return false
	}
	rec, ok, err := m.off.readOwner(p)
	return err == nil && ok && rec == s.rec
}

// isOwner reports whether rec names m, this incarnation of its slot.
func (m *member) isOwner(rec ownerRecord) bool {
	return rec.slot == m.slot && rec.joined == m.joined
}

// succeeds reports whether rec names one of the incarnations m succeeds
// (ConsumerOptions.Succeeds): m takes their leased partitions at once, as
// if they were its own. It takes them only by their locks, as any
// partition, so never from a live member.
func (m *member) succeeds(rec ownerRecord) bool {
	return slices.ContainsFunc(m.predecessors, func(i Incarnation) bool { return i.names(rec) })
}

// inherits reports whether rec names one of m's predecessors and still
// has its lease: the predecessor left the partition without handing it
// over, and an outside reader (its Kafka client) may still read it for
// it. m takes such a partition back whatever its quota (acquire), and
// gives what is over its quota back only through its ordinary release,
// after OnRevoked, at a later check: a Kafka member's OnRevoked waits for
// its client to let go. Given back by quota alone, the partition would be
// free under the dead predecessor's lease while the client still read
// it, and another member would take it once the lease ran.
func (m *member) inherits(rec ownerRecord) bool {
	return rec.lease != 0 && m.succeeds(rec)
}

// inheriting reports whether m still looks for partitions it inherits at
// its checks, beyond its quota. It does from its join until a look found
// none it could not lock (another member held one a moment, to look at
// its lease) or the longest lease of those it could not lock has run
// since its first look: by then every other member may take them anyway.
// The caller holds Consumer.mu.
func (m *member) inheriting() bool {
	return len(m.predecessors) > 0 && !m.inherited
}

// noteInheritLook ends inheriting once it has no more to do, after a look
// of acquire's that could not lock partitions m inherits with leases up
// to missed (0: it missed none).
func (m *member) noteInheritLook(missed time.Duration) {
	now := leaseNow()
	if m.inheritBy.IsZero() {
		m.inheritBy = now.Add(missed)
	}
	if missed == 0 || !now.Before(m.inheritBy) {
		m.inherited = true
	}
}

// inheritedLease is the lease of p's owner record if m inherits p, as a
// read without its lock finds it, else 0.
func (m *member) inheritedLease(p int) time.Duration {
	if rec, ok, err := m.off.readOwner(p); err == nil && ok && m.inherits(rec) {
		return rec.lease
	}
	return 0
}

// scanOrder is the order acquire tries the partitions in, and which of
// them m inherits (as a look without their lock saw them): round from
// start, but for a successor first the partitions it inherits, so that it
// gets back exactly what its predecessors left under their lease. Only a
// successor that still looks for them (inheriting) reads the records for
// it, and only its order allocates: acquire runs at every check of a
// member under its quota, and a successor's stays one for life. The
// caller holds Consumer.mu.
func (m *member) scanOrder(start int) iter.Seq2[int, bool] {
	return func(yield func(int, bool) bool) {
		var tried []bool // by partition: a successor's, tried first
		if m.inheriting() {
			tried = make([]bool, m.nparts)
			for i := range m.nparts {
				p := (start + i) % m.nparts
				// Unreadable: tried in turn, and acquire reports it.
				if rec, ok, err := m.off.readOwner(p); err == nil && ok && m.inherits(rec) {
					tried[p] = true
					if !yield(p, true) {
						return
					}
				}
			}
		}
		for i := range m.nparts {
			p := (start + i) % m.nparts
			if (tried == nil || !tried[p]) && !yield(p, false) {
				return
			}
		}
	}
}

// ownerRecord is the record m writes for a partition it takes: with its
// lease, which stays until it gives the partition up on purpose.
func (m *member) ownerRecord(lease time.Duration) ownerRecord {
	return ownerRecord{slot: m.slot, pid: m.pid, joined: m.joined, lease: lease}
}

// dropLease rewrites p's owner record without the lease, before m unlocks
// p on purpose, so that the next owner takes it at once.
func (m *member) dropLease(p int) error {
	if m.lease == 0 {
		return nil // its record has none
	}
	return m.off.writeOwner(p, m.ownerRecord(0))
}
