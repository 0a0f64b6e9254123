package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// partStats returns topic/partition's entry of st.
func partStats(t testing.TB, st Stats, topic string, partition int) PartitionStats {
	t.Helper()
	for _, p := range st.Partitions {
		if p.Topic == topic && p.Partition == partition {
			return p
		}
	}
	t.Fatalf("no stats for %s/%d in %+v", topic, partition, st.Partitions)
	return PartitionStats{}
}

// frameBytes sums the sizes of partition's record frames, as Dump finds
// them on disk.
func frameBytes(t testing.TB, l *Log, topic string, partition int) (frames, bytes int64) {
	t.Helper()
	for f, err := range l.Dump(topic, partition, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == "records" {
			frames++
			bytes += f.Size
		}
	}
	return frames, bytes
}

// TestStatsPartition checks the per-partition entries against what was
// written and read: the counters exactly, the gauges against the files.
func TestStatsPartition(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p, err := l.Producer("t", &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := p.Send(ctx, Record{Value: []byte{byte(i), 1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	recs := readAll(t, l, "t", 5, &ConsumerOptions{Partitions: []int{0}, Start: Earliest})

	st := l.Stats()
	if st.Err != nil {
		t.Fatal(st.Err)
	}
	frames, bytes := frameBytes(t, l, "t", 0)
	p0 := partStats(t, st, "t", 0)
	if p0.RecordsAppended != 5 || p0.FramesAppended != frames || p0.BytesAppended != bytes {
		t.Errorf("appended %d records, %d frames, %d bytes; want 5, %d, %d", p0.RecordsAppended, p0.FramesAppended, p0.BytesAppended, frames, bytes)
	}
	if len(recs) != 5 || p0.RecordsRead != 5 || p0.BytesRead != bytes {
		t.Errorf("read %d records, %d bytes; want 5, %d", p0.RecordsRead, p0.BytesRead, bytes)
	}
	if p0.StartOffset != 0 || p0.EndOffset != 5 || p0.Segments != 1 || p0.Bytes != bytes {
		t.Errorf("start %d end %d segments %d bytes %d; want 0 5 1 %d", p0.StartOffset, p0.EndOffset, p0.Segments, p0.Bytes, bytes)
	}
	// Durable mode acknowledges a Send only once an fdatasync covers it.
	if p0.DurableOffset != 5 || p0.DurableLag != 0 {
		t.Errorf("durable offset %d lag %d; want 5 0", p0.DurableOffset, p0.DurableLag)
	}
	if p0.Syncs.Count < 1 || p0.Syncs.Count != st.Syncs || p0.Syncs.Sum <= 0 {
		t.Errorf("fsync histogram count %d sum %v; want ≥ 1 and equal to Stats.Syncs %d", p0.Syncs.Count, p0.Syncs.Sum, st.Syncs)
	}
	if last := p0.Syncs.Buckets[len(p0.Syncs.Buckets)-1]; last.UpperBound != 10*time.Second || last.Count > p0.Syncs.Count {
		t.Errorf("last bucket %+v, count %d", last, p0.Syncs.Count)
	}
	if st.RecordsWritten != 5 || st.FramesWritten != frames || st.BytesWritten != bytes || st.RecordsRead != 5 || st.BytesRead != bytes {
		t.Errorf("Log totals %+v", st)
	}

	p1 := partStats(t, st, "t", 1)
	if p1.RecordsAppended != 0 || p1.Syncs.Count != 0 || p1.EndOffset != 0 || p1.DurableLag != 0 || p1.Err != nil {
		t.Errorf("untouched partition %+v", p1)
	}
}

// TestStatsDurableLag checks that Buffered mode's unsynced records show as
// durable lag until a sync covers them.
func TestStatsDurableLag(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if _, err := p.Send(ctx, Record{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	p0 := partStats(t, l.Stats(), "t", 0)
	if p0.EndOffset != 7 || p0.DurableOffset != 0 || p0.DurableLag != 7 || p0.Syncs.Count != 0 {
		t.Fatalf("before a sync: end %d durable %d lag %d syncs %d; want 7 0 7 0", p0.EndOffset, p0.DurableOffset, p0.DurableLag, p0.Syncs.Count)
	}
	l.Close()

	// Another Log sees what the first left: Close synced everything.
	l2 := openTest(t, l.Dir(), &Options{Durability: Buffered})
	p0 = partStats(t, l2.Stats(), "t", 0)
	if p0.EndOffset != 7 || p0.DurableLag != 0 || p0.RecordsAppended != 0 {
		t.Fatalf("after Close: end %d lag %d appended %d; want 7 0 0", p0.EndOffset, p0.DurableLag, p0.RecordsAppended)
	}
}

// TestStatsGroups checks a group's entry: members, rebalances, committed
// offsets and lag, and the consumers' poll counters.
func TestStatsGroups(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := p.Send(ctx, Record{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest, DisableAutoCommit: true})
	pollUntil(t, c, 10, time.Minute)
	if err := c.CommitOffsets(ctx, map[int]int64{0: 4}); err != nil {
		t.Fatal(err)
	}
	// A Poll that finds nothing sleeps until its ctx ends: a wait, not a
	// wake-up. It is ended once counted asleep: a deadline that passed
	// before Poll looked (a busy machine) would return it unslept.
	tctx, cancel := context.WithCancel(ctx)
	polled := make(chan int, 1)
	go func() {
		recs, err := c.Poll(tctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Poll at the end: %v", err)
		}
		polled <- len(recs)
	}()
	waitFor(t, patience, "Poll to fall asleep", func() bool { return c.metas[0].sleeping.count().Load() > 0 })
	cancel()
	if n := <-polled; n != 0 {
		t.Fatalf("Poll at the end: %d records", n)
	}

	st := l.Stats()
	if st.Err != nil {
		t.Fatal(st.Err)
	}
	if len(st.Groups) != 1 {
		t.Fatalf("groups %+v", st.Groups)
	}
	g := st.Groups[0]
	if g.Group != "g" || g.Topic != "t" || g.Members != 1 || g.Rebalances != 1 || len(g.Partitions) != 1 {
		t.Fatalf("group %+v; want g/t, 1 member, 1 rebalance (its assignment), 1 partition", g)
	}
	if gp := g.Partitions[0]; gp.Committed != 4 || gp.End != 10 || gp.Lag != 6 {
		t.Fatalf("partition %+v; want committed 4, end 10, lag 6", gp)
	}
	if st.RecordsRead != 10 || st.PollWaits < 1 || st.Wakeups > st.PollWaits {
		t.Fatalf("read %d, poll waits %d, wake-ups %d", st.RecordsRead, st.PollWaits, st.Wakeups)
	}
	c.Close()
	st = l.Stats()
	if g := st.Groups[0]; g.Members != 0 || g.Rebalances != 2 || g.Partitions[0].Committed != 4 {
		t.Fatalf("after Close: %+v; want no members, 2 rebalances (the revoke), committed 4", g)
	}
}

// TestStatsGroupOneDamagedTopic: a group whose offsets file for one topic
// is damaged has its other topics' entries, and an entry for that topic
// whose Err names the topic and the file, as does Stats.Err; the group
// had one entry, without a topic, and no other.
func TestStatsGroupOneDamagedTopic(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	ctx := context.Background()
	for _, topic := range []string{"a", "t"} {
		mustCreate(t, l, topic, TopicConfig{Partitions: 2})
		produceSpread(t, l, topic, 2, 10)
		if _, err := l.ResetGroupOffsets(ctx, "g", topic, AtOffset(3), nil); err != nil {
			t.Fatal(err)
		}
	}
	path := offsetsPath(l.Dir(), "g", "a")
	flipByte(t, path, 12) // in the header
	st := l.Stats()
	if len(st.Groups) != 2 {
		t.Fatalf("groups %+v, want g/a (its error) and g/t", st.Groups)
	}
	a, tt := st.Groups[0], st.Groups[1]
	var gte *GroupTopicError
	var ce *CorruptError
	if a.Group != "g" || a.Topic != "a" || !errors.As(a.Err, &gte) || gte.Topic != "a" || !errors.As(a.Err, &ce) || ce.Path != path {
		t.Errorf("entry %+v; want g/a with an error naming topic a and %s", a, path)
	}
	if tt.Group != "g" || tt.Topic != "t" || tt.Err != nil || len(tt.Partitions) != 2 {
		t.Fatalf("entry %+v; want g/t, 2 partitions, no error", tt)
	}
	for _, gp := range tt.Partitions {
		if gp.Committed != 3 || gp.End != 10 || gp.Lag != 7 {
			t.Errorf("g/t/%d: %+v, want committed 3, end 10, lag 7", gp.Partition, gp)
		}
	}
	if !errors.As(st.Err, &ce) || ce.Path != path {
		t.Errorf("Stats.Err %v; want it to name %s", st.Err, path)
	}
}

// TestStatsWakeup checks that a Poll woken by an append counts a wake-up.
func TestStatsWakeup(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	c := mustConsumer(t, l, "t", nil)
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Poll(ctx)
		done <- err
	}()
	// Send only once the Poll is counted asleep: a send before that could
	// be found by the Poll's first read, and it would never sleep.
	waitFor(t, patience, "Poll to fall asleep", func() bool { return c.metas[0].sleeping.count().Load() > 0 })
	if _, err := p.Send(ctx, Record{Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.PollWaits < 1 || st.Wakeups < 1 {
		t.Fatalf("poll waits %d, wake-ups %d; want ≥ 1 each", st.PollWaits, st.Wakeups)
	}
}

func TestStatsClosed(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	l.Close()
	if st := l.Stats(); !errors.Is(st.Err, ErrClosed) {
		t.Fatalf("Stats after Close: Err %v, want ErrClosed", st.Err)
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := Histogram{Count: 10, Sum: time.Second, Buckets: []Bucket{
		{UpperBound: 10 * time.Millisecond, Count: 5},
		{UpperBound: 20 * time.Millisecond, Count: 9},
		{UpperBound: 40 * time.Millisecond, Count: 10},
	}}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 10 * time.Millisecond}, // rank 5: the top of the first bucket
		{0.7, 15 * time.Millisecond}, // rank 7: halfway through the second
		{0.95, 30 * time.Millisecond},
		{1, 40 * time.Millisecond},
	} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (Histogram{}).Quantile(0.99); got != 0 {
		t.Errorf("empty Quantile = %v", got)
	}
}

// BenchmarkStats measures a Stats call on a directory of 4 topics of 16
// partitions, each with a few segments, and 4 groups with committed
// offsets: the cost a scrape pays, in proportion to partitions and groups.
func BenchmarkStats(b *testing.B) {
	ctx := context.Background()
	l := openTest(b, b.TempDir(), &Options{Durability: Buffered})
	for ti := range 4 {
		name := fmt.Sprintf("t%d", ti)
		mustCreate(b, l, name, TopicConfig{Partitions: 16, SegmentBytes: 64 << 10})
		p, err := l.Producer(name, &ProducerOptions{Partitioner: ManualPartitioner})
		if err != nil {
			b.Fatal(err)
		}
		value := make([]byte, 1000)
		for i := range 16 * 200 {
			p.SendAsync(Record{Partition: i % 16, Value: value}, nil)
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := l.ResetGroupOffsets(ctx, "g"+name, name, AtOffset(10), nil); err != nil {
			b.Fatal(err)
		}
	}
	st := l.Stats()
	if st.Err != nil || len(st.Partitions) != 64 || len(st.Groups) != 4 {
		b.Fatalf("Stats: %d partitions, %d groups, %v", len(st.Partitions), len(st.Groups), st.Err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.Stats()
	}
}

// TestStatsReadSplitFrame checks that a frame MaxPollRecords splits over
// several Polls counts its records as delivered and its bytes once.
func TestStatsReadSplitFrame(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		p.SendAsync(Record{Value: []byte("v")}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	frames, bytes := frameBytes(t, l, "t", 0)
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest, MaxPollRecords: 3})
	for got := 0; got < 10; {
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 3 {
			t.Fatalf("Poll returned %d records, MaxPollRecords is 3", len(recs))
		}
		got += len(recs)
		if p0 := partStats(t, l.Stats(), "t", 0); p0.RecordsRead != int64(got) || p0.BytesRead > bytes {
			t.Fatalf("after %d records: read %d records, %d bytes (of %d)", got, p0.RecordsRead, p0.BytesRead, bytes)
		}
	}
	if p0 := partStats(t, l.Stats(), "t", 0); p0.BytesRead != bytes || frames >= 10 {
		t.Fatalf("read %d bytes, want %d; %d frames (want fewer than records)", p0.BytesRead, bytes, frames)
	}
}

// Stats describes every group with the partitions' ends: each partition's
// end is found once a call, not once per group that has offsets for it (a
// log with thousands of groups walked each end thousands of times).
func TestStatsFindsEachEndOnce(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	const nparts, groups = 2, 20
	mustCreate(t, l, "t", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "t", nparts, 3)
	for g := range groups {
		if _, err := l.ResetGroupOffsets(ctx, fmt.Sprintf("g%d", g), "t", Earliest, nil); err != nil {
			t.Fatal(err)
		}
	}
	var walks atomic.Int64
	testHookEndWalk = func() { walks.Add(1) }
	t.Cleanup(func() { testHookEndWalk = nil })
	st := l.Stats()
	if st.Err != nil {
		t.Fatal(st.Err)
	}
	if len(st.Groups) != groups {
		t.Fatalf("%d group entries, want %d", len(st.Groups), groups)
	}
	for _, g := range st.Groups {
		for _, gp := range g.Partitions {
			if gp.End != 3 || gp.Lag != 3 {
				t.Errorf("group %s partition %d: end %d, lag %d, want 3 and 3", g.Group, gp.Partition, gp.End, gp.Lag)
			}
		}
	}
	if n := walks.Load(); n > nparts {
		t.Errorf("Stats walked to a partition's end %d times for %d groups of %d partitions, want once a partition", n, groups, nparts)
	}
}
