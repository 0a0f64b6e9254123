package runnel

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ConsumerOptions.MaxPollInterval: a group member that stops polling
// leaves its group, as Kafka's max.poll.interval.ms makes a consumer do.
// No test here measures how soon: each waits for what the expiry makes
// happen (another member owning the partitions, the member gone from
// DescribeGroup), and one member's expiry is the clock another's
// staying is judged by.

// describedTopic is DescribeGroup's account of group's only topic.
func describedTopic(t *testing.T, l *Log, group string) GroupTopic {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	return info.Topics[0]
}

// groupCommitted returns the group's committed offset of each partition.
func groupCommitted(t *testing.T, l *Log, group string) []int64 {
	t.Helper()
	var offs []int64
	for _, gp := range describedTopic(t, l, group).Partitions {
		offs = append(offs, gp.Committed)
	}
	return offs
}

// groupMembers returns the names of the group's live members.
func groupMembers(t *testing.T, l *Log, group string) []string {
	t.Helper()
	var names []string
	for _, m := range describedTopic(t, l, group).Members {
		names = append(names, m.Name)
	}
	return names
}

// pollSome polls c until it returns records, failing after patience.
func pollSome(t *testing.T, c *Consumer) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if len(recs) > 0 {
			return recs
		}
	}
}

// checkExpired checks that each commit call of c fails with
// ErrMemberExpired (and ErrNotOwner) and that c lists no partitions.
func checkExpired(t *testing.T, c *Consumer, p int) {
	t.Helper()
	ctx := context.Background()
	for name, err := range map[string]error{
		"Commit":        c.Commit(ctx),
		"CommitMarked":  c.CommitMarked(ctx),
		"CommitOffsets": c.CommitOffsets(ctx, map[int]int64{p: 1}),
	} {
		if !errors.Is(err, ErrMemberExpired) || !errors.Is(err, ErrNotOwner) {
			t.Errorf("%s of an expired member: %v, want ErrMemberExpired and ErrNotOwner", name, err)
		}
	}
	if ps := c.Partitions(); len(ps) != 0 {
		t.Errorf("an expired member lists partitions %v", ps)
	}
}

// A member that stops polling loses its partitions to a member in
// another process; its commits then fail and change nothing, the records
// it was handed and did not commit go to the other member, and its next
// Poll joins again and reads on from the group's committed offsets.
func TestMaxPollIntervalExpires(t *testing.T) {
	slowAlone(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 4
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "jobs", nparts, 5)
	var lost [][]int
	var revoked []int
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{
		Group: "workers", MemberName: "stuck", DisableAutoCommit: true, MaxPollRecords: 6,
		MaxPollInterval: 500 * time.Millisecond,
		OnLost:          func(_ *Consumer, ps []int) { lost = append(lost, ps) },
		OnRevoked:       func(_ *Consumer, ps []int) { revoked = append(revoked, ps...) },
	})
	pollSome(t, c)
	if err := c.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	var handed []offsetKey // handed over, never committed
	for _, r := range pollSome(t, c) {
		handed = append(handed, offsetKey{r.Partition, r.Offset})
	}
	committed := groupCommitted(t, l, "workers")
	// The member is stuck from here on.

	other := startMPMember(t, dir, "jobs", "workers", "other", "RUNNEL_GM_COMMIT=none")
	waitFor(t, patience, "the other member to own every partition", func() bool { return len(other.ownedNow()) == nparts })
	waitFor(t, patience, "the other member to read the records the stuck one did not commit", func() bool {
		recs := other.records()
		return !slices.ContainsFunc(handed, func(k offsetKey) bool { return !slices.Contains(recs, k) })
	})
	if got := groupMembers(t, l, "workers"); !slices.Equal(got, []string{"other"}) {
		t.Errorf("members after the expiry: %q, want other alone", got)
	}
	checkExpired(t, c, 0)
	if got := groupCommitted(t, l, "workers"); !slices.Equal(got, committed) {
		t.Errorf("committed offsets after the expired member's commits: %v, were %v", got, committed)
	}
	if lost != nil || revoked != nil {
		t.Errorf("callbacks before the next Poll: lost %v, revoked %v", lost, revoked)
	}

	// The next Poll joins again: the member takes its share back (the
	// other member, which never commits, gives it up) and reads it from
	// the group's committed offsets.
	produceSpread(t, l, "jobs", nparts, 5)
	first := map[int]int64{}
	for len(c.Partitions()) < nparts/2 || len(first) < nparts/2 {
		for _, r := range pollSome(t, c) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		}
	}
	if diff := cmp.Diff([][]int{{0, 1, 2, 3}}, lost); diff != "" {
		t.Errorf("OnLost (-want +got):\n%s", diff)
	}
	if revoked != nil {
		t.Errorf("OnRevoked called for %v; OnLost is set", revoked)
	}
	for p, off := range first {
		if want := max(committed[p], 0); off != want {
			t.Errorf("partition %d read again from offset %d, want its committed offset %d", p, off, want)
		}
	}
	if err := c.Commit(context.Background()); err != nil {
		t.Errorf("Commit after joining again: %v", err)
	}
	other.leave(t)
}

