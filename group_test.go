package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// produceSpread appends n records to every partition of topic (value
// "p/i") and waits for their acknowledgements.
func produceSpread(t testing.TB, l *Log, topic string, nparts, n int) {
	t.Helper()
	p, err := l.Producer(topic, &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		for part := range nparts {
			wg.Add(1)
			p.SendAsync(Record{Partition: part, Value: fmt.Appendf(nil, "%d/%d", part, i)}, func(_ Position, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				wg.Done()
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// offsetKey names one record.
type offsetKey struct {
	Partition int
	Offset    int64
}

// testMember is a group member polled by its own goroutine, recording
// every record Poll returned.
type testMember struct {
	name string
	c    *Consumer
	stop context.CancelFunc
	done chan error

	mu       sync.Mutex
	seen     []offsetKey
	assigned map[int]bool
}

func startMember(t *testing.T, l *Log, topic, group, name string, opts *ConsumerOptions) *testMember {
	t.Helper()
	var o ConsumerOptions
	if opts != nil {
		o = *opts
	}
	m := &testMember{name: name, done: make(chan error, 1), assigned: map[int]bool{}}
	o.Group, o.MemberName = group, name
	o.OnAssigned = func(c *Consumer, ps []int) {
		m.mu.Lock()
		for _, p := range ps {
			m.assigned[p] = true
		}
		m.mu.Unlock()
	}
	o.OnRevoked = func(c *Consumer, ps []int) {
		m.mu.Lock()
		for _, p := range ps {
			delete(m.assigned, p)
		}
		m.mu.Unlock()
	}
	c, err := l.Consumer(topic, &o)
	if err != nil {
		t.Fatalf("member %s: %v", name, err)
	}
	m.c = c
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		for {
			recs, err := c.Poll(ctx)
			m.mu.Lock()
			for _, r := range recs {
				m.seen = append(m.seen, offsetKey{r.Partition, r.Offset})
			}
			m.mu.Unlock()
			if ctx.Err() != nil {
				m.done <- c.Close()
				return
			}
			if err != nil {
				c.Close()
				m.done <- err
				return
			}
		}
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops the member's goroutine, which closes the consumer.
func (m *testMember) close(t *testing.T) {
	t.Helper()
	if m.stop == nil {
		return
	}
	m.stop()
	m.stop = nil
	if err := <-m.done; err != nil {
		t.Errorf("member %s: %v", m.name, err)
	}
}

func (m *testMember) owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int
	for p := range m.assigned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (m *testMember) records() []offsetKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// balanced reports whether members' assignments are disjoint, cover every
// partition and hold ⌊P/M⌋ or ⌈P/M⌉ each.
func balanced(nparts int, members ...*testMember) bool {
	return balancedBy(nparts, (*testMember).owned, members)
}

// balancedBy is balanced for any kind of member, whose partitions owned
// tells.
func balancedBy[M any](nparts int, owned func(M) []int, members []M) bool {
	seen := map[int]bool{}
	lo, hi := nparts/len(members), (nparts+len(members)-1)/len(members)
	for _, m := range members {
		ps := owned(m)
		if len(ps) < lo || len(ps) > hi {
			return false
		}
		for _, p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == nparts
}

// checkExactlyOnce verifies that the members together saw every offset
// below ends once.
func checkExactlyOnce(t *testing.T, ends []int64, members ...*testMember) {
	t.Helper()
	count := map[offsetKey]int{}
	for _, m := range members {
		for _, k := range m.records() {
			count[k]++
		}
	}
	for p, end := range ends {
		for off := range end {
			if n := count[offsetKey{p, off}]; n != 1 {
				t.Errorf("partition %d offset %d read %d times", p, off, n)
			}
			delete(count, offsetKey{p, off})
		}
	}
	for k := range count {
		t.Errorf("read %v, which was never written", k)
	}
}

func endOffsets(t *testing.T, l *Log, topic string) []int64 {
	t.Helper()
	info, err := l.DescribeTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, p := range info.Partitions {
		ends = append(ends, p.NextOffset)
	}
	return ends
}

func seenAll(ends []int64, members ...*testMember) bool {
	return seenAllBy(ends, (*testMember).records, members)
}

// seenAllBy is seenAll for any kind of member, whose records tells what it
// read.
func seenAllBy[M any](ends []int64, records func(M) []offsetKey, members []M) bool {
	have := map[offsetKey]bool{}
	for _, m := range members {
		for _, k := range records(m) {
			have[k] = true
		}
	}
	for p, end := range ends {
		for off := range end {
			if !have[offsetKey{p, off}] {
				return false
			}
		}
	}
	return true
}

// Two members in one process — two Consumers on one Log, and one on a
// second Log of the same directory — behave as members in other
// processes: an even spread, a late joiner gets its share, a member that
// closes hands over without any record read twice.
func TestGroupInProcessMembers(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	l2 := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 12
	mustCreate(t, l, "events", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "events", nparts, 50)

	a := startMember(t, l, "events", "g", "a", nil)
	b := startMember(t, l, "events", "g", "b", nil)
	waitFor(t, 5*time.Second, "6/6 over two members", func() bool { return balanced(nparts, a, b) })
	c := startMember(t, l2, "events", "g", "c", nil)
	waitFor(t, 5*time.Second, "4/4/4 after a late join", func() bool { return balanced(nparts, a, b, c) })

	info, err := l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Topics) != 1 || len(info.Topics[0].Members) != 3 {
		t.Fatalf("DescribeGroup: %+v", info)
	}
	for _, m := range info.Topics[0].Members {
		if len(m.Partitions) != 4 || m.PID != os.Getpid() {
			t.Errorf("member %+v", m)
		}
	}

	produceSpread(t, l, "events", nparts, 50)
	a.close(t)
	waitFor(t, 5*time.Second, "6/6 after a clean leave", func() bool { return balanced(nparts, b, c) })
	produceSpread(t, l, "events", nparts, 50)
	ends := endOffsets(t, l, "events")
	waitFor(t, 10*time.Second, "every record read", func() bool { return seenAll(ends, a, b, c) })
	b.close(t)
	c.close(t)
	checkExactlyOnce(t, ends, a, b, c)

	// The group's offsets are where the members stopped: no lag.
	info, err = l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Owned || gp.Committed != ends[gp.Partition] || gp.Lag != 0 {
			t.Errorf("after all closed: %+v", gp)
		}
	}
}

func TestGroupCommitOwnership(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 10)
	ctx := context.Background()

	plain, err := l.Consumer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Commit(ctx); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Commit outside a group: %v", err)
	}
	plain.Close()

	a, err := l.Consumer("t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if got := a.Partitions(); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("alone, a owns %v", got)
	}
	if err := a.CommitOffsets(ctx, map[int]int64{0: 3, 1: 4}); err != nil {
		t.Fatal(err)
	}
	b, err := l.Consumer("t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// a gives partition 1 up (the highest) on its next poll; b takes it.
	if _, err := a.TryPoll(); err != nil {
		t.Fatal(err)
	}
	recs, err := b.TryPoll()
	if err != nil {
		t.Fatal(err)
	}
	if ga, gb := a.Partitions(), b.Partitions(); !slices.Equal(ga, []int{0}) || !slices.Equal(gb, []int{1}) {
		t.Fatalf("a owns %v, b owns %v", ga, gb)
	}
	if len(recs) == 0 || recs[0].Offset != 4 {
		t.Errorf("b starts partition 1 with %v, want the commit 4", recs)
	}
	err = a.CommitOffsets(ctx, map[int]int64{0: 5, 1: 9})
	if !errors.Is(err, ErrNotOwner) {
		t.Fatalf("stale member's commit: %v, want ErrNotOwner", err)
	}
	t.Log(err)
	if err := b.CommitOffsets(ctx, map[int]int64{1: 6}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := a.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	info, err := l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	got := []int64{info.Topics[0].Partitions[0].Committed, info.Topics[0].Partitions[1].Committed}
	if !slices.Equal(got, []int64{3, 6}) {
		t.Errorf("committed %v, want [3 6] (the stale commit must not land)", got)
	}
}

func TestGroupStartPositions(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 10)
	ctx := context.Background()

	poll := func(c *Consumer) []int64 {
		t.Helper()
		var offs []int64
		for {
			recs, err := c.TryPoll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				return offs
			}
			for _, r := range recs {
				offs = append(offs, r.Offset)
			}
		}
	}

	late, err := l.Consumer("t", &ConsumerOptions{Group: "late", Start: Latest})
	if err != nil {
		t.Fatal(err)
	}
	if got := poll(late); len(got) != 0 {
		t.Fatalf("Latest read %v", got)
	}
	produceSpread(t, l, "t", 1, 2)
	if got := poll(late); !slices.Equal(got, []int64{10, 11}) {
		t.Fatalf("Latest then read %v", got)
	}
	late.Close()

	early, err := l.Consumer("t", &ConsumerOptions{Group: "early", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := poll(early); len(got) != 12 {
		t.Fatalf("Earliest read %v", got)
	}
	if err := early.CommitOffsets(ctx, map[int]int64{0: 7}); err != nil {
		t.Fatal(err)
	}
	early.Close()
	again, err := l.Consumer("t", &ConsumerOptions{Group: "early"})
	if err != nil {
		t.Fatal(err)
	}
	if got := poll(again); !slices.Equal(got, []int64{7, 8, 9, 10, 11}) {
		t.Fatalf("after commit 7, read %v", got)
	}
	again.Close()
	// Auto-commit at Close recorded where it stopped.
	resumed, err := l.Consumer("t", &ConsumerOptions{Group: "early"})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if got := poll(resumed); len(got) != 0 {
		t.Fatalf("after Close's commit, read %v", got)
	}
	if err := resumed.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// dropFirstSegment deletes partition 0's oldest segment, as retention
// would.
func dropFirstSegment(t *testing.T, l *Log, topic string) int64 {
	t.Helper()
	pdir := filepath.Join(l.topicDir(topic), "0")
	bases, err := listSegments(pdir)
	if err != nil || len(bases) < 2 {
		t.Fatalf("segments %v, %v", bases, err)
	}
	for _, ext := range []string{logExt, indexExt, timeIndexExt} {
		os.Remove(segmentPath(pdir, bases[0], ext))
	}
	return bases[1]
}

func TestGroupCommittedBelowLogStart(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p, _ := l.Producer("t", nil)
	big := make([]byte, 4096)
	for range 40 {
		if _, err := p.Send(context.Background(), Record{Value: big}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	c.TryPoll()
	if err := c.CommitOffsets(context.Background(), map[int]int64{0: 1}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	start := dropFirstSegment(t, l, "t")

	c, err = l.Consumer("t", &ConsumerOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TryPoll()
	if !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("committed offset below the log start: %v, want ErrOutOfRange", err)
	}
	t.Log(err)
	if _, err := c.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("the error is not sticky: %v", err)
	}
	if err := c.Seek(0, Earliest); err != nil {
		t.Fatal(err)
	}
	recs, err := c.TryPoll()
	if err != nil || len(recs) == 0 || recs[0].Offset != start {
		t.Fatalf("after Seek: %d records, %v", len(recs), err)
	}
	c.Close()

	for _, tc := range []struct {
		policy OutOfRange
		want   int64
	}{{OutOfRangeEarliest, start}, {OutOfRangeLatest, 40}} {
		forceCommit(t, l, "g2", "t", 1)
		c, err := l.Consumer("t", &ConsumerOptions{Group: "g2", OutOfRange: tc.policy, DisableAutoCommit: true})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatalf("policy %d: %v", tc.policy, err)
		}
		got := c.Position(0)
		if len(recs) > 0 {
			got = recs[0].Offset
		}
		if got != tc.want {
			t.Errorf("policy %d: starts at %d, want %d", tc.policy, got, tc.want)
		}
		c.Close()
	}
}

// forceCommit commits offset for partition 0 of a group
// directly, below the log start if need be (ResetGroupOffsets refuses
// that).
func forceCommit(t *testing.T, l *Log, group, topic string, offset int64) {
	t.Helper()
	off := lockPartition(t, l, group, topic, 0)
	defer off.close()
	st, err := off.readCommit(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.writeCommit(0, &st, offset, 1); err != nil {
		t.Fatal(err)
	}
}

// lockPartition opens group's offsets file for topic through a handle of
// its own and takes partition p's ownership lock, as its owner would, until
// the caller closes the handle.
func lockPartition(t *testing.T, l *Log, group, topic string, p int) *offsetsFile {
	t.Helper()
	tp, err := l.topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	off, err := openOffsets(l.dir, group, topic, len(tp.parts()), tp.id, true)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := off.lf.TryLock(partLock(p)); !ok || err != nil {
		off.close()
		t.Fatalf("lock partition %d: %v %v", p, ok, err)
	}
	return off
}

// TestResetGroupOffsetsUnchecked: with Unchecked, an offset the partition
// does not hold is stored as it is, as Kafka's OffsetCommit stores it, and
// the member that resumes there applies its OutOfRange policy.
func TestResetGroupOffsetsUnchecked(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 10)
	ctx := context.Background()
	unchecked := &ResetOptions{Unchecked: true}
	if got, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(25), unchecked); err != nil || got[0] != 25 {
		t.Fatalf("unchecked reset past the end: %v, %v", got, err)
	}
	info, err := l.DescribeGroup("g")
	if err != nil || info.Topics[0].Partitions[0].Committed != 25 {
		t.Fatalf("after the reset: %+v, %v; want 25 committed", info, err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(-1), unchecked); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unchecked reset to -1: %v, want ErrInvalidArgument", err)
	}
	m, err := l.Consumer("t", &ConsumerOptions{Group: "g", OutOfRange: OutOfRangeEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if recs, err := m.TryPoll(); err != nil || len(recs) != 10 || recs[0].Offset != 0 {
		t.Fatalf("member resuming past the end, OutOfRangeEarliest: %d records, %v; want all 10 from 0", len(recs), err)
	}
}

// TestDescribeGroupOneDamagedTopic: one topic's damaged offsets file
// leaves the group's other topics described, and is reported, by topic
// and file; DescribeGroup returned at the first topic's error.
func TestDescribeGroupOneDamagedTopic(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	ctx := context.Background()
	for _, topic := range []string{"a", "t"} {
		mustCreate(t, l, topic, TopicConfig{Partitions: 2})
		produceSpread(t, l, topic, 2, 10)
		if _, err := l.ResetGroupOffsets(ctx, "g", topic, AtOffset(5), nil); err != nil {
			t.Fatal(err)
		}
	}
	// A bit of a.offsets's header (a is described before t).
	path := offsetsPath(l.Dir(), "g", "a")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 12); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, 12); err != nil {
		t.Fatal(err)
	}
	f.Close()
	info, err := l.DescribeGroup("g")
	var gte *GroupTopicError
	var ce *CorruptError
	if !errors.As(err, &gte) || gte.Topic != "a" || !errors.As(err, &ce) || ce.Path != path {
		t.Errorf("DescribeGroup with a.offsets damaged: %v; want a GroupTopicError for a wrapping a CorruptError naming %s", err, path)
	}
	if gtes := GroupTopicErrors(err); len(gtes) != 1 || gtes[0].Topic != "a" {
		t.Errorf("GroupTopicErrors(%v) = %v, want a's alone", err, gtes)
	}
	if len(info.Topics) != 1 || info.Topics[0].Topic != "t" {
		t.Fatalf("topics described: %+v, want t alone", info.Topics)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Committed != 5 {
			t.Errorf("t/%d committed %d, want 5", gp.Partition, gp.Committed)
		}
	}
}

// TestGroupTopicErrors: an error made only of *GroupTopicError values,
// joined or wrapped, is per-topic; anything else in it makes it about the
// whole group.
func TestGroupTopicErrors(t *testing.T) {
	a := &GroupTopicError{Group: "g", Topic: "a", Err: ErrCorrupt}
	b := &GroupTopicError{Group: "g", Topic: "b", Err: ErrCorrupt}
	cases := []struct {
		name string
		err  error
		want []*GroupTopicError
	}{
		{"nil", nil, nil},
		{"whole group", fmt.Errorf("%w: g", ErrGroupNotFound), nil},
		{"one", a, []*GroupTopicError{a}},
		{"joined", errors.Join(a, b), []*GroupTopicError{a, b}},
		{"wrapped", fmt.Errorf("stats: %w", errors.Join(a, b)), []*GroupTopicError{a, b}},
		{"with another", errors.Join(a, ErrClosed), nil},
		{"wrapped with another", fmt.Errorf("%w and %w", a, ErrClosed), nil},
	}
	for _, c := range cases {
		if got := GroupTopicErrors(c.err); !slices.Equal(got, c.want) {
			t.Errorf("%s: GroupTopicErrors(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	if _, err := l.DescribeGroup("nope"); GroupTopicErrors(err) != nil {
		t.Errorf("GroupTopicErrors of DescribeGroup of a missing group (%v): not nil", err)
	}
}

func TestGroupAdmin(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 3})
	mustCreate(t, l, "u", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 3, 10)
	ctx := context.Background()

	if groups, err := l.ListGroups(); err != nil || len(groups) != 0 {
		t.Fatalf("ListGroups on a new log: %v, %v", groups, err)
	}
	if _, err := l.DescribeGroup("nope"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("DescribeGroup of a missing group: %v", err)
	}
	// A group can be positioned before any member starts.
	got, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]int64{0: 4, 1: 4, 2: 4}, got); diff != "" {
		t.Fatalf("reset: %s", diff)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(11), nil); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("reset past the end: %v", err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "h", "u", Latest, nil); err != nil {
		t.Fatal(err)
	}
	if groups, err := l.ListGroups(); err != nil || !slices.Equal(groups, []string{"g", "h"}) {
		t.Fatalf("ListGroups: %v, %v", groups, err)
	}

	m, err := l.Consumer("t", &ConsumerOptions{Group: "g", MemberName: "worker-1", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	recs, err := m.TryPoll()
	if err != nil || len(recs) != 18 {
		t.Fatalf("member read %d records from offset 4, %v", len(recs), err)
	}
	if err := m.CommitOffsets(ctx, map[int]int64{0: 10, 1: 8}); err != nil {
		t.Fatal(err)
	}
	info, err := l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	gt := info.Topics[0]
	if len(gt.Members) != 1 || gt.Members[0].Name != "worker-1" || !slices.Equal(gt.Members[0].Partitions, []int{0, 1, 2}) {
		t.Errorf("members %+v", gt.Members)
	}
	type row struct {
		Committed, End, Lag int64
		Owned               bool
		Owner               int
	}
	var rows []row
	for _, p := range gt.Partitions {
		rows = append(rows, row{p.Committed, p.End, p.Lag, p.Owned, p.Owner})
	}
	want := []row{{10, 10, 0, true, 0}, {8, 10, 2, true, 0}, {4, 10, 6, true, 0}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}

	// Refused while the member owns the partitions, unless forced.
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", Earliest, nil); !errors.Is(err, ErrGroupActive) {
		t.Fatalf("reset of an active group: %v, want ErrGroupActive", err)
	}
	// A forced reset is applied by the owner inside its Poll.
	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := l.ResetGroupOffsets(rctx, "g", "t", AtOffset(2), &ResetOptions{Force: true, Partitions: []int{1}})
		done <- err
	}()
	var after []Record
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(after) < 8 {
		recs, err := m.Poll(pctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			after = append(after, cloneRecord(r))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after[0].Partition != 1 || after[0].Offset != 2 {
		t.Errorf("after a forced reset to 2, read p%d@%d", after[0].Partition, after[0].Offset)
	}
	info, _ = l.DescribeGroup("g")
	if c := info.Topics[0].Partitions[1].Committed; c != 2 {
		t.Errorf("forced reset committed %d, want 2", c)
	}
	m.Close()

	// Reset by time: the first record at or after the 5th record's time.
	c, _ := l.Consumer("t", &ConsumerOptions{Partitions: []int{2}})
	recs, _ = c.TryPoll()
	c.Close()
	got, err = l.ResetGroupOffsets(ctx, "g", "t", AtTime(recs[5].Time), &ResetOptions{Partitions: []int{2}})
	if err != nil || got[2] != 5 {
		t.Fatalf("reset to time: %v, %v", got, err)
	}
	got, err = l.ResetGroupOffsets(ctx, "g", "t", Latest, nil)
	if err != nil || !cmp.Equal(got, map[int]int64{0: 10, 1: 10, 2: 10}) {
		t.Fatalf("reset to latest: %v, %v", got, err)
	}
}

// ConsumerOptions are checked in one place, each bad value with a clear
// error and nothing opened.
func TestConsumerOptionsValidation(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	for _, tt := range []struct {
		o    ConsumerOptions
		want error
	}{
		{ConsumerOptions{Group: "g", Partitions: []int{0}}, ErrInvalidArgument},
		{ConsumerOptions{Group: "bad\xffname"}, ErrInvalidName},
		{ConsumerOptions{Group: "g", AutoCommitInterval: -1}, ErrInvalidArgument},
		{ConsumerOptions{Group: "g", GroupCheckInterval: -1}, ErrInvalidArgument},
		{ConsumerOptions{Group: "g", OutOfRange: 7}, ErrInvalidArgument},
		{ConsumerOptions{Group: "g", AutoCommitMarks: true, DisableAutoCommit: true}, ErrInvalidArgument},
		{ConsumerOptions{MaxPollRecords: -1}, ErrInvalidArgument},
		{ConsumerOptions{MaxPollBytes: -1}, ErrInvalidArgument},
		{ConsumerOptions{MaxPollBytes: 100}, ErrInvalidArgument}, // once silently raised to 4 KiB
		{ConsumerOptions{SpinWait: -1}, ErrInvalidArgument},
		{ConsumerOptions{MemberName: "x"}, ErrInvalidArgument}, // group options without a group
		{ConsumerOptions{DisableAutoCommit: true}, ErrInvalidArgument},
		{ConsumerOptions{AutoCommitMarks: true}, ErrInvalidArgument},
		{ConsumerOptions{OnRevoked: func(*Consumer, []int) {}}, ErrInvalidArgument},
		{ConsumerOptions{OnLost: func(*Consumer, []int) {}}, ErrInvalidArgument},
		{ConsumerOptions{MaxPollInterval: time.Second}, ErrInvalidArgument},
		{ConsumerOptions{MaxPollInterval: -1}, ErrInvalidArgument},
	} {
		if c, err := l.Consumer("t", &tt.o); !errors.Is(err, tt.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Consumer(%+v): %v, want %v", tt.o, err, tt.want)
		}
	}
	// The defaults, filled in a copy: the caller's struct is not changed.
	o := ConsumerOptions{Group: "g", MaxPollBytes: minMaxPollBytes}
	c := mustConsumer(t, l, "t", &o)
	if o.MaxPollRecords != 0 || o.MemberName != "" {
		t.Errorf("Consumer changed the caller's options: %+v", o)
	}
	want := ConsumerOptions{Group: "g", MemberName: defaultMemberName(), MaxPollRecords: 500, MaxPollBytes: minMaxPollBytes,
		AutoCommitInterval: 5 * time.Second, GroupCheckInterval: 10 * time.Millisecond, MaxPollInterval: 5 * time.Minute}
	if diff := cmp.Diff(want, c.opts, cmp.AllowUnexported(StartPosition{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// OutOfRange applies to a plain consumer's start too, and an
// *OutOfRangeError says which partition and what it holds.
func TestOutOfRangeError(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 10)
	_, err := l.Consumer("t", &ConsumerOptions{Partitions: []int{1}, Start: AtOffset(12)})
	var oor *OutOfRangeError
	if !errors.As(err, &oor) || !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Consumer past the end: %v, want an *OutOfRangeError", err)
	}
	if want := (OutOfRangeError{Topic: "t", Partition: 1, Offset: 12, Start: 0, End: 10}); *oor != want {
		t.Errorf("error %+v, want %+v", *oor, want)
	}
	c := mustConsumer(t, l, "t", nil)
	if err := c.Seek(0, AtOffset(11)); !errors.As(err, &oor) || oor.Partition != 0 || oor.Offset != 11 || oor.End != 10 {
		t.Errorf("Seek past the end: %v", err)
	}
	// The error stays with the partition until a Seek succeeds.
	if _, err := c.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Poll after a failed Seek: %v, want ErrOutOfRange", err)
	}
	if err := c.Seek(0, AtOffset(3)); err != nil {
		t.Fatal(err)
	}
	if recs, err := c.TryPoll(); err != nil || len(recs) != 17 {
		t.Errorf("Poll after a good Seek: %d records, %v", len(recs), err)
	}
	for _, tt := range []struct {
		policy OutOfRange
		want   int64
	}{{OutOfRangeEarliest, 0}, {OutOfRangeLatest, 10}} {
		c := mustConsumer(t, l, "t", &ConsumerOptions{Partitions: []int{1}, Start: AtOffset(50), OutOfRange: tt.policy})
		if pos := c.Position(1); pos != tt.want {
			t.Errorf("OutOfRange %d: position %d, want %d", tt.policy, pos, tt.want)
		}
	}
}

// DeleteGroup removes a group's offsets for every topic, refuses while a
// member lives, and with Force leaves live members with ErrGroupNotFound
// while new members start a new group of the same name.
func TestDeleteGroup(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	mustCreate(t, l, "u", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 2, 5)
	ctx := context.Background()
	if err := l.DeleteGroup(ctx, "g", nil); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("DeleteGroup of a missing group: %v, want ErrGroupNotFound", err)
	}
	if err := l.DeleteGroup(ctx, strings.Repeat("/", 100), nil); !errors.Is(err, ErrInvalidName) {
		t.Errorf("DeleteGroup of a bad name: %v, want ErrInvalidName", err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "u", Latest, nil); err != nil {
		t.Fatal(err)
	}
	m := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest})
	if recs := pollUntil(t, m, 10, 5*time.Second); len(recs) != 10 {
		t.Fatalf("member read %d records", len(recs))
	}
	if err := m.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteGroup(ctx, "g", nil); !errors.Is(err, ErrGroupActive) {
		t.Fatalf("DeleteGroup with a live member: %v, want ErrGroupActive", err)
	}
	if info, err := l.DescribeGroup("g"); err != nil || len(info.Topics) != 2 || info.Topics[0].Partitions[0].Committed != 5 {
		t.Fatalf("group after a refused delete: %+v, %v", info, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteGroup(ctx, "g", nil); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if _, err := l.DescribeGroup("g"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("DescribeGroup after DeleteGroup: %v, want ErrGroupNotFound", err)
	}
	if groups, err := l.ListGroups(); err != nil || len(groups) != 0 {
		t.Errorf("ListGroups after DeleteGroup: %v, %v", groups, err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "groups", "g")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the group's directory is still there: %v", err)
	}

	// A new member starts the group afresh: from Start, not the old commit.
	old := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest})
	if recs := pollUntil(t, old, 10, 5*time.Second); len(recs) != 10 || recs[0].Offset != 0 {
		t.Fatalf("new member read %d records from %d", len(recs), recs[0].Offset)
	}
	// Forced, with that member alive: it learns at its next call.
	if err := l.DeleteGroup(ctx, "g", &DeleteGroupOptions{Force: true}); err != nil {
		t.Fatalf("forced DeleteGroup: %v", err)
	}
	if _, err := old.TryPoll(); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("Poll of a member of a deleted group: %v, want ErrGroupNotFound", err)
	}
	for name, err := range map[string]error{
		"Commit":        old.Commit(ctx),
		"CommitMarked":  old.CommitMarked(ctx),
		"CommitOffsets": old.CommitOffsets(ctx, map[int]int64{0: 1}),
	} {
		if !errors.Is(err, ErrGroupNotFound) {
			t.Errorf("%s of a member of a deleted group: %v, want ErrGroupNotFound", name, err)
		}
	}
	// The next member is not held up by the old one's locks.
	next := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest})
	if recs := pollUntil(t, next, 10, 5*time.Second); len(recs) != 10 {
		t.Errorf("member after a forced delete read %d records", len(recs))
	}
	if err := old.Close(); err != nil {
		t.Errorf("Close of a member of a deleted group: %v", err)
	}
	if info, err := l.DescribeGroup("g"); err != nil || len(info.Topics[0].Members) != 1 {
		t.Errorf("the new group: %+v, %v", info, err)
	}
}

// TestDeletedWordLeftBehind: a DeleteGroup that died between setting an
// offsets file's deleted word and removing the file (or a word set by
// damage) leaves a file its path still names: joiners and admin calls
// kept opening it again, for ever. Now, finding no DeleteGroup at work
// (its admin lock free), they clear the word and keep the file, commits
// and all.
func TestDeletedWordLeftBehind(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 10)
	ctx := context.Background()
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(5), nil); err != nil {
		t.Fatal(err)
	}
	leaveDeleted := func() {
		t.Helper()
		off, err := openOffsets(l.Dir(), "g", "t", 1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		off.ctlWord(ctlDeadOff).Store(1)
		off.close()
	}
	within := func(what string, fn func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s has not returned after 60s", what)
		}
	}
	leaveDeleted()
	within("joining the group", func() error {
		c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
		if err != nil {
			return err
		}
		defer c.Close()
		recs, err := c.TryPoll()
		if err == nil && (len(recs) != 5 || recs[0].Offset != 5) {
			err = fmt.Errorf("resumed with %d records, want the 5 from the commit at 5", len(recs))
		}
		return err
	})
	leaveDeleted()
	within("resetting the group", func() error {
		_, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(7), nil)
		return err
	})
	if info, err := l.DescribeGroup("g"); err != nil || info.Topics[0].Partitions[0].Committed != 7 {
		t.Errorf("after the reset: %+v, %v; want 7 committed", info, err)
	}
}

