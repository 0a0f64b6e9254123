package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Calls with a ctx (and calls without one that have no reason to wait)
// must not wait, through this Log's append mutex, for a writer lock that a
// stopped process keeps.

// stoppedWriterLockHolder starts a child process that takes partition p's
// writer lock and stops it with SIGSTOP, as Ctrl-Z or a debugger stops a
// process: it keeps the lock until the test ends and kills it. This Log
// lets the writer lock it kept from its last append go first.
func stoppedWriterLockHolder(t *testing.T, l *Log, topic string, p int) *exec.Cmd {
	t.Helper()
	l.topics[topic].parts()[p].stopHold()
	cmd, _ := holdInChild(t, filepath.Join(partDir(l, topic, p), metaFileName), writerLockByte)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// writerStuck sends a record to partition p and waits until its writer
// waits for the writer lock, which it does holding the partition's append
// mutex (wmu).
func writerStuck(t *testing.T, l *Log, topic string, p int) {
	t.Helper()
	prod := mustProducer(t, l, topic, &ProducerOptions{Partitioner: ManualPartitioner})
	prod.SendAsync(Record{Partition: p, Value: []byte("stuck")}, nil)
	part := l.topics[topic].parts()[p]
	waitFor(t, 30*time.Second, "the writer to wait for the writer lock", func() bool {
		return part.shm.waiting.count().Load() > 0
	})
}

// stuckTopic makes topic "t" in dir, of one partition with one record,
// whose writer in the returned Log waits for the writer lock a stopped
// process holds, and that process.
func stuckTopic(t *testing.T, dir string, o *Options) (*Log, *exec.Cmd) {
	t.Helper()
	l := openTest(t, dir, o)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	prod := mustProducer(t, l, "t", nil)
	if _, err := prod.Send(context.Background(), Record{Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	holder := stoppedWriterLockHolder(t, l, "t", 0)
	writerStuck(t, l, "t", 0)
	return l, holder
}

// AlterTopicContext returns when its ctx ends even while this Log's
// writer waits for a lock a stopped process holds: the change is made
// (topic.json written), and this Log uses it from its next retention
// check, as other processes do.
func TestAlterTopicContextBehindStoppedWriter(t *testing.T) {
	dir := t.TempDir()
	l, holder := stuckTopic(t, dir, &Options{Durability: Buffered, RetentionInterval: 10 * time.Millisecond})
	err := inTime(t, "AlterTopicContext", func() error {
		return l.AlterTopicContext(cancelSoon(), "t", func(c *TopicConfig) { c.RetentionBytes = 1 << 30 })
	})
	if err != nil {
		t.Fatalf("AlterTopicContext behind a stopped writer: %v, want nil (the change is written)", err)
	}
	cfg, err := l.readTopicConfig("t")
	if err != nil || cfg.RetentionBytes != 1<<30 {
		t.Fatalf("topic.json after AlterTopicContext: %+v, %v", cfg, err)
	}
	tp := l.topics["t"]
	holder.Process.Kill()
	waitFor(t, 30*time.Second, "this Log to use the new config", func() bool {
		return l.topicConfig(tp).RetentionBytes == 1<<30
	})
}

// DescribeTopic, which has no ctx, does not wait for this Log's writer to
// get a lock a stopped process holds, even when another process altered
// the topic and this Log's config is out of date: it reports the config
// on disk and leaves bringing this Log's up to date to its retention
// check.
func TestDescribeTopicBehindStoppedWriter(t *testing.T) {
	dir := t.TempDir()
	l, _ := stuckTopic(t, dir, &Options{Durability: Buffered})
	admin := openTest(t, dir, nil)
	if err := admin.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = 1 << 30 }); err != nil {
		t.Fatal(err)
	}
	var info TopicInfo
	err := inTime(t, "DescribeTopic", func() (err error) {
		info, err = l.DescribeTopic("t")
		return err
	})
	if err != nil || info.Config.RetentionBytes != 1<<30 {
		t.Fatalf("DescribeTopic behind a stopped writer: %+v, %v", info.Config, err)
	}
}

// stoppedSyncLockHolder starts a child process that takes partition p's
// sync lock, as a process does around its fdatasync, and stops it with
// SIGSTOP, as Ctrl-Z can catch a process that syncs often (a Durable
// producer): it keeps the lock until the test ends and kills it.
func stoppedSyncLockHolder(t *testing.T, l *Log, topic string, p int) *exec.Cmd {
	t.Helper()
	cmd, _ := holdInChild(t, filepath.Join(partDir(l, topic, p), metaFileName), syncLockByte)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// EnforceRetention removes what it should, and returns, while a stopped
// process holds the partition's sync lock (caught by Ctrl-Z in its
// fdatasync): the move of the durable point past the removed segments
// waited for the lock with no bound and no ctx. It is left for a lock
// that is taken: a point in a removed segment costs the next sync a
// directory sync at most.
func TestEnforceRetentionBehindStoppedSync(t *testing.T) {
	for _, mode := range []Durability{Durable, Buffered} {
		t.Run(mode.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: mode, MaxBatchBytes: retBatch, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: minSegmentBytes})
			retProduce(t, l, "t", 0, 200, 1000, nil)
			holder := stoppedSyncLockHolder(t, l, "t", 0)
			err := inTime(t, "EnforceRetention", func() error { return l.EnforceRetention(context.Background()) })
			if err != nil {
				t.Fatalf("EnforceRetention behind a stopped sync lock holder: %v", err)
			}
			info, err := l.DescribeTopic("t")
			if err != nil || info.Partitions[0].StartOffset == 0 || info.Partitions[0].NextOffset != 200 {
				t.Fatalf("after EnforceRetention: %+v, %v, want segments removed", info.Partitions, err)
			}
			// The syncs once the holder is gone cover what is left.
			holder.Process.Kill()
			holder.Wait()
			p := mustProducer(t, l, "t", nil)
			if _, err := p.Send(context.Background(), Record{Value: []byte("after")}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil { // syncs, in every mode
				t.Fatal(err)
			}
			l = openTest(t, l.Dir(), nil)
			if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
				t.Errorf("Verify: %v, %v", rep.Problems, err)
			}
		})
	}
}