// A member that keeps polling never expires, however long each Poll
// waits inside: only the time between polls counts. A member that
// expires beside it is the clock.
func TestMaxPollIntervalPollingMemberStays(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 4})
	const interval = 200 * time.Millisecond
	var lost []int
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{
		Group: "workers", MemberName: "poller", MaxPollInterval: interval,
		OnLost:    func(_ *Consumer, ps []int) { lost = append(lost, ps...) },
		OnRevoked: func(_ *Consumer, ps []int) { lost = append(lost, ps...) },
	})
	idle := mustConsumer(t, l, "jobs", &ConsumerOptions{Group: "workers", MemberName: "idle", MaxPollInterval: interval})
	joined := describedTopic(t, l, "workers").Members[0].Joined
	ctx := context.Background()
	polls := 0
	poll := func(d time.Duration) {
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if _, err := c.Poll(pctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		polls++
	}
	// Until the member that never polls has expired, and then for three
	// times as many polls: short ones, ones that wait longer than the
	// interval, TryPolls and Records.
	deadline := time.Now().Add(patience)
	for n := 0; n == 0 || polls < 3*n; {
		if n == 0 && time.Now().After(deadline) {
			t.Fatalf("the member that never polls did not expire in %v", patience)
		}
		poll(interval / 4)
		poll(3 * interval)
		if _, err := c.TryPoll(); err != nil {
			t.Fatal(err)
		}
		polls++
		rctx, cancel := context.WithTimeout(ctx, 2*interval)
		for _, err := range c.Records(rctx) {
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		}
		cancel()
		polls++
		if n == 0 && slices.Equal(groupMembers(t, l, "workers"), []string{"poller"}) {
			n = polls
			checkExpired(t, idle, 0)
		}
	}
	if m := describedTopic(t, l, "workers").Members; len(m) != 1 || m[0].Name != "poller" || !m[0].Joined.Equal(joined) {
		t.Errorf("members: %+v, want poller, joined at %v", m, joined)
	}
	if got := c.Partitions(); len(got) != 4 || lost != nil {
		t.Errorf("the polling member owns %v, lost %v", got, lost)
	}
	if err := c.Commit(ctx); err != nil {
		t.Error(err)
	}
}

