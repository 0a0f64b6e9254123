package runnel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// An idle group member's Poll wakes at every group check, to notice a
// member that died; it must not read its partitions again each time when
// nothing was appended: a job queue's workers are idle most of the time.
func TestIdleMemberLooksOnlyAfterAppends(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	// Partition 1 stays empty (a look at it lists its directory); partition
	// 0 has a record, which the member reads.
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 2})
	p, err := l.Producer("jobs", &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), Record{Partition: 0, Value: []byte("job")}); err != nil {
		t.Fatal(err)
	}
	var looks atomic.Int64
	testHookLook = func() { looks.Add(1) }
	t.Cleanup(func() { testHookLook = nil })
	opts := &ConsumerOptions{Start: Earliest, GroupCheckInterval: time.Millisecond}
	a := startMember(t, l, "jobs", "workers", "a", opts)
	waitFor(t, patience, "the record", func() bool { return len(a.records()) == 1 })

	const checks = 50
	before, sleeps, began := looks.Load(), l.Stats().PollWaits, time.Now()
	waitFor(t, patience, "the idle member's group checks", func() bool { return l.Stats().PollWaits-sleeps >= checks })
	// The Poll that returned the record may look once more before it
	// sleeps. Before, every group check looked.
	if n := looks.Load() - before; n > 1+relooks(began) {
		t.Errorf("the member read its partitions %d times over %d group checks with nothing appended", n, checks)
	}

	// A member that joins takes its share, and both read what is appended
	// next (the sleeping member's words change with its partitions).
	b := startMember(t, l, "jobs", "workers", "b", opts)
	waitFor(t, patience, "1/1", func() bool { return balanced(2, a, b) })
	produceSpread(t, l, "jobs", 2, 1)
	ends := endOffsets(t, l, "jobs")
	waitFor(t, patience, "every record", func() bool { return seenAll(ends, a, b) })
	checkExactlyOnce(t, ends, a, b)
}

// The same between calls: a consumer polled again and again with nothing
// appended (TryPoll in a loop, as the Kafka server's members drive their
// groups, or Poll with a short deadline) reads its partitions once.
func TestRepeatedPollsLookOnlyAfterAppends(t *testing.T) {
	for _, group := range []string{"", "workers"} {
		t.Run("group="+group, func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
			mustCreate(t, l, "jobs", TopicConfig{Partitions: 2})
			p := mustProducer(t, l, "jobs", &ProducerOptions{Partitioner: ManualPartitioner})
			if _, err := p.Send(context.Background(), Record{Partition: 0, Value: []byte("job")}); err != nil {
				t.Fatal(err)
			}
			c := mustConsumer(t, l, "jobs", &ConsumerOptions{Group: group, Start: Earliest})
			if recs, err := c.TryPoll(); err != nil || len(recs) != 1 {
				t.Fatalf("first TryPoll: %d records, %v", len(recs), err)
			}
			var looks atomic.Int64
			testHookLook = func() { looks.Add(1) }
			t.Cleanup(func() { testHookLook = nil })
			const polls = 50
			began := time.Now()
			for i := range polls {
				if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
					t.Fatalf("TryPoll %d with nothing appended: %d records, %v", i, len(recs), err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
				_, err := c.Poll(ctx)
				cancel()
				if err != context.DeadlineExceeded {
					t.Fatalf("Poll %d with nothing appended: %v", i, err)
				}
			}
			// The TryPoll after the one that returned the record finds
			// the end; every later call knows nothing moved since.
			if n := looks.Load(); n > 1+relooks(began) {
				t.Errorf("the consumer read its partitions %d times in %d TryPolls and Polls with nothing appended", n, 2*polls)
			}
			if _, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte("job")}); err != nil {
				t.Fatal(err)
			}
			if recs, err := c.TryPoll(); err != nil || len(recs) != 1 || recs[0].Partition != 1 {
				t.Fatalf("TryPoll after an append: %v, %v", recs, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.TryPoll(); !errors.Is(err, ErrClosed) {
				t.Fatalf("TryPoll after Log.Close: %v, want ErrClosed", err)
			}
		})
	}
}

