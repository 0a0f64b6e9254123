package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// committedOffsets returns the group's committed offset of every partition
// of topic (-1: none).
func committedOffsets(t *testing.T, l *Log, group, topic string) []int64 {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, gt := range info.Topics {
		if gt.Topic == topic {
			var out []int64
			for _, gp := range gt.Partitions {
				out = append(out, gp.Committed)
			}
			return out
		}
	}
	t.Fatalf("group %s has no offsets for %s", group, topic)
	return nil
}

// Inside Records, Commit covers the records yielded so far, never the
// ones fetched behind them; breaking out and closing commits the same.
func TestCommitInsideRecords(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 100)
	ctx := context.Background()
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r, err := range c.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset != int64(n) {
			t.Fatalf("record %d at offset %d", n, r.Offset)
		}
		n++
		if n == 10 {
			if err := c.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			// All 100 were fetched in one batch; 10 were handed over.
			if got := committedOffsets(t, l, "g", "t"); got[0] != 10 {
				t.Fatalf("Commit after 10 of 100 fetched records committed %d", got[0])
			}
			if pos := c.Position(0); pos != 10 {
				t.Errorf("Position after 10 records: %d", pos)
			}
		}
		if n == 25 {
			break
		}
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, l, "g", "t"); got[0] != 25 {
		t.Errorf("Commit after breaking out at 25: %d", got[0])
	}
	// The loop's unhanded records come again.
	if recs, err := c.TryPoll(); err != nil || len(recs) != 75 || recs[0].Offset != 25 {
		t.Errorf("Poll after the loop: %d records from %v, %v", len(recs), recs[:min(1, len(recs))], err)
	}
	c.Close()

	// Auto-commit at Close after an early break: the same.
	a, err := l.Consumer("t", &ConsumerOptions{Group: "h", Start: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for _, err := range a.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 33 {
			break
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, l, "h", "t"); got[0] != 33 {
		t.Errorf("auto-commit at Close after 33 records: %d", got[0])
	}
}

// A Seek inside the Records loop takes effect at once: the records fetched
// before it are not yielded.
func TestSeekInsideRecords(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 20)
	c := mustConsumer(t, l, "t", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []offsetKey
	seeked := false
	for r, err := range c.Records(ctx) {
		if err != nil {
			break
		}
		got = append(got, offsetKey{r.Partition, r.Offset})
		if !seeked && r.Partition == 0 && r.Offset == 5 {
			seeked = true
			if err := c.Seek(0, AtOffset(15)); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 6+5+20 {
			cancel()
		}
	}
	var want []offsetKey
	for p := range 2 {
		for off := range int64(20) {
			if p == 0 && off > 5 && off < 15 {
				continue
			}
			want = append(want, offsetKey{p, off})
		}
	}
	slices.SortFunc(got, func(a, b offsetKey) int {
		return (a.Partition*1000 + int(a.Offset)) - (b.Partition*1000 + int(b.Offset))
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records around a Seek inside Records (-want +got):\n%s", diff)
	}
}

// Marks commit only contiguous runs: a record finished out of order never
// commits the ones before it that are still being processed.
func TestCommitMarked(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 10)
	ctx := context.Background()
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", DisableAutoCommit: true, Start: Earliest})
	recs := slices.Clone(pollUntil(t, c, 20, 5*time.Second))
	byPart := map[int][]Record{}
	for _, r := range recs {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	p0, p1 := byPart[0], byPart[1]
	steps := []struct {
		mark []Record
		want []int64
	}{
		{nil, []int64{0, 0}},                                         // nothing marked: the start
		{[]Record{p0[1], p0[2], p1[3]}, []int64{0, 0}},               // out of order: 0 still open
		{[]Record{p0[0]}, []int64{3, 0}},                             // 0 done: 0-2 commit
		{[]Record{p1[0], p1[1], p1[2]}, []int64{3, 4}},               // 0-3 of partition 1
		{[]Record{p0[9], p0[0], p0[2]}, []int64{3, 4}},               // repeats and a far one
		{[]Record{p0[3], p0[4], p0[5], p0[6], p0[7]}, []int64{8, 4}}, // 9 waits for 8
		{[]Record{p0[8]}, []int64{10, 4}},                            // the end
	}
	for i, s := range steps {
		c.MarkRecords(s.mark...)
		if err := c.CommitMarked(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.want, committedOffsets(t, l, "g", "t")); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
	// Commit covers everything handed over; CommitMarked never goes back.
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitMarked(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{10, 10}, committedOffsets(t, l, "g", "t")); diff != "" {
		t.Errorf("after Commit and CommitMarked (-want +got):\n%s", diff)
	}
	// Records never handed over, or of partitions not owned, are ignored.
	c.MarkRecords(Record{Partition: 0, Offset: 50}, Record{Partition: 7, Offset: 1}, Record{Partition: -1})
	if err := c.CommitMarked(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{10, 10}, committedOffsets(t, l, "g", "t")); diff != "" {
		t.Errorf("after marking records never handed over (-want +got):\n%s", diff)
	}
	// A Seek back drops the marks and starts the run there.
	if err := c.Seek(0, AtOffset(4)); err != nil {
		t.Fatal(err)
	}
	again := slices.Clone(pollUntil(t, c, 6, 5*time.Second))
	c.MarkRecords(again[1:]...)
	if err := c.CommitMarked(ctx); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, l, "g", "t"); got[0] != 10 {
		t.Errorf("CommitMarked after a Seek back with 4 open: %d, want 10 kept", got[0])
	}
	c2 := mustConsumer(t, l, "t", &ConsumerOptions{Partitions: []int{0}})
	if err := c2.CommitMarked(ctx); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("CommitMarked without a group: %v, want ErrInvalidArgument", err)
	}
}

// Auto-commit of marks: at revoke and Close, what was marked, not what was
// handed over.
func TestAutoCommitMarks(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 10)
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g", AutoCommitMarks: true, Start: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	recs := pollUntil(t, c, 10, 5*time.Second)
	c.MarkRecords(recs[0], recs[1], recs[2], recs[4])
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, l, "g", "t"); got[0] != 3 {
		t.Errorf("auto-commit of marks at Close: %d, want 3", got[0])
	}
}

