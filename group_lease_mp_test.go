package runnel

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// leaseClock makes the clock leases are counted by run ahead of the real
// one by what advance adds, for the test.
func leaseClock(t *testing.T) (advance func(time.Duration)) {
	var ahead atomic.Int64
	testHookLeaseNow = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	t.Cleanup(func() { testHookLeaseNow = nil })
	return func(d time.Duration) { ahead.Add(int64(d)) }
}

// groupChecks returns a function that TryPolls c until it made n more
// membership checks (counts of the members, each followed by a try of
// every free partition while c is under its quota).
func groupChecks(t *testing.T, c *Consumer) func(n int) {
	var censuses atomic.Int64
	testHookCensus = func() { censuses.Add(1) }
	t.Cleanup(func() { testHookCensus = nil })
	return func(n int) {
		t.Helper()
		want := censuses.Load() + int64(n)
		waitFor(t, patience, fmt.Sprintf("%d membership checks", n), func() bool {
			if _, err := c.TryPoll(); err != nil {
				t.Fatal(err)
			}
			return censuses.Load() >= want
		})
	}
}

// leaseLog is a Log with topic "leased" of nparts partitions.
func leaseLog(t *testing.T, nparts int) (dir string, l *Log) {
	dir = t.TempDir()
	l = openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "leased", TopicConfig{Partitions: nparts})
	return dir, l
}

// startLeaser makes a leaseLog and a member process of group g with a
// 30-minute lease that owns every partition.
func startLeaser(t *testing.T, nparts int) (*Log, *mpMember) {
	dir, l := leaseLog(t, nparts)
	child := startMPMember(t, dir, "leased", "g", "leaser", "RUNNEL_GM_LEASE=30m")
	waitFor(t, patience, "the child to own every partition", func() bool { return len(child.ownedNow()) == nparts })
	return l, child
}

