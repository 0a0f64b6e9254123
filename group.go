package runnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Consumer groups
//
// A group spreads a topic's partitions over its members, in any number of
// processes, with no coordinator and no heartbeats: the kernel's own
// bookkeeping of byte-range locks on the group's offsets file (offsets.go)
// is the whole protocol.
//
//   - A member holds one member-slot lock while it lives. Counting the
//     slots that other holders lock (F_OFD_GETLK: HeldByOther) counts the
//     live members; the member's rank is the number of live slots below
//     its own.
//   - A member owns partition p while it holds p's ownership lock. Only the
//     owner writes p's commit slots, so a commit needs no further check
//     than "do I hold the lock", which is the member's own state.
//   - With P partitions and M live members, a member of rank r should own
//     P/M partitions, plus one if r < P%M: the quotas add up to exactly P,
//     so when every member has its quota every partition is owned, each
//     by one member, and the spread is ⌊P/M⌋ or ⌈P/M⌉.
//   - A member over its quota releases partitions (after committing where
//     it stopped, or after OnRevoked); one under it takes free ones with a
//     non-blocking lock.
//   - Joins, leaves and releases bump a word in the file's shared control
//     page and wake the members asleep on it (futex), so the others react
//     at once. A member that dies bumps nothing, but the kernel drops its
//     locks; the next count of the members (every
//     ConsumerOptions.GroupCheckInterval, inside Poll, by one member for
//     all that have their quota: sharedCount) finds its slot free and
//     bumps the word.
//
// Members act only inside Poll and TryPoll (and Close), on the polling
// goroutine, as Kafka's consumers do: a member that does not poll takes no
// partitions, releases none and commits nothing automatically. The one
// exception is MaxPollInterval's timer (consumer_maxpoll.go), which makes
// a member that has not polled for that long quit, as if it had died.

// OutOfRange says what a group member does when the offset a partition
// would start at — its committed offset, or ConsumerOptions.Start for a
// partition with no commit — is not stored: retention removed it, or it
// lies past the end (the topic was created again).
type OutOfRange int

const (
	// OutOfRangeFail makes Poll return an error wrapping ErrOutOfRange
	// until the application moves the partition with Seek. The default:
	// nothing is skipped silently.
	OutOfRangeFail OutOfRange = iota
	// OutOfRangeEarliest moves to the oldest record still stored.
	OutOfRangeEarliest
	// OutOfRangeLatest moves past the newest record.
	OutOfRangeLatest
)

// member is one Consumer's membership in a group: its offsets file handle
// (its own lock holder), its slot and the partitions it owns.
type member struct {
	off    *offsetsFile
	group  string
	topic  string
	nparts int
	slot   int
	pid    int
	joined int64
	left   bool // quit: holds no slot and no partition

	owned   []bool        // by partition
	commits []commitState // by partition: the latest commit, valid while owned
	count   int           // partitions owned

	lease        time.Duration         // written with each partition taken (ConsumerOptions.Lease)
	predecessors []Incarnation         // whose leased partitions it takes at once (ConsumerOptions.Succeeds)
	sightings    map[int]leaseSighting // partitions seen free under a gone owner's lease
	inheritBy    time.Time             // when it stops looking for what it inherits (set at its first look: inheriting)
	inherited    bool                  // it no longer looks for what it inherits beyond its quota
}

// joinGroup opens (creating if needed) the group's offsets file for topic
// t and takes the lowest free member slot. A file that DeleteGroup is
// removing is left for the path's next one.
func joinGroup(ctx context.Context, l *Log, t *topic, group, name string) (*member, error) {
	for {
		m, err := joinGroupFile(ctx, l, t, group, name)
		if !errors.Is(err, errGroupFileDeleted) {
			return m, err
		}
	}
}

// testHookNoSlot, if set, runs when a joiner found no member slot free
// and is about to wait for the admin lock.
var testHookNoSlot func()

// testHookSlotTaken, if set, runs when a joiner holds its member slot's
// lock and has not yet written its member record: the slot's record is
// still its previous holder's.
var testHookSlotTaken func(slot int)

// errGroupFileDeleted says an offsets file was opened just as DeleteGroup
// removed it (or may have): open the path again.
var errGroupFileDeleted = errors.New("offsets file deleted")

func joinGroupFile(ctx context.Context, l *Log, t *topic, group, name string) (*member, error) {
	off, err := l.openGroupOffsets(ctx, t, group)
	if err != nil {
		return nil, err
	}
	m := &member{
		off: off, group: group, topic: t.name, nparts: off.nparts,
		slot: -1, pid: os.Getpid(),
		owned:   make([]bool, off.nparts),
		commits: make([]commitState, off.nparts),
	}
	if m.slot, m.joined, err = m.enter(ctx, name); err != nil {
		off.close()
		return nil, err
	}
	return m, nil
}