// A member with MaxPollInterval negative keeps its partitions while it
// does not poll, as long as a member that expires beside it takes to go;
// the expired member's Close calls OnRevoked (OnLost being nil) with the
// partitions it lost and commits nothing, auto-commit on.
func TestMaxPollIntervalDisabled(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	const nparts = 4
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "jobs", nparts, 3)
	keep := mustConsumer(t, l, "jobs", &ConsumerOptions{Group: "workers", MemberName: "keep", MaxPollInterval: -1})
	var revoked []int
	idle := mustConsumer(t, l, "jobs", &ConsumerOptions{
		Group: "workers", MemberName: "idle", MaxPollInterval: 200 * time.Millisecond,
		OnRevoked: func(_ *Consumer, ps []int) { revoked = append(revoked, ps...) },
	})
	pollSome(t, keep)
	pollSome(t, idle)
	owned, idleOwned := keep.Partitions(), idle.Partitions()
	if len(owned) != nparts/2 || len(idleOwned) != nparts/2 {
		t.Fatalf("keep owns %v, idle %v, want half each", owned, idleOwned)
	}
	waitFor(t, patience, "the idle member to expire", func() bool {
		return slices.Equal(groupMembers(t, l, "workers"), []string{"keep"})
	})
	if got := keep.Partitions(); !slices.Equal(got, owned) {
		t.Errorf("keep owns %v after not polling, want %v", got, owned)
	}
	if err := keep.Commit(context.Background()); err != nil {
		t.Errorf("Commit of the member that does not expire: %v", err)
	}
	checkExpired(t, idle, 0)
	committed := groupCommitted(t, l, "workers")
	if err := idle.Close(); err != nil {
		t.Errorf("Close of the expired member: %v", err)
	}
	if !slices.Equal(revoked, idleOwned) {
		t.Errorf("OnRevoked at the Close of the expired member: %v, want what it lost, %v", revoked, idleOwned)
	}
	if got := groupCommitted(t, l, "workers"); !slices.Equal(got, committed) {
		t.Errorf("committed offsets after the expired member's Close: %v, were %v", got, committed)
	}
	for len(keep.Partitions()) < nparts {
		pollSome(t, keep)
	}
}

// The expiry fires on a goroutine of its own, while the member may be
// starting a Poll, committing from another goroutine, or closing its
// Log: run under -race. Every call either works or says the member
// expired.
func TestMaxPollIntervalRaces(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	const nparts = 4
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "jobs", nparts, 50)
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{
		Group: "workers", MaxPollInterval: time.Millisecond, MaxPollRecords: 3, AutoCommitInterval: time.Millisecond,
	})
	other := startMember(t, l, "jobs", "workers", "other", &ConsumerOptions{MaxPollInterval: -1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, err := range []error{c.Commit(context.Background()), c.CommitMarked(context.Background())} {
				if err != nil && !errors.Is(err, ErrMemberExpired) {
					t.Errorf("commit: %v", err)
				}
			}
			c.Partitions()
		}
	})
	ctx := context.Background()
	for i := range 300 {
		if i%30 == 29 { // make sure it expires now and then
			waitFor(t, patience, "the member to expire", c.expiredNow)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		recs, err := c.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		c.MarkRecords(recs...)
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	other.close(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A Records loop whose member expires in the middle of a batch hands no
// more of that batch: its partitions are other members' by then. It
// handed the rest of the batch, records the member was never handed
// before it left, which the next owner reads too, so a job queue ran
// them twice though the member handled none of them before expiring.
// The loop's next step joins again (OnLost) and reads from the group's
// committed offset.
func TestMaxPollIntervalRecordsStopsBatch(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 1})
	produceSpread(t, l, "jobs", 1, 20)
	var lost []int
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{
		Group: "workers", DisableAutoCommit: true, MaxPollRecords: 10,
		MaxPollInterval: 100 * time.Millisecond,
		OnLost:          func(_ *Consumer, ps []int) { lost = append(lost, ps...) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var offsets []int64
	for r, err := range c.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, r.Offset)
		if len(offsets) == 1 {
			// Stuck in the first job until the member expires.
			waitFor(t, patience, "the member to expire", func() bool { return len(groupMembers(t, l, "workers")) == 0 })
			continue
		}
		break
	}
	if !slices.Equal(offsets, []int64{0, 0}) || !slices.Equal(lost, []int{0}) {
		t.Errorf("records yielded %v, OnLost %v; want offsets 0 and 0 again after OnLost of partition 0", offsets, lost)
	}
}