// leaseMember is a member of group g on topic "leased" with lease.
func leaseMember(t *testing.T, l *Log, name string, lease time.Duration) *Consumer {
	t.Helper()
	c, err := l.Consumer("leased", &ConsumerOptions{Group: "g", MemberName: name, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pollUntilOwns TryPolls c until it owns n partitions.
func pollUntilOwns(t *testing.T, c *Consumer, n int, what string) {
	t.Helper()
	waitFor(t, patience, what, func() bool {
		if _, err := c.TryPoll(); err != nil {
			t.Fatal(err)
		}
		return len(c.Partitions()) == n
	})
}

// checkLeases checks that DescribeGroup reports every partition of topic
// in group unowned, under a lease of want, or with want 0, owned.
func checkLeases(t *testing.T, l *Log, group, topic string, want time.Duration) {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, gt := range info.Topics {
		for _, gp := range gt.Partitions {
			if gt.Topic == topic && (gp.Owned != (want == 0) || gp.Lease != want) {
				t.Errorf("DescribeGroup: partition %d: owned %v, lease %v; want owned %v, lease %v", gp.Partition, gp.Owned, gp.Lease, want == 0, want)
			}
		}
	}
}

// TestGroupLeaseAfterDeath: a member process with a 30-minute lease owns
// every partition and is SIGKILLed. A member in this process takes none
// of them at its checks (where, without leases, its first check takes
// them all), also once the lease clock is a minute short of the lease,
// and takes them all once it has run since the member first saw them
// free.
func TestGroupLeaseAfterDeath(t *testing.T) {
	advance := leaseClock(t)
	const nparts = 4
	l, child := startLeaser(t, nparts)
	child.kill(t)

	c := leaseMember(t, l, "native", 0)
	defer c.Close()
	checks := groupChecks(t, c)
	checks(3)
	if ps := c.Partitions(); len(ps) > 0 {
		t.Fatalf("the member owns %v right after their owner, with a 30m lease, died", ps)
	}
	checkLeases(t, l, "g", "leased", 30*time.Minute)

	advance(29 * time.Minute)
	checks(3)
	if ps := c.Partitions(); len(ps) > 0 {
		t.Fatalf("the member owns %v 29 minutes into a 30-minute lease", ps)
	}

	advance(time.Minute)
	pollUntilOwns(t, c, nparts, "the member to own every partition once the lease ran")
	checkLeases(t, l, "g", "leased", 0)
}

// TestGroupLeaseCleanClose: a member process with a 30-minute lease that
// closes (leaves the group cleanly) hands its partitions over at once.
func TestGroupLeaseCleanClose(t *testing.T) {
	leaseClock(t) // never advanced: the lease cannot run out
	const nparts = 4
	l, child := startLeaser(t, nparts)

	c := leaseMember(t, l, "native", 0)
	defer c.Close()
	pollUntilOwns(t, c, nparts/2, "the partitions to be split")
	child.leave(t)
	pollUntilOwns(t, c, nparts, "the member to own every partition after the leaser closed")
}

// TestGroupLeaseAbandon: a member that leaves with Abandon leaves its
// lease on its partitions, as at its death, while one whose Log closes
// under it hands them over at once, as with Close.
func TestGroupLeaseAbandon(t *testing.T) {
	advance := leaseClock(t)
	const nparts = 2
	dir, l := leaseLog(t, nparts)
	leaser := func(l *Log) *Consumer {
		c := leaseMember(t, l, "leaser", time.Minute)
		pollUntilOwns(t, c, nparts, "the leaser to own every partition")
		return c
	}

	a := leaser(l)
	if err := a.Abandon(); err != nil {
		t.Fatal(err)
	}
	c := leaseMember(t, l, "native", 0)
	checks := groupChecks(t, c)
	checks(3)
	if ps := c.Partitions(); len(ps) > 0 {
		t.Fatalf("the member owns %v right after the leaser abandoned them", ps)
	}
	checkLeases(t, l, "g", "leased", time.Minute)
	advance(time.Minute)
	pollUntilOwns(t, c, nparts, "the member to own every partition once the lease ran")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	other := openTest(t, dir, &Options{Durability: Buffered})
	leaser(other)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	c = leaseMember(t, l, "native", 0)
	defer c.Close()
	pollUntilOwns(t, c, nparts, "the member to own every partition after the leaser's Log closed")
}

// The slotjoiner child joins group g on topic "leased" of the log in
// $RUNNEL_GM_DIR and stops for good once it holds its member slot's lock
// but has not written its member record, printing "slot <n>": a member
// caught in that instant of its join, for as long as the test needs.
func init() {
	childMains["slotjoiner"] = func() int {
		l, err := Open(os.Getenv("RUNNEL_GM_DIR"), &Options{Durability: Buffered})
		if err != nil {
			fmt.Fprintln(os.Stderr, "slotjoiner:", err)
			return 1
		}
		testHookSlotTaken = func(slot int) {
			fmt.Printf("slot %d\n", slot)
			select {}
		}
		_, err = l.Consumer("leased", &ConsumerOptions{Group: "g", MemberName: "joiner"})
		fmt.Fprintln(os.Stderr, "slotjoiner: joined:", err)
		return 1
	}
}

// TestGroupLeaseSlotReused: a member with a 30-minute lease owns every
// partition and is SIGKILLed; another process joins and takes the dead
// member's slot, the lowest free, and is caught before it writes its
// member record, so the slot is locked and its record still names the
// dead member. A member in this process must still wait the lease out.
// Before, it took the dead member for alive (its slot locked, its record
// there), so for a live owner that had let its partitions go, and took
// them at its first check.
func TestGroupLeaseSlotReused(t *testing.T) {
	leaseClock(t) // never advanced: the lease cannot run out
	const nparts = 2
	dir, l := leaseLog(t, nparts)
	child := startMPMember(t, dir, "leased", "g", "leaser", "RUNNEL_GM_LEASE=30m")
	waitFor(t, patience, "the child to own every partition", func() bool { return len(child.ownedNow()) == nparts })
	child.kill(t)

	joiner := mpChild("slotjoiner", "RUNNEL_GM_DIR="+dir)
	joiner.Stderr = os.Stderr
	_, stdout := startPiped(t, joiner)
	t.Cleanup(func() { joiner.Process.Kill(); joiner.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "slot 0\n" {
		t.Fatalf("the joiner printed %q, want the dead member's slot 0", line)
	}

	c := leaseMember(t, l, "native", 0)
	defer c.Close()
	groupChecks(t, c)(3)
	if ps := c.Partitions(); len(ps) > 0 {
		t.Fatalf("the member owns %v while their dead owner's slot is being taken by a joiner, under a 30m lease", ps)
	}
	checkLeases(t, l, "g", "leased", 30*time.Minute)
}

// TestGroupLeaseAbandonInRevoked: a member that abandons from OnRevoked
// (a Kafka server shutting down while its member waits for its client to
// let a partition go) leaves the lease on the partitions being revoked
// too, and its Poll returns ErrClosed; a Close after releases its files.
// Before, Abandon closed the files under the Poll that called OnRevoked.
func TestGroupLeaseAbandonInRevoked(t *testing.T) {
	leaseClock(t) // never advanced: the lease cannot run out
	const nparts = 2
	_, l := leaseLog(t, nparts)
	a, err := l.Consumer("leased", &ConsumerOptions{Group: "g", MemberName: "leaser", Lease: time.Minute,
		OnRevoked: func(c *Consumer, _ []int) {
			if err := c.Abandon(); err != nil {
				t.Error(err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	pollUntilOwns(t, a, nparts, "the leaser to own every partition")
	b := leaseMember(t, l, "native", 0)
	defer b.Close()
	if _, err := b.TryPoll(); err != nil { // joins: a is over its quota
		t.Fatal(err)
	}
	waitFor(t, patience, "the leaser's Poll to end closed", func() bool {
		_, err := a.TryPoll()
		return errors.Is(err, ErrClosed)
	})
	groupChecks(t, b)(3)
	if ps := b.Partitions(); len(ps) > 0 {
		t.Fatalf("the member owns %v right after the leaser abandoned them from OnRevoked", ps)
	}
	checkLeases(t, l, "g", "leased", time.Minute)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
