package runnel

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// successor is a member of group g on topic "leased" with a 30-minute
// lease that succeeds the incarnations incs.
func successor(t *testing.T, l *Log, incs ...Incarnation) *Consumer {
	t.Helper()
	return successorWith(t, l, &ConsumerOptions{Succeeds: incs})
}

// successorWith is successor with the callbacks of o, whose Succeeds it
// is.
func successorWith(t *testing.T, l *Log, o *ConsumerOptions) *Consumer {
	t.Helper()
	opts := *o
	opts.Group, opts.MemberName, opts.Lease = "g", "successor", 30*time.Minute
	c, err := l.Consumer("leased", &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (m *mpMember) incarnationNow() Incarnation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.incarnation
}

// TestGroupSucceedsAfterDeath: a member process with a 30-minute lease
// owns every partition and is SIGKILLed. A member that does not succeed
// it takes none of them (the lease clock never moves). One that names its
// incarnation in Succeeds takes all of them back at its first check,
// beyond its share (half, with the other there), and gives the extras up
// at its next check through OnRevoked, during which the other still takes
// none; the other then takes them at once, and all of them are the
// successor's once the other leaves. Before, the successor took back only
// its share, and the rest stayed free under the dead member's lease, for
// the other to take once it ran, whoever still read them for the dead
// member (a Kafka client, for a restarted server's member).
func TestGroupSucceedsAfterDeath(t *testing.T) {
	leaseClock(t) // never advanced: the lease cannot run out
	const nparts = 4
	l, child := startLeaser(t, nparts)
	inc := child.incarnationNow()
	if inc == (Incarnation{}) {
		t.Fatal("the child reported no incarnation")
	}
	child.kill(t)

	other := leaseMember(t, l, "other", 0)
	defer other.Close()
	checks := groupChecks(t, other)
	checks(3)
	if ps := other.Partitions(); len(ps) > 0 {
		t.Fatalf("a member that does not succeed the dead one owns %v under its lease", ps)
	}

	var revoked [][]int
	s := successorWith(t, l, &ConsumerOptions{Succeeds: []Incarnation{inc}, OnRevoked: func(c *Consumer, ps []int) {
		if revoked = append(revoked, ps); len(revoked) > 1 {
			return // its Close, the other gone
		}
		checks(3) // the other's, while the successor still owns ps
		if got := other.Partitions(); len(got) > 0 {
			t.Errorf("the other member owns %v while the successor gives up %v in OnRevoked", got, ps)
		}
	}})
	if _, err := s.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps := s.Partitions(); len(ps) != nparts {
		t.Fatalf("the successor owns %v after its first check; want all %d of its predecessor's, beyond its share", ps, nparts)
	}
	pollUntilOwns(t, s, nparts/2, "the successor to give up what is beyond its share")
	if want := [][]int{{2, 3}}; !slices.EqualFunc(revoked, want, slices.Equal) {
		t.Fatalf("OnRevoked calls %v, want %v", revoked, want)
	}
	pollUntilOwns(t, other, nparts/2, "the other member to take what the successor gave up, at once")
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	pollUntilOwns(t, s, nparts, "the successor to own every partition once alone")
}

// TestGroupSucceedsPrefersPredecessor: of a member process with a lease
// and one without, both SIGKILLed, the successor of the first gets back
// exactly what it held, though its share could have been made of the
// other's partitions, free at once.
func TestGroupSucceedsPrefersPredecessor(t *testing.T) {
	leaseClock(t)
	const nparts = 8
	dir, l := leaseLog(t, nparts)
	leaser := startMPMember(t, dir, "leased", "g", "leaser", "RUNNEL_GM_LEASE=30m")
	plain := startMPMember(t, dir, "leased", "g", "plain")
	waitFor(t, patience, "the children to split the partitions", func() bool {
		return len(leaser.ownedNow()) == nparts/2 && len(plain.ownedNow()) == nparts/2
	})
	held := leaser.ownedNow()
	for _, m := range []*mpMember{leaser, plain} {
		if err := m.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-m.exited
	}

	s := successor(t, l, leaser.incarnationNow())
	other := leaseMember(t, l, "other", 0) // joined, not checked: the successor's share is half
	defer other.Close()
	if _, err := s.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps := s.Partitions(); !slices.Equal(ps, held) {
		t.Fatalf("the successor owns %v; want its predecessor's %v", ps, held)
	}
}

// TestSucceedsOption: Succeeds needs Group and refuses the zero
// Incarnation; an Incarnation survives MarshalBinary, and UnmarshalBinary
// refuses what MarshalBinary does not make.
func TestSucceedsOption(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "leased", TopicConfig{Partitions: 1})
	for _, o := range []*ConsumerOptions{
		{Succeeds: []Incarnation{{slot: 1, joined: 5}}},
		{Group: "g", Succeeds: []Incarnation{{}}},
	} {
		if c, err := l.Consumer("leased", o); !errors.Is(err, ErrInvalidArgument) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Consumer(%+v): %v, want ErrInvalidArgument", o, err)
		}
	}
	c := leaseMember(t, l, "m", 0)
	defer c.Close()
	inc := c.Incarnation()
	b, _ := inc.MarshalBinary()
	var back Incarnation
	if err := back.UnmarshalBinary(b); err != nil || back != inc || inc == (Incarnation{}) {
		t.Fatalf("Incarnation %v: back from %x as %v, %v", inc, b, back, err)
	}
	for _, bad := range [][]byte{nil, b[:11], append(b, 0), {0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1}} {
		if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("UnmarshalBinary(%x): %v, want ErrInvalidArgument", bad, err)
		}
	}
	c.Close()
	if got := c.Incarnation(); got != (Incarnation{}) {
		t.Errorf("a closed member's Incarnation: %v, want the zero one", got)
	}
}

// TestGroupSucceedsRetakesMissed: a successor that cannot lock one of its
// predecessor's leased partitions at its first check — another holds the
// lock a moment, as a member does to look at a partition's lease — takes
// it at a later check, beyond its share, and gives the extras up through
// OnRevoked: with the lease clock never moving, the other member gets
// its share only from the successor, and does. Had the successor stopped
// looking at its first check, the missed partition would have stayed free
// under the dead member's lease, its reader never let go of by anyone.
func TestGroupSucceedsRetakesMissed(t *testing.T) {
	leaseClock(t)
	const nparts = 4
	l, child := startLeaser(t, nparts)
	inc := child.incarnationNow()
	child.kill(t)

	other := leaseMember(t, l, "other", 0)
	defer other.Close()
	const missed = 1
	unlock := holdPartition(t, l, "g", "leased", missed)
	s := successor(t, l, inc)
	if _, err := s.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps := s.Partitions(); len(ps) != nparts-1 || slices.Contains(ps, missed) {
		t.Fatalf("the successor owns %v after its first check; want all of its predecessor's but the locked %d", ps, missed)
	}
	unlock()
	waitFor(t, patience, "the successor and the other member to own half each", func() bool {
		for _, c := range []*Consumer{s, other} {
			if _, err := c.TryPoll(); err != nil {
				t.Fatal(err)
			}
		}
		return len(s.Partitions()) == nparts/2 && len(other.Partitions()) == nparts/2
	})
}

// holdPartition takes partition p's ownership lock in group's offsets
// file for topic, as a member about to look at p would, until the
// function it returns is called.
func holdPartition(t *testing.T, l *Log, group, topic string, p int) (unlock func()) {
	t.Helper()
	off := lockPartition(t, l, group, topic, p)
	var once sync.Once
	unlock = func() { once.Do(func() { off.close() }) }
	t.Cleanup(unlock)
	return unlock
}
