package runnel

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sendTo appends n records to partition part.
func sendTo(t testing.TB, p *Producer, part, n int) {
	t.Helper()
	for i := range n {
		if _, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("v")}); err != nil {
			t.Fatalf("Send %d to partition %d: %v", i, part, err)
		}
	}
}

// pollWhile polls c until done holds, adding what it returns to got; it
// fails the test on an error or after patience.
func pollWhile(t testing.TB, c *Consumer, got *[]offsetKey, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", patience, what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll waiting for %s: %v", what, err)
		}
		for _, r := range recs {
			*got = append(*got, offsetKey{r.Partition, r.Offset})
		}
	}
}

// ofPartitions is the records of got in the partitions ps.
func ofPartitions(got []offsetKey, ps ...int) []offsetKey {
	return slices.DeleteFunc(slices.Clone(got), func(k offsetKey) bool { return !slices.Contains(ps, k.Partition) })
}

// offsetRun is the records from to end-1 of partition p.
func offsetRun(p int, from, end int64) []offsetKey {
	var ks []offsetKey
	for off := from; off < end; off++ {
		ks = append(ks, offsetKey{p, off})
	}
	return ks
}

// partitionReads is how many records the Log's consumers read from each
// partition of topic.
func partitionReads(l *Log, topic string) map[int]int64 {
	reads := map[int]int64{}
	for _, ps := range l.Stats().Partitions {
		if ps.Topic == topic {
			reads[ps.Partition] = ps.RecordsRead
		}
	}
	return reads
}

// A paused partition yields nothing and is not read while the others
// are; resumed, it goes on from where it stopped, nothing lost or twice.
func TestPauseResume(t *testing.T) {
	for _, group := range []string{"", "g"} {
		t.Run("group="+group, func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
			mustCreate(t, l, "p", TopicConfig{Partitions: 3})
			p := mustProducer(t, l, "p", &ProducerOptions{Partitioner: ManualPartitioner})
			for part := range 3 {
				sendTo(t, p, part, 10)
			}
			c := mustConsumer(t, l, "p", &ConsumerOptions{Group: group, Start: Earliest, MaxPollRecords: 4})
			var got []offsetKey
			pollWhile(t, c, &got, "some of partition 1", func() bool { return len(ofPartitions(got, 1)) > 0 })
			if err := c.Pause(1); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{1}, c.Paused()); diff != "" {
				t.Errorf("Paused (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{0, 1, 2}, c.Partitions()); diff != "" {
				t.Errorf("Partitions while one is paused (-want +got):\n%s", diff)
			}
			pos := c.Position(1)
			readsAtPause := partitionReads(l, "p")[1]
			for part := range 3 {
				sendTo(t, p, part, 5)
			}
			pollWhile(t, c, &got, "partitions 0 and 2", func() bool { return len(ofPartitions(got, 0, 2)) == 30 })
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			recs, err := c.Poll(ctx)
			cancel()
			if len(recs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Poll with only the paused partition holding records: %d records, %v", len(recs), err)
			}
			if n := len(ofPartitions(got, 1)); int64(n) != pos {
				t.Errorf("read %d records of partition 1 paused at position %d", n, pos)
			}
			if n := partitionReads(l, "p")[1]; n != readsAtPause {
				t.Errorf("the consumer read %d records of partition 1 while it was paused", n-readsAtPause)
			}
			if c.Position(1) != pos {
				t.Errorf("partition 1 paused at position %d is at %d", pos, c.Position(1))
			}

			if err := c.Resume(1); err != nil {
				t.Fatal(err)
			}
			if ps := c.Paused(); len(ps) != 0 {
				t.Errorf("Paused after Resume: %v", ps)
			}
			pollWhile(t, c, &got, "partition 1", func() bool { return len(ofPartitions(got, 1)) >= 15 })
			for part := range 3 {
				if diff := cmp.Diff(offsetRun(part, 0, 15), ofPartitions(got, part)); diff != "" {
					t.Errorf("partition %d's records (-want +got):\n%s", part, diff)
				}
			}
		})
	}
}