// holdEverySlot is DeleteGroup half-way: it holds the group's admin lock
// and every member slot through off. full receives when a joiner finds
// every slot taken, and waits for the admin lock.
func holdEverySlot(t *testing.T, off *offsetsFile) (full <-chan struct{}) {
	t.Helper()
	mustTryLock(t, off.lf, adminLockOff, true)
	for s := range maxMembers {
		mustTryLock(t, off.lf, memberLock(s), true)
	}
	ch := make(chan struct{}, 1)
	testHookNoSlot = func() { ch <- struct{}{} }
	t.Cleanup(func() { testHookNoSlot = nil })
	return ch
}

// joinWaiting starts a member of group g of l joining, and returns once it
// found every slot taken (full, from holdEverySlot) and waits for the
// admin lock; the join's outcome arrives on the channel.
func joinWaiting(t *testing.T, l *Log, full <-chan struct{}) <-chan error {
	t.Helper()
	joined := make(chan error, 1)
	go func() {
		c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		joined <- err
	}()
	select {
	case <-full:
	case err := <-joined:
		t.Fatalf("the joiner did not wait: %v", err)
	}
	return joined
}

// A member that joins while DeleteGroup holds every member slot waits for
// it and joins the next file, instead of finding the group full.
func TestJoinDuringDeleteGroup(t *testing.T) {
	l, off := groupFileOpen(t)
	joined := joinWaiting(t, l, holdEverySlot(t, off))
	off.ctlWord(ctlDeadOff).Store(1)
	if err := os.Remove(offsetsPath(l.Dir(), "g", "t")); err != nil {
		t.Fatal(err)
	}
	off.close()
	select {
	case err := <-joined:
		if err != nil {
			t.Fatalf("join during DeleteGroup: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the joiner is still waiting")
	}
	if _, err := os.Stat(offsetsPath(l.Dir(), "g", "t")); err != nil {
		t.Errorf("the joiner did not make a new offsets file: %v", err)
	}
}