// enter takes the lowest free member slot of m's file and records a
// member named name in it, joining the group: for a new member, and for
// one that left for not polling (MaxPollInterval) and joins again. It
// returns the slot and the join time, for the caller to make m's; on an
// error it holds no slot.
func (m *member) enter(ctx context.Context, name string) (slot int, joined int64, err error) {
	off, group := m.off, m.group
	if slot, err = off.takeSlot(); err != nil {
		return -1, 0, fmt.Errorf("runnel: join group %s: %w", group, err)
	}
	if slot < 0 {
		// Every slot taken: by members, or for a moment by an admin call
		// (DeleteGroup, DeleteGroupOffsets) holding them all. Wait for
		// any admin call to end, and look again while none can start.
		if testHookNoSlot != nil {
			testHookNoSlot()
		}
		if err := off.lf.Lock(ctx, adminLockOff); err != nil {
			return -1, 0, fmt.Errorf("runnel: join group %s: %w", group, err)
		}
		slot, err = off.takeSlot()
		off.lf.Unlock(adminLockOff)
		if err != nil {
			return -1, 0, fmt.Errorf("runnel: join group %s: %w", group, err)
		}
	}
	fail := func(err error) (int, int64, error) {
		if slot >= 0 {
			off.lf.Unlock(memberLock(slot))
		}
		return -1, 0, err
	}
	// DeleteGroup sets the flag while it holds every free slot: a slot
	// taken after that is in a file on its way out, unless that
	// DeleteGroup died before it removed the file. Its admin lock, held
	// until the file is gone, tells which.
	if off.deleted() {
		if err := off.lf.Lock(ctx, adminLockOff); err != nil {
			return fail(fmt.Errorf("runnel: join group %s: %w", group, err))
		}
		gone, err := off.gone()
		off.lf.Unlock(adminLockOff)
		if err != nil || gone {
			return fail(cmp.Or(err, errGroupFileDeleted))
		}
	}
	if slot < 0 {
		return fail(fmt.Errorf("%w: group %s already has %d members for topic %s", ErrInvalidArgument, group, maxMembers, m.topic))
	}
	if testHookSlotTaken != nil {
		testHookSlotTaken(slot)
	}
	joined = time.Now().UnixNano()
	if err := off.writeMember(slot, memberRecord{pid: m.pid, joined: joined, name: name}); err != nil {
		return fail(err)
	}
	off.raiseHWM(slot + 1)
	off.bump(off.gen())
	return slot, joined, nil
}

// takeSlot takes the first free member slot, if any (else -1).
func (o *offsetsFile) takeSlot() (int, error) {
	for s := range maxMembers {
		ok, err := o.lf.TryLock(memberLock(s))
		if err != nil {
			return -1, err
		}
		if ok {
			return s, nil
		}
	}
	return -1, nil
}

// defaultMemberName is "<host>/<pid>".
func defaultMemberName() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// testHookCensus, if set, runs as a member counts the members.
var testHookCensus func()

// census counts the live members (this one included) and this member's
// rank among them, by probing every slot that was ever used.
func (m *member) census() (live, rank int, err error) {
	if testHookCensus != nil {
		testHookCensus()
	}
	live = 1
	hwm := m.off.hwm()
	for s := range hwm {
		if s == m.slot {
			continue
		}
		held, err := m.off.lf.HeldByOther(memberLock(s))
		if err != nil {
			return 0, 0, fmt.Errorf("runnel: group %s: %w", m.group, err)
		}
		if held {
			live++
			if s < m.slot {
				rank++
			}
		}
	}
	return live, rank, nil
}

// claimSharedCount reports whether the caller is to count the members
// for the group now, in a check for members that died (see
// sharedCount): true unless another member began one less than every
// ago. A time ahead of now (a clock set back) is taken as old.
func (o *offsetsFile) claimSharedCount(now time.Time, every time.Duration) bool {
	w := o.ctlWord64(ctlCountAt)
	last, t := w.Load(), uint64(now.UnixNano())
	if last <= t && t-last < uint64(every) {
		return false
	}
	return w.CompareAndSwap(last, t)
}

// sharedCount notes a count of the members made for the group (live at
// generation gen), and wakes every member for a count of its own if the
// last one noted differs. Every change of membership but a death bumps
// the generation, and all the members count again at a bump, so they
// need to count between bumps only to find a death: one member counting
// for all of them every GroupCheckInterval finds it (O(members) probes
// an interval, not O(members²)). With the generation unchanged, the
// members only ever get fewer (a death), so a count equal to the last
// one noted at the same generation means no one died; the generation
// noted after a bump is the bumped one, so the next count does not bump
// again.
func (o *offsetsFile) sharedCount(gen uint32, live int) {
	w := o.ctlWord64(ctlCountOff)
	if seen := uint64(gen)<<32 | uint64(live); w.Swap(seen) != seen {
		o.bump(o.gen())
		w.CompareAndSwap(seen, uint64(o.gen().Load())<<32|uint64(live))
	}
}