// Commits and marks from 8 goroutines at once, while the polling
// goroutine polls and auto-commits, and a rebalance takes partitions away:
// no race (run with -race), no error but ErrNotOwner for a partition just
// given up, and the marked runs end up committed.
func TestConcurrentCommitsAndMarks(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d})
			const nparts = 4
			mustCreate(t, l, "t", TopicConfig{Partitions: nparts})
			per := mpScale(600, 200, 200)
			produceSpread(t, l, "t", nparts, per)
			ctx := context.Background()
			c, err := l.Consumer("t", &ConsumerOptions{
				Group: "g", Start: Earliest, AutoCommitMarks: true,
				AutoCommitInterval: time.Millisecond, MaxPollRecords: 37,
			})
			if err != nil {
				t.Fatal(err)
			}
			jobs := make(chan Record, 256)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for r := range jobs {
						c.MarkRecords(r)
						var err error
						switch rng.IntN(4) {
						case 0:
							err = c.CommitMarked(ctx)
						case 1:
							err = c.CommitOffsets(ctx, map[int]int64{r.Partition: r.Offset + 1})
						case 2:
							err = c.Commit(ctx)
						}
						if err != nil && !errors.Is(err, ErrNotOwner) {
							errs <- err
						}
					}
				}()
			}
			total := 0
			for total < nparts*per {
				recs, err := c.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) > 37 {
					t.Fatalf("Poll returned %d records, MaxPollRecords 37", len(recs))
				}
				for _, r := range recs {
					jobs <- Record{Partition: r.Partition, Offset: r.Offset}
				}
				total += len(recs)
			}
			close(jobs)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Everything was marked: CommitMarked brings every partition to
			// its end (CommitOffsets of one record may have set it lower).
			if err := c.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			want := slices.Repeat([]int64{int64(per)}, nparts)
			if diff := cmp.Diff(want, committedOffsets(t, l, "g", "t")); diff != "" {
				t.Errorf("committed (-want +got):\n%s", diff)
			}
		})
	}
}

// Poll returns at most MaxPollRecords, taking partitions in turn.
func TestMaxPollRecords(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 3})
	produceSpread(t, l, "t", 3, 1000)
	for _, max := range []int{0, 1, 7, 500, 5000} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			c := mustConsumer(t, l, "t", &ConsumerOptions{MaxPollRecords: max})
			limit := max
			if limit == 0 {
				limit = 500
			}
			next := map[int]int64{}
			polls := 0
			for read := 0; read < 3000; polls++ {
				recs, err := c.TryPoll()
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 || len(recs) > limit {
					t.Fatalf("Poll %d returned %d records, limit %d", polls, len(recs), limit)
				}
				for _, r := range recs {
					if r.Offset != next[r.Partition] {
						t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
					}
					if string(r.Value) != fmt.Sprintf("%d/%d", r.Partition, r.Offset) {
						t.Fatalf("record %d/%d holds %q", r.Partition, r.Offset, r.Value)
					}
					next[r.Partition]++
				}
				read += len(recs)
			}
			if recs, err := c.TryPoll(); len(recs) != 0 || err != nil {
				t.Errorf("after everything: %d records, %v", len(recs), err)
			}
			// Every partition had its turn from the start: none waited for
			// the others to be drained.
			if limit < 1000 {
				c2 := mustConsumer(t, l, "t", &ConsumerOptions{MaxPollRecords: max})
				seen := map[int]bool{}
				for range 3 {
					recs, _ := c2.TryPoll()
					for _, r := range recs {
						seen[r.Partition] = true
					}
				}
				if len(seen) != 3 {
					t.Errorf("three Polls read partitions %v", seen)
				}
			}
		})
	}
}

// A member that joins gets its share within one Poll of the member that
// owns everything: the owner's next Poll gives partitions up, and the
// joiner's next Poll takes them.
func TestJoinerGetsShareWithinOnePoll(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	const nparts = 4
	mustCreate(t, l, "t", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "t", nparts, 5000) // far more than one Poll
	owner := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest, GroupCheckInterval: time.Hour})
	if recs, err := owner.TryPoll(); err != nil || len(recs) != 500 || len(owner.Partitions()) != nparts {
		t.Fatalf("owner: %d records, partitions %v, %v", len(recs), owner.Partitions(), err)
	}
	joiner := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest, GroupCheckInterval: time.Hour})
	if _, err := owner.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if got := owner.Partitions(); len(got) != nparts/2 {
		t.Errorf("owner after one Poll since the join: %v", got)
	}
	recs, err := joiner.TryPoll()
	if err != nil || len(joiner.Partitions()) != nparts/2 || len(recs) == 0 {
		t.Errorf("joiner after its first Poll: partitions %v, %d records, %v", joiner.Partitions(), len(recs), err)
	}
	// The handed-over partitions continue exactly where the owner stopped.
	committed := committedOffsets(t, l, "g", "t")
	for _, r := range recs {
		if r.Offset < committed[r.Partition] {
			t.Errorf("joiner read %d/%d, below the commit %d", r.Partition, r.Offset, committed[r.Partition])
		}
	}
}