// relooks is how many looks relookEvery allows a consumer since began,
// on top of those the test counts on.
func relooks(began time.Time) int64 {
	return int64(time.Since(began)/relookEvery) + 1
}

// A writer stopped between its commit byte and its publish (killed there,
// in another process) bumps no sequence: a consumer that already looked
// at the end, polled again and again, still finds the committed frame,
// within relookEvery, instead of waiting for an append that may never
// come. The crash loop's reader waited so for the last dead writer's
// frame.
func TestRepeatedPollsFindUnpublishedFrame(t *testing.T) {
	l, p := jobsWithWriter(t)
	if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{Start: Earliest})
	if recs, err := c.TryPoll(); err != nil || len(recs) != 1 {
		t.Fatalf("first TryPoll: %d records, %v", len(recs), err)
	}
	if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("TryPoll at the end: %d records, %v", len(recs), err)
	}

	publish := sendUnpublished(t, p, "b")
	var got []Record
	waitFor(t, patience, "the committed, unpublished record", func() bool {
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		return len(got) > 0
	})
	if len(got) != 1 || string(got[0].Value) != "b" || got[0].Offset != 1 {
		t.Errorf("read %+v, want b at offset 1", got)
	}
	publish()
}

// A Poll that comes soon after a look at the end (a TryPoll, or a Poll
// whose short deadline ended) must not wait out its whole ctx on that
// look: a writer killed between its commit byte and its publish moves no
// sequence, so only another look finds its frame, as a Poll's own look
// would have before looks were skipped.
func TestPollAfterLookFindsUnpublishedFrame(t *testing.T) {
	l, p := jobsWithWriter(t)
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{Start: Earliest})
	if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("TryPoll of the empty topic: %d records, %v", len(recs), err)
	}

	publish := sendUnpublished(t, p, "b")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	recs, err := c.Poll(ctx)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "b" {
		t.Errorf("Poll: %+v, %v; want b", recs, err)
	}
	if ctx.Err() != nil {
		t.Errorf("Poll waited %v, all its ctx allowed, for the committed record", patience)
	}
	publish()
}

// jobsWithWriter makes topic jobs of one partition in l, and p, a
// producer of it in another Log, as another process's.
func jobsWithWriter(t *testing.T) (l *Log, p *Producer) {
	t.Helper()
	dir := t.TempDir()
	l = openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 1})
	writer := openTest(t, dir, &Options{Durability: Buffered})
	return l, mustProducer(t, writer, "jobs", nil)
}

// sendUnpublished sends value through p and holds the write between its
// commit byte and its publish, as a writer killed there leaves it: the
// frame is committed, and no sequence moved. publish lets the write end.
func sendUnpublished(t *testing.T, p *Producer, value string) (publish func()) {
	t.Helper()
	committed, release := make(chan struct{}), make(chan struct{})
	testHookBeforePublish = func() {
		close(committed)
		<-release
	}
	t.Cleanup(func() { testHookBeforePublish = nil })
	sent := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), Record{Value: []byte(value)})
		sent <- err
	}()
	<-committed
	return func() {
		close(release)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
}

// A Poll asleep at the end finds the frame of a writer killed between its
// commit byte and its publish, which wakes no one, at its next look, due
// relookEvery after the last, as a group member's Poll does at a group
// check; before, a consumer outside a group slept until the next append.
func TestSleepingPollFindsUnpublishedFrame(t *testing.T) {
	l, p := jobsWithWriter(t)
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{Start: Earliest})
	meta := c.metas[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := pollAsync(ctx, c)
	waitFor(t, patience, "Poll to fall asleep", func() bool { return meta.sleeping.count().Load() > 0 })
	publish := sendUnpublished(t, p, "b")
	defer publish()
	select {
	case got := <-done:
		if got.err != nil || len(got.recs) != 1 || string(got.recs[0].Value) != "b" {
			t.Errorf("Poll: %+v, %v; want b", got.recs, got.err)
		}
	case <-time.After(patience):
		cancel()
		<-done
		t.Errorf("a sleeping Poll did not find the committed record in %v", patience)
	}
}
