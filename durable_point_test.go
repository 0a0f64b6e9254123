package runnel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fillSegment sends n records of 1,000 bytes through p, durably.
func fillSegment(t *testing.T, p *Producer, n int) {
	t.Helper()
	val := bytes.Repeat([]byte("x"), 1000)
	for range n {
		if _, err := p.Send(context.Background(), Record{Value: val}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDurableSyncOfRemovedSegment: a syncer reads the published tail, and
// before it fdatasyncs the tail's segment, other writers roll past it and
// retention removes it. The segment is gone with everything in it; that
// is no failed fdatasync, and the partition must go on taking appends.
// (The race is set up by publishing the stale tail, as the syncer read it.)
func TestDurableSyncOfRemovedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1}
	l := openTest(t, dir, opts)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	pdir := filepath.Join(dir, "topics", "t", "0")
	p := mustProducer(t, l, "t", nil)
	fillSegment(t, p, 150) // three segments of 64 KiB or more
	part := l.topics["t"].parts()[0]
	bases, err := listSegments(pdir)
	if err != nil || len(bases) < 3 {
		t.Fatalf("segments %v, %v: want three or more", bases, err)
	}

	// The tail as a syncer read it: the end of segment 0, past the
	// durable point.
	fi, err := os.Stat(segmentPath(pdir, 0, logExt))
	if err != nil {
		t.Fatal(err)
	}
	stale := logPos{base: 0, pos: fi.Size(), next: bases[1]}
	cur, curTS, ok := part.shm.heldTail()
	if !ok {
		t.Fatal("the published tail does not check out")
	}
	if err := part.setDurablePoint(currentBootID, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	part.shm.publishTail(stale, 0)
	for _, ext := range []string{logExt, indexExt, timeIndexExt} {
		if err := os.Remove(segmentPath(pdir, 0, ext)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if _, err := part.syncShared(context.Background(), stale); err != nil {
		t.Fatalf("syncing up to a tail in a segment retention removed: %v", err)
	}
	part.shm.publishTail(cur, curTS)
	if _, err := p.Send(context.Background(), Record{Value: []byte("after")}); err != nil {
		t.Fatalf("Send after the sync: %v", err)
	}
}

// TestSyncLockFreedWakesWaiter: a process whose frame no fdatasync covered
// yet finds the sync lock taken after its holder's last wake-up and sleeps
// on the durable sequence. The holder letting the lock go wakes it, so it
// syncs its frame itself at once, not after syncerCheck (stretched to an
// hour here, far past the test's own bound).
func TestSyncLockFreedWakesWaiter(t *testing.T) {
	check := syncerCheck
	syncerCheck = time.Hour
	t.Cleanup(func() { syncerCheck = check })
	dir := t.TempDir()
	opts := &Options{Durability: Buffered}
	holder := openTest(t, dir, opts)
	mustCreate(t, holder, "t", TopicConfig{Partitions: 1})
	waiter := openTest(t, dir, opts)
	for _, l := range []*Log{holder, waiter} {
		if _, err := mustProducer(t, l, "t", nil).Send(context.Background(), Record{Value: []byte("committed, not synced")}); err != nil {
			t.Fatal(err)
		}
	}
	hp, wp := holder.topics["t"].parts()[0], waiter.topics["t"].parts()[0]
	hp.syncMu.Lock()
	if err := hp.meta.Lock(context.Background(), syncLockByte); err != nil {
		t.Fatal(err)
	}
	want, ok := wp.shm.tail()
	if !ok {
		t.Fatal("no published tail")
	}
	synced := make(chan error, 1)
	go func() {
		_, err := wp.syncShared(context.Background(), want)
		synced <- err
	}()
	for deadline := time.Now().Add(time.Minute); waiter.stats.syncWaits.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never waited for the sync lock")
		}
	}
	hp.unlockSync()
	select {
	case err := <-synced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiter still sleeps a minute after the sync lock was let go")
	}
	if d, ok := wp.shm.durableNext(); !ok || d < want.next {
		t.Fatalf("durable up to %d (%v), want %d", d, ok, want.next)
	}
}