// quota is how many partitions the member of rank r among live members
// should own: the first P%M ranks take one more than P/M.
func quota(nparts, live, rank int) int {
	q := nparts / live
	if rank < nparts%live {
		q++
	}
	return q
}

// acquire takes up to want free partitions, scanning from partition
// start, and returns them. A successor first takes back the partitions it
// inherits (scanOrder), beyond want if it must (inherits says why): it
// is then over its quota, and rebalance gives the extras back at its next
// check. Each one's latest commit is read under its lock, so it is
// exactly where the previous owner stopped. A partition still under a
// gone owner's lease is left alone (group_lease.go): the member stays
// under its quota, and looks again at its next check.
func (m *member) acquire(want, start int) ([]int, error) {
	var got []int
	var missed time.Duration // the longest lease of an inherited partition another held locked
	for p, inherited := range m.scanOrder(start) {
		if want <= 0 && !inherited {
			break // the inherited come first
		}
		if m.owned[p] || m.waitingOut(p) {
			continue
		}
		ok, err := m.off.lf.TryLock(partLock(p))
		if err != nil {
			return got, fmt.Errorf("runnel: group %s: %w", m.group, err)
		}
		if !ok {
			if inherited {
				missed = max(missed, m.inheritedLease(p))
			}
			continue
		}
		rec, recOK, err := m.off.readOwner(p)
		if err != nil {
			m.off.lf.Unlock(partLock(p))
			return got, err
		}
		// Beyond want, only a partition still inherited under its lock:
		// another may have taken it and given it up since the look.
		if want <= 0 && !(recOK && m.inherits(rec)) || m.leaseHolds(p, rec, recOK) {
			m.off.lf.Unlock(partLock(p))
			continue
		}
		st, err := m.off.readCommit(p)
		if err != nil {
			m.off.lf.Unlock(partLock(p))
			return got, err
		}
		m.owned[p], m.commits[p] = true, st
		m.count++
		got = append(got, p)
		want--
		// Who owns it is advisory, for DescribeGroup (the lock is the
		// ownership); the lease is for the members after this one.
		if err := m.off.writeOwner(p, m.ownerRecord(m.lease)); err != nil {
			return got, err
		}
	}
	if m.inheriting() {
		m.noteInheritLook(missed)
	}
	return got, nil
}

// release gives partition p up. The caller has committed what it wanted
// to, and bumps the group's word once it has released a batch. Unless
// keepLease, p's lease goes first: the next owner takes p at once.
func (m *member) release(p int, keepLease bool) error {
	if !m.owned[p] {
		return nil
	}
	m.owned[p] = false
	m.count--
	var err error
	if !keepLease {
		err = m.dropLease(p) // failed: the next owner waits out the lease
	}
	if uerr := m.off.lf.Unlock(partLock(p)); uerr != nil {
		err = errors.Join(err, fmt.Errorf("runnel: group %s: %w", m.group, uerr))
	}
	return err
}

// ownedList returns the owned partitions in increasing order.
func (m *member) ownedList() []int {
	var ps []int
	for p, ok := range m.owned {
		if ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// leave quits and closes the file.
func (m *member) leave() error {
	return errors.Join(m.quit(false), m.off.close())
}

// quit gives up the member slot, releases everything and tells the
// others, once: a member that expired (MaxPollInterval) quit already.
// The file stays open: a poll under way may still use its words. With
// keepLease the partitions keep their lease, as at the member's death.
func (m *member) quit(keepLease bool) error {
	if m.left {
		return nil
	}
	m.left = true
	// The slot first: a member woken by the bump must count one fewer
	// member, or it would not take the partitions released here.
	errs := []error{m.off.lf.Unlock(memberLock(m.slot))}
	for p, ok := range m.owned {
		if ok {
			errs = append(errs, m.release(p, keepLease))
		}
	}
	m.off.bump(m.off.gen())
	return errors.Join(errs...)
}

// notOwned is the error for a commit to a partition this member does not
// own.
func (m *member) notOwned(p int) error {
	return fmt.Errorf("%w: partition %d of topic %s in group %s", ErrNotOwner, p, m.topic, m.group)
}

// grow makes the member's share count n partitions, more than it knew:
// the topic grew, and the offsets file covers them (followGroupGrowth).
// The caller holds Consumer.mu.
func (m *member) grow(n int) {
	m.owned = append(m.owned, make([]bool, n-m.nparts)...)
	m.commits = append(m.commits, make([]commitState, n-m.nparts)...)
	m.nparts, m.off.nparts = n, n
}