// The calls that finish a dead DeleteTopic's delete when they meet its
// mark (DescribeTopic, Topics, a new consumer's) do not wait for a writer
// lock a stopped process holds: they report the topic gone and leave the
// delete to whoever meets it once the lock is free.
func TestDeadDeleteBehindStoppedWriter(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "x", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "x", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	cmd := mpChild("topic-delete-paused", "RUNNEL_ADMIN_DIR="+dir, "RUNNEL_ADMIN_TOPIC=x")
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	if line := mpExpectLine(t, mpLines(stdout), patience); line != "marked" {
		t.Fatalf("child said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	holder := stoppedWriterLockHolder(t, l, "x", 0)

	fresh := openTest(t, dir, nil)
	err := inTime(t, "DescribeTopic", func() error { _, err := fresh.DescribeTopic("x"); return err })
	if !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DescribeTopic: %v, want ErrTopicNotFound", err)
	}
	err = inTime(t, "Topics", func() error {
		names, err := fresh.Topics()
		if err == nil && slices.Contains(names, "x") {
			err = fmt.Errorf("lists %v", names)
		}
		return err
	})
	if err != nil {
		t.Errorf("Topics: %v", err)
	}
	err = inTime(t, "ConsumerContext", func() error { _, err := fresh.ConsumerContext(context.Background(), "x", nil); return err })
	if !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("ConsumerContext: %v, want ErrTopicNotFound", err)
	}

	holder.Process.Kill()
	holder.Wait()
	if _, err := fresh.Topics(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the topic's directory once the lock is free: %v, want the delete finished", err)
	}
}

// The Log's checkpoints go on past a partition whose writer waits for a
// writer lock a stopped process holds: the checkpointer, one for the Log,
// waited for that partition's append mutex with no bound, and the
// partitions queued after it got no checkpoint for as long.
func TestCheckpointPastStoppedWriter(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for part := range 2 {
		if _, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	stoppedWriterLockHolder(t, l, "t", 0)
	writerStuck(t, l, "t", 0)
	parts := l.topics["t"].parts()
	for _, part := range parts { // as noteAppended asks, the stuck one first
		part.ckpt.queued.Store(true)
		l.ckpts.request(part)
	}
	waitFor(t, 30*time.Second, "partition 1's checkpoint", func() bool {
		cp, ok := parts[1].shm.checkpoint()
		return ok && cp.next == 1
	})
}

// The Log's retention check goes on past a partition whose writer lock a
// stopped process holds: it waited for that lock with no bound, so no
// partition after it (of the topic, or of the topics after it) had its
// segments removed for as long as the process was stopped.
func TestRetentionPassPastStoppedWriter(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: 10 * time.Millisecond})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for i := range 400 {
		p.SendAsync(Record{Partition: i % 2, Value: payload(i, 1000)}, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stoppedWriterLockHolder(t, l, "t", 0)
	admin := openTest(t, dir, nil)
	if err := admin.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "partition 1's segments removed", func() bool {
		info, err := admin.DescribeTopic("t")
		return err == nil && info.Partitions[1].StartOffset > 0
	})
}

