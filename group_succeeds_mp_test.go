package runnel

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// successor is a member of group g on topic "leased" with a 30-minute
// lease that succeeds the incarnations incs.
func successor(t *testing.T, l *Log, incs ...Incarnation) *Consumer {
	t.Helper()
	c, err := l.Consumer("leased", &ConsumerOptions{Group: "g", MemberName: "successor", Lease: 30 * time.Minute, Succeeds: incs})
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
// it takes none of them (the lease clock never moves); one that names its
// incarnation in Succeeds takes its share of them at its first check,
// while the other still waits the lease out for the rest, and all of them
// once the other leaves. Before Succeeds, the successor waited like any
// member.
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

	s := successor(t, l, inc)
	if _, err := s.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps := s.Partitions(); len(ps) != nparts/2 {
		t.Fatalf("the successor owns %v after its first check; want its share, %d of its predecessor's", ps, nparts/2)
	}
	checks(3)
	if ps := other.Partitions(); len(ps) > 0 {
		t.Fatalf("a member that does not succeed the dead one owns %v under its lease, beside the successor", ps)
	}
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