// A Poll with every partition paused sleeps: appends to them neither
// wake it nor are read, and it looks no more often than relookEvery.
func TestPausedPollSleeps(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "p", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "p", &ProducerOptions{Partitioner: ManualPartitioner})
	c := mustConsumer(t, l, "p", &ConsumerOptions{Start: Earliest})
	if err := c.Pause(0, 1); err != nil {
		t.Fatal(err)
	}
	var looks atomic.Int64
	testHookLook = func() { looks.Add(1) }
	t.Cleanup(func() { testHookLook = nil })
	before, began := l.Stats(), time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := pollAsync(ctx, c)
	waitFor(t, patience, "Poll to sleep", func() bool { return l.Stats().PollWaits > before.PollWaits })
	for part := range 2 {
		sendTo(t, p, part, 20)
	}
	cancel()
	res := <-done
	if len(res.recs) != 0 || !errors.Is(res.err, context.Canceled) {
		t.Fatalf("Poll of paused partitions: %d records, %v", len(res.recs), res.err)
	}
	after := l.Stats()
	if n := after.Wakeups - before.Wakeups; n != 0 {
		t.Errorf("appends to paused partitions woke the Poll %d times", n)
	}
	if n := after.RecordsRead - before.RecordsRead; n != 0 {
		t.Errorf("the Poll read %d records of paused partitions", n)
	}
	// The first look, before the sleep, and one each relookEvery.
	if n := looks.Load(); n > 1+relooks(began) {
		t.Errorf("the Poll looked %d times with every partition paused", n)
	}
}

// Pause and Resume name partitions the consumer reads; a bad one fails
// the call, which then pauses none.
func TestPauseErrors(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "p", TopicConfig{Partitions: 3})

	c := mustConsumer(t, l, "p", &ConsumerOptions{Partitions: []int{0, 1}})
	for _, ps := range [][]int{{2}, {-1}, {3}, {0, 2}} {
		if err := c.Pause(ps...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Pause(%v) of a consumer of 0 and 1: %v, want ErrInvalidArgument", ps, err)
		}
		if err := c.Resume(ps...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Resume(%v) of a consumer of 0 and 1: %v, want ErrInvalidArgument", ps, err)
		}
	}
	if ps := c.Paused(); len(ps) != 0 {
		t.Errorf("failed Pauses paused %v", ps)
	}
	if err := c.Pause(0, 0); err != nil {
		t.Errorf("Pause(0, 0): %v", err)
	}
	if err := c.Resume(1); err != nil {
		t.Errorf("Resume of a partition not paused: %v", err)
	}
	c.Close()
	if err := c.Pause(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Pause after Close: %v, want ErrClosed", err)
	}

	// A member owns nothing until its first Poll.
	m := mustConsumer(t, l, "p", &ConsumerOptions{Group: "g"})
	if err := m.Pause(0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Pause before the member owns the partition: %v, want ErrNotOwner", err)
	}
	if _, err := m.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if err := m.Pause(0, 1, 2); err != nil {
		t.Errorf("Pause of the member's partitions: %v", err)
	}
}

// A Pause inside a Records loop takes effect at once: the paused
// partition's records fetched behind it come after Resume, once, and
// what is appended to the others meanwhile comes before them.
func TestPauseInsideRecords(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "p", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "p", &ProducerOptions{Partitioner: ManualPartitioner})
	sendTo(t, p, 0, 5)
	sendTo(t, p, 1, 5)
	c := mustConsumer(t, l, "p", &ConsumerOptions{Start: Earliest})
	var got []offsetKey
	for r, err := range c.Records(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, offsetKey{r.Partition, r.Offset})
		switch len(got) {
		case 1:
			if err := c.Pause(1 - r.Partition); err != nil {
				t.Fatal(err)
			}
			sendTo(t, p, r.Partition, 5)
		case 10:
			if err := c.Resume(1 - r.Partition); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 15 {
			break
		}
	}
	first := got[0].Partition
	want := append(offsetRun(first, 0, 10), offsetRun(1-first, 0, 5)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records with the other partition paused after the first (-want +got):\n%s", diff)
	}
}

// TestPausedPartitionHoldsNoRemovedSegment: a paused partition is not
// read for as long as it stays paused (the Kafka server's group members
// pause theirs for their whole life), so its reader must not keep the
// descriptor of the segment it stopped in: retention removing that
// segment would free no space while the pause lasts. Resumed, it finds
// the segment gone, as any reader overtaken by retention.
func TestPausedPartitionHoldsNoRemovedSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: 2 * minSegmentBytes})
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	if recs, err := c.TryPoll(); err != nil || len(recs) != 1 {
		t.Fatalf("TryPoll: %d records, %v", len(recs), err)
	}
	if err := c.Pause(0); err != nil {
		t.Fatal(err)
	}
	for range 400 { // several segments: the first ones removed
		if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	first := segmentPath(partDir(l, "t", 0), 0, logExt)
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment 0 still there (%v): retention did not remove it", err)
	}
	for range 3 {
		if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
			t.Fatalf("TryPoll while paused: %d records, %v", len(recs), err)
		}
	}
	// No removed file stays open: the segments' .log, .index and
	// .timeindex. A background checkpoint may be syncing one of them
	// still (TestCheckpointSyncUnderRetention): it closes it when done.
	settleCheckpoints(l)
	for _, f := range removedFilesOpen(t, dir) {
		t.Errorf("a removed file is still open: %s", f)
	}
	if err := c.Resume(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("TryPoll after Resume: %v, want ErrOutOfRange (its next record was removed)", err)
	}
}