// stoppedBytesHolder starts a child process that takes the locks on the n
// bytes of path from off and stops it with SIGSTOP: it keeps them until
// the test ends and kills it.
func stoppedBytesHolder(t *testing.T, path string, off, n int64) *exec.Cmd {
	t.Helper()
	cmd, _ := holdBytesInChild(t, path, off, n)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A member that left for not polling (MaxPollInterval) and finds, at its
// next Poll, every member slot and the admin lock held by a stopped
// process (a DeleteGroupOffsets caught by Ctrl-Z in the moment it holds
// them all) returns with Poll's ctx: its join waited for the admin lock
// with no bound. The member stays out of the group and joins at a Poll
// once the locks are free; a TryPoll meanwhile waits for nothing and
// returns no records.
func TestRejoinBehindStoppedGroupAdmin(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 3)
	c := mustConsumer(t, l, "t", &ConsumerOptions{
		Group: "g", MaxPollInterval: 50 * time.Millisecond, MaxPollRecords: 1, DisableAutoCommit: true,
	})
	if recs := pollSome(t, c); len(recs) != 1 {
		t.Fatalf("first Poll: %d records", len(recs))
	}
	waitFor(t, patience, "the member to expire", c.expiredNow)

	path := c.g.m.off.lf.path
	admin := stoppedBytesHolder(t, path, adminLockOff, 1)
	slots := stoppedBytesHolder(t, path, memberLock(0), maxMembers)
	err := inTime(t, "Poll", func() error { _, err := c.Poll(cancelSoon()); return err })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll of an expired member behind a stopped admin call: %v, want context.Canceled", err)
	}
	err = inTime(t, "TryPoll", func() error {
		recs, err := c.TryPoll()
		if err == nil && len(recs) > 0 {
			err = fmt.Errorf("%d records", len(recs))
		}
		return err
	})
	if err != nil || !c.expiredNow() {
		t.Fatalf("TryPoll of an expired member behind a stopped admin call: %v (expired %v), want no records and no error", err, c.expiredNow())
	}

	admin.Process.Kill()
	slots.Process.Kill()
	admin.Wait()
	slots.Wait()
	// Joined again: it owns the partition, read from the group's commit.
	if recs := pollSome(t, c); recs[0].Offset != 0 {
		t.Errorf("Poll once the locks are free: offset %d, want 0 (nothing was committed)", recs[0].Offset)
	}
}

// A writer that recovers the partition (its checkpoint torn, as a writer
// killed while it rewrote it leaves it, or of another boot) appends, and
// Send returns, while another process holds the sync lock without
// letting it go (a Durable producer stopped with Ctrl-Z in its
// fdatasync): recovery's move of the durable point to the tail waited
// for that lock with no bound, holding the writer lock, past Send's ctx.
// The point is left as it is when the lock is taken: a point behind the
// tail, or of another boot, only makes the next sync cover more.
func TestRecoveryBehindStoppedSync(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	for i := range 3 {
		if _, err := p.Send(context.Background(), Record{Value: payload(i, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(dir, "topics", "t", "0", metaFileName)
	flipByte(t, meta, metaCkptSumOff) // a torn checkpoint
	l = openTest(t, dir, &Options{Durability: Buffered})
	p = mustProducer(t, l, "t", nil)
	// (Killed at the end before the Log closes, which waits for its writer.)
	cmd, _ := holdInChild(t, meta, syncLockByte)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// No ctx bounds the Send: what proves it no longer waits for the
	// stopped holder is that it returns at all (inTime), and a ctx that
	// ended before a loaded machine finished the recovery would fail it.
	err := inTime(t, "Send", func() error {
		_, err := p.Send(context.Background(), Record{Value: []byte("after")})
		return err
	})
	if err != nil {
		t.Fatalf("Send that recovers behind a stopped sync lock holder: %v", err)
	}
	info, err := l.DescribeTopic("t")
	if err != nil || info.Partitions[0].NextOffset != 4 {
		t.Fatalf("after the recovery: %+v, %v, want 4 records", info.Partitions, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := l.Close(); err != nil { // syncs
		t.Fatal(err)
	}
	l = openTest(t, dir, nil)
	if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %v", rep.Problems, err)
	}
}
