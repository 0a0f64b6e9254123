package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// Calls that wait for another process get a bound: a lock held by a
// holder of its own (as another process would hold it) must not keep them
// past their ctx.

// holdWriterLock takes partition p's writer lock as another process would,
// and returns its release. It waits for the lock: the Log's background
// checkpoint may hold it for a moment (under load, the full suite's TryLock
// here once found it so).
func holdWriterLock(t *testing.T, l *Log, topic string, p int) (release func()) {
	t.Helper()
	lf := openTestLock(t, filepath.Join(partDir(l, topic, p), metaFileName))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := lf.Lock(ctx, writerLockByte); err != nil {
		t.Fatalf("taking the writer lock: %v", err)
	}
	return func() { mustUnlock(t, lf, writerLockByte) }
}

// waitQueued waits until a batch of partition p was taken for writing: its
// writer is on its way to the writer lock.
func waitQueued(t *testing.T, l *Log, topic string, p int) {
	t.Helper()
	part := l.topics[topic].parts()[p]
	waitFor(t, 10*time.Second, "the writer to take the batch", func() bool {
		part.mu.Lock()
		defer part.mu.Unlock()
		return part.writing
	})
}

// cancelSoon returns a ctx that ends a moment after the call it is passed
// to has begun: long enough, usually, for that call to be waiting.
func cancelSoon() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	return ctx
}

// inTime runs f, failing the test if it has not returned after a generous
// bound: the call it makes would otherwise wait for ever.
func inTime(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still waiting after 20s", what)
		return nil
	}
}

func TestLogCloseContext(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testOptions(t, &Options{Durability: Buffered}))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	if _, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte("free")}); err != nil {
		t.Fatal(err)
	}
	release := holdWriterLock(t, l, "t", 0)
	acked := make(chan error, 1)
	p.SendAsync(Record{Partition: 0, Value: []byte("stuck")}, func(_ Position, err error) { acked <- err })
	waitQueued(t, l, "t", 0)

	err = inTime(t, "Log.CloseContext", func() error { return l.CloseContext(cancelSoon()) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CloseContext with a writer lock held elsewhere: %v, want context.Canceled", err)
	}
	if err := <-acked; !errors.Is(err, ErrClosed) {
		t.Errorf("the queued record: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after CloseContext: %v, want the first call's result", err)
	}
	release()

	// The record that failed was never written, not even once the lock
	// was free; the other partition's is there.
	l2 := openTest(t, dir, &Options{Durability: Buffered})
	info, err := l2.DescribeTopic("t")
	if err != nil || info.Partitions[0].NextOffset != 0 || info.Partitions[1].NextOffset != 1 {
		t.Errorf("after the bounded close: %+v, %v", info.Partitions, err)
	}

	// A ctx that is done already costs nothing when no lock is held. (A
	// fresh directory: the first Log's abandoned lock wait may still take
	// and give back the lock above for a moment.)
	l3 := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l3, "t", TopicConfig{Partitions: 1})
	p3 := mustProducer(t, l3, "t", nil)
	acked = make(chan error, 1)
	p3.SendAsync(Record{Value: []byte("free")}, func(_ Position, err error) { acked <- err })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l3.CloseContext(ctx); err != nil {
		t.Errorf("CloseContext with nothing to wait for: %v", err)
	}
	if err := <-acked; err != nil {
		t.Errorf("a record with its lock free, at a bounded close: %v", err)
	}
}

