package runnel

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReleaseBehindStoppedSync: in Periodic mode a partition that
// releases its files to the budget (Options.MaxOpenFiles) or to the idle
// sweep syncs what it committed first. With a stopped process holding the
// partition's sync lock, that sync is not to be had: the partition keeps
// its files, and the Sends to other partitions that need its room, and
// the sweep, release others instead. The release had waited for the lock
// with no bound, and the Send whose admission picked the partition with
// it. Once the process goes on, the partition syncs and releases, and
// nothing it committed is lost.
func TestReleaseBehindStoppedSync(t *testing.T) {
	dir := t.TempDir()
	// A sync interval longer than the test: the releases' are the only
	// syncs.
	l := openTest(t, dir, &Options{Durability: Periodic, SyncInterval: time.Hour, RetentionInterval: -1, MaxOpenFiles: minMaxOpenFiles})
	ctx := context.Background()
	mustCreate(t, l, "stuck", TopicConfig{Partitions: 1})
	prod := mustProducer(t, l, "stuck", nil)
	stuck := l.topics["stuck"].parts()[0]
	holder := stoppedSyncLockHolder(t, l, "stuck", 0)
	for _, v := range []string{"a", "b"} {
		if _, err := prod.Send(ctx, Record{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}

	// The budget holds two appended partitions: each Send to another
	// topic past the second must release one.
	const topics, rounds = 6, 3
	var others []*Producer
	for i := range topics {
		name := fmt.Sprintf("other%d", i)
		mustCreate(t, l, name, TopicConfig{Partitions: 1})
		others = append(others, mustProducer(t, l, name, nil))
	}
	releases := l.Stats().FileReleases
	err := inTime(t, "the Sends to other partitions", func() error {
		for r := range rounds {
			for i, o := range others {
				if _, err := o.Send(ctx, Record{Value: fmt.Appendf(nil, "%d-%d", i, r)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().FileReleases; got < releases+topics {
		t.Errorf("%d file releases for %d rounds over %d partitions, want at least %d", got-releases, rounds, topics, topics)
	}
	inTime(t, "the idle sweeps", func() error {
		l.parts.sweep() // unmarks the partitions used since the last
		l.parts.sweep()
		return nil
	})
	stuck.wmu.Lock()
	open, dirty := stuck.shm != nil, stuck.dirty
	var durable int64
	if open {
		durable, _ = stuck.shm.durableNext()
	}
	stuck.wmu.Unlock()
	if !open || !dirty || durable >= 2 {
		t.Fatalf("behind the stopped sync: files open %v, unsynced %v, durable up to %d; want open, unsynced, not durable", open, dirty, durable)
	}

	// Consumers of the others read all, the process still stopped.
	for i := range topics {
		if recs := readAll(t, l, fmt.Sprintf("other%d", i), rounds, nil); string(recs[rounds-1].Value) != fmt.Sprintf("%d-%d", i, rounds-1) {
			t.Errorf("other%d's last record %q", i, recs[rounds-1].Value)
		}
	}

	if err := holder.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	holder.Process.Kill() // lets the sync lock go
	holder.Wait()
	releaseNow(t, stuck)
	meta, err := openMeta(partDir(l, "stuck", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()
	if d, ok := meta.durableNext(); !ok || d < 2 {
		t.Errorf("released: durable up to %d (%v), want 2", d, ok)
	}
	if recs := readAll(t, l, "stuck", 2, nil); string(recs[0].Value) != "a" || string(recs[1].Value) != "b" {
		t.Errorf("stuck partition holds %q, %q; want a, b", recs[0].Value, recs[1].Value)
	}
}

// TestIdleSweepBehindStoppedSync: the timer's idle sweep, which releases
// partitions one after another, releases the others while a Periodic
// partition's sync waits for a stopped process, and a bounded CloseContext,
// which stops the sweeps, returns in time. The sweep had waited for ever
// at that partition (and CloseContext for the sweep).
func TestIdleSweepBehindStoppedSync(t *testing.T) {
	saved := idleRelease
	idleRelease = time.Millisecond // read by Open
	t.Cleanup(func() { idleRelease = saved })
	dir := t.TempDir()
	l, err := Open(dir, testOptions(t, &Options{Durability: Periodic, SyncInterval: time.Hour, RetentionInterval: -1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	idleRelease = saved
	ctx := context.Background()
	// "stuck" first: the sweep comes to it before the other.
	for _, name := range []string{"stuck", "idle"} {
		mustCreate(t, l, name, TopicConfig{Partitions: 1})
	}
	stuck := mustProducer(t, l, "stuck", nil)
	holder := stoppedSyncLockHolder(t, l, "stuck", 0)
	if _, err := stuck.Send(ctx, Record{Value: []byte("unsynced")}); err != nil {
		t.Fatal(err)
	}
	if _, err := mustProducer(t, l, "idle", nil).Send(ctx, Record{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the idle sweep to release the other partition", func() bool {
		s := l.Stats()
		return s.FileReleases > 0 && s.OpenPartitions == 1
	})

	closeGivesUp(t, l)
	if recs := readAfterKill(t, holder, dir, "stuck", 1); string(recs[0].Value) != "unsynced" {
		t.Errorf("after reopening: %q, want the acknowledged record", recs[0].Value)
	}
}

// TestReleaseTryLeavesTailToOtherSyncs: a release's try at the sync
// (syncIfFree) that finds the sync lock taken leaves the partition's
// unsynced records to this Log's other syncs, the timer's and Close's:
// one that runs meanwhile must not find them synced. The try took the
// tail first and put it back once it found the lock taken, and a sync
// between found nothing to do: the timer's skipped its interval, and
// Close's returned nil with the records never synced.
func TestReleaseTryLeavesTailToOtherSyncs(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Periodic, SyncInterval: time.Hour, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	prod := mustProducer(t, l, "t", nil)
	part := l.topics["t"].parts()[0]
	if _, err := prod.Send(context.Background(), Record{Value: []byte("unsynced")}); err != nil {
		t.Fatal(err)
	}
	holder := stoppedSyncLockHolder(t, l, "t", 0)
	defer holder.Process.Kill()

	// The release's try stops where it found the lock taken.
	tried, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookSyncLockTaken = func() { once.Do(func() { close(tried); <-resume }) }
	t.Cleanup(func() { testHookSyncLockTaken = nil })
	released := make(chan bool, 1)
	go func() { released <- part.releaseFiles() }()
	inTime(t, "the release's try at the sync lock", func() error { <-tried; return nil })

	// The timer's sync, bounded as the timer bounds it.
	err := inTime(t, "the timer's sync", func() error { return part.syncNow(cancelSoon()) })
	close(resume)
	if err == nil {
		t.Error("a sync beside the release's try returned nil, behind a stopped process's sync lock")
	}
	if <-released {
		t.Error("the partition released its files behind a stopped process's sync lock")
	}
	part.wmu.Lock()
	dirty := part.dirty
	part.wmu.Unlock()
	if !dirty {
		t.Error("the unsynced records are not left for the next sync")
	}
}