func TestProducerCloseContext(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	release := holdWriterLock(t, l, "t", 0)
	acked := make(chan error, 1)
	p.SendAsync(Record{Value: []byte("queued")}, func(_ Position, err error) { acked <- err })
	waitQueued(t, l, "t", 0)
	err := inTime(t, "Producer.CloseContext", func() error { return p.CloseContext(cancelSoon()) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CloseContext: %v, want context.Canceled", err)
	}
	if _, err := p.Send(context.Background(), Record{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after CloseContext: %v, want ErrClosed", err)
	}
	// The record stays queued, and goes out once the lock is free.
	release()
	if err := <-acked; err != nil {
		t.Errorf("the queued record: %v", err)
	}
}

func TestDeleteTopicContext(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 3})
	release := holdWriterLock(t, l, "t", 1)
	err := inTime(t, "DeleteTopicContext", func() error { return l.DeleteTopicContext(cancelSoon(), "t") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteTopicContext with a writer lock held elsewhere: %v, want context.Canceled", err)
	}
	release()
	// Untouched: no partition refuses appends, none was flagged.
	for p := range 3 {
		m, err := openMeta(partDir(l, "t", p))
		if err != nil {
			t.Fatal(err)
		}
		if m.deleted() {
			t.Errorf("partition %d flagged deleted by a delete that gave up", p)
		}
		m.close()
	}
	prod := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for p := range 3 {
		if _, err := prod.Send(context.Background(), Record{Partition: p}); err != nil {
			t.Errorf("Send to partition %d after a delete that gave up: %v", p, err)
		}
	}
	if err := l.DeleteTopicContext(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Send(context.Background(), Record{}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Send after the delete: %v, want ErrTopicNotFound", err)
	}
}

// AlterTopicContext, DeleteTopicContext and CreateTopicContext wait for
// another caller's admin lock on the name only until ctx ends, and change
// nothing then.
func TestTopicAdminContext(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	before, err := l.DescribeTopic("t")
	if err != nil {
		t.Fatal(err)
	}
	// Another caller (another process, as far as the lock can tell)
	// holds the name's admin lock.
	lf := openTestLock(t, filepath.Join(l.dir, "topics", "t"+topicLockSuffix))
	mustTryLock(t, lf, 0, true)
	err = inTime(t, "AlterTopicContext", func() error {
		return l.AlterTopicContext(cancelSoon(), "t", func(c *TopicConfig) { c.RetentionBytes = 12345 })
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AlterTopicContext while another admin call runs: %v, want context.Canceled", err)
	}
	err = inTime(t, "DeleteTopicContext", func() error { return l.DeleteTopicContext(cancelSoon(), "t") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteTopicContext while another admin call runs: %v, want context.Canceled", err)
	}
	mustUnlock(t, lf, 0)

	lf = openTestLock(t, filepath.Join(l.dir, "topics", "new"+topicLockSuffix))
	mustTryLock(t, lf, 0, true)
	err = inTime(t, "CreateTopicContext", func() error { return l.CreateTopicContext(cancelSoon(), "new", TopicConfig{Partitions: 1}) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTopicContext while another admin call runs: %v, want context.Canceled", err)
	}
	if _, err := l.TopicConfig("new"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("the topic after a create that gave up: %v, want ErrTopicNotFound", err)
	}
	mustUnlock(t, lf, 0)
	if err := l.CreateTopicContext(context.Background(), "new", TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}

	if info, err := l.DescribeTopic("t"); err != nil || info.Config != before.Config {
		t.Errorf("config after calls that gave up: %+v, %v; want %+v", info.Config, err, before.Config)
	}
	if err := l.AlterTopicContext(context.Background(), "t", func(c *TopicConfig) { c.RetentionBytes = 12345 }); err != nil {
		t.Fatal(err)
	}
	if info, err := l.DescribeTopic("t"); err != nil || info.Config.RetentionBytes != 12345 {
		t.Errorf("config after the alter: %+v, %v", info.Config, err)
	}
}

// A Poll stuck behind a dead writer's leftovers repairs them under the
// writer lock; if a live process takes the lock first, the wait for it
// ends with Poll's ctx.
func TestPollRepairHonoursContext(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	for _, v := range []string{"a", "b"} {
		if _, err := p.Send(context.Background(), Record{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	// A writer that died between writing its frame and committing it left
	// the frame for offset 2 past the tail. (It held the writer lock, so
	// this Log had let it go, and cut its zeros past the tail.)
	l.topics["t"].parts()[0].stopHold()
	var fb frame.Builder
	fb.Add(time.Now().UnixNano(), nil, []byte("never committed"), nil)
	seg := segmentPath(partDir(l, "t", 0), 0, logExt)
	frames := segmentFrames(t, seg)
	last := frames[len(frames)-1]
	writeAt(t, seg, last.pos+last.m.Size(), fb.Finish(2))

	c := mustConsumer(t, l, "t", nil)
	if recs := pollN(t, c, 2); len(recs) != 2 {
		t.Fatalf("read %d records before the leftovers", len(recs))
	}
	var release func()
	ctx, cancel := context.WithCancel(context.Background())
	testHookRepair = func() {
		// Another process takes the lock between the probe and the repair.
		release = holdWriterLock(t, l, "t", 0)
		cancel()
	}
	t.Cleanup(func() { testHookRepair = nil })
	err := inTime(t, "Poll", func() error { _, err := c.Poll(ctx); return err })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Poll whose repair waits for a held lock: %v, want context.Canceled", err)
	}
	testHookRepair = nil
	release()
	// Now the repair runs: the leftovers are cut, and a new record comes
	// after the intact ones.
	if _, err := p.Send(context.Background(), Record{Value: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	got := pollN(t, c, 1)
	if len(got) != 1 || got[0].Val != "c" || got[0].Off != 2 {
		t.Errorf("after the repair: %+v, want c at offset 2", got)
	}
}

// EnforceRetention's wait for a writer lock ends with its ctx even when
// the Log's own retention pass is waiting for the same lock, held by
// another process that does not let it go (stopped, hung): the call
// waited behind the pass, past its ctx, for as long as the lock was held.
func TestEnforceRetentionContextBehindRetentionPass(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: 10 * time.Millisecond})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	retProduce(t, l, "t", 0, 200, 1000, nil)
	part := l.topics["t"].parts()[0]
	part.stopHold()
	release := holdWriterLock(t, l, "t", 0)
	defer release()
	// Segments to remove now: the pass waits for the writer lock. (The
	// change comes from another Log, as from another process: this Log's
	// AlterTopic waits for the pass, which may read the new config first.)
	admin := openTest(t, dir, nil)
	if err := admin.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the retention pass to wait for the writer lock", func() bool {
		return part.shm.waiting.count().Load() > 0
	})
	err := inTime(t, "EnforceRetention", func() error { return l.EnforceRetention(cancelSoon()) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("EnforceRetention behind a retention pass waiting for a held lock: %v, want context.Canceled", err)
	}
}

// Periodic mode syncs each partition within SyncInterval even while
// another partition's writer lock is held by a process that does not let
// it go (stopped with Ctrl-Z, hung) and this Log waits for it with a
// record to append there: the sync loop waited behind that partition, and
// no other partition was synced for as long as the lock was held.
func TestPeriodicSyncPastHeldPartition(t *testing.T) {
	driveSweeps(t) // no idle release, whose sync would cover partition 1 after 10 s
	l := openTest(t, t.TempDir(), &Options{Durability: Periodic, SyncInterval: 10 * time.Millisecond})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	if _, err := p.Send(context.Background(), Record{Partition: 0, Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	l.topics["t"].parts()[0].stopHold()
	release := holdWriterLock(t, l, "t", 0)
	defer release()
	p.SendAsync(Record{Partition: 0, Value: []byte("stuck")}, nil)
	waitQueued(t, l, "t", 0)
	pos, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte("free")})
	if err != nil {
		t.Fatal(err)
	}
	durable := func() int64 {
		for _, ps := range l.Stats().Partitions {
			if ps.Topic == "t" && ps.Partition == 1 {
				return ps.DurableOffset
			}
		}
		return -1
	}
	waitFor(t, 30*time.Second, "partition 1's record to be synced", func() bool { return durable() > pos.Offset })
}
