package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// countSyncs counts, until the test ends, the fdatasyncs that ended well
// of the file at path, and the fsyncs of directory dir.
func countSyncs(t *testing.T, path, dir string) (fileSyncs, dirSyncs *atomic.Int64) {
	fileSyncs, dirSyncs = new(atomic.Int64), new(atomic.Int64)
	obs := func(e syncEvent) {
		if !e.done || e.err != nil {
			return
		}
		switch e.kind {
		case syncData:
			if p, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", e.fd)); p == path {
				fileSyncs.Add(1)
			}
		case syncDirectory:
			if e.path == dir {
				dirSyncs.Add(1)
			}
		}
	}
	syncObserver.Store(&obs)
	t.Cleanup(func() { syncObserver.Store(nil) })
	return fileSyncs, dirSyncs
}

// TestDurablePointCoversSealedSegment: process C's frame F waits in
// segment 0 for a shared fdatasync while another process syncs; a roller
// seals segment 0 and dies before its fdatasync of it; a writer B follows
// the seal and appends in the next segment. The sync that then covers B's
// frame must fdatasync segment 0 too before F is acknowledged durable:
// the durable point vouches for every frame before it, whoever wrote them.
func TestDurablePointCoversSealedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1}
	lc := openTest(t, dir, opts) // process C: its frame F is the one at stake
	mustCreate(t, lc, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	lb := openTest(t, dir, opts) // process B: the writer after the dead roller
	pdir := filepath.Join(dir, "topics", "t", "0")
	seg0 := segmentPath(pdir, 0, logExt)
	seg0Syncs, _ := countSyncs(t, seg0, pdir)

	pc := mustProducer(t, lc, "t", nil)
	fillSegment(t, pc, 20)

	// Another process is in the middle of a shared fdatasync: it holds
	// the sync lock.
	other := writerProbe(t, dir, "t")
	if got, err := other.TryLock(syncLockByte); err != nil || !got {
		t.Fatalf("taking the sync lock: %v, %v", got, err)
	}
	shm, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.close()

	// C appends F to segment 0 and waits for its durability.
	fDone := sendInBackground(pc, "F")
	waitFor(t, patience, "F committed", func() bool { tl, _ := shm.tail(); return tl.next == 21 })
	before := seg0Syncs.Load()

	next := deadRoller(t, pdir, shm, false, false).next

	// B appends G, following the seal into the next segment.
	gDone := sendInBackground(mustProducer(t, lb, "t", nil), "G")
	waitFor(t, patience, "G committed in the next segment", func() bool { tl, _ := shm.tail(); return tl.base == next })
	other.Unlock(syncLockByte) // the other process's sync ends

	expectDone(t, gDone, "B's Send")
	expectDone(t, fDone, "C's Send of F")
	if n := seg0Syncs.Load() - before; n == 0 {
		t.Fatal("F was acknowledged durable, but segment 0 was never fdatasync'd after F was written")
	}
}

// TestDurablePointCoversNewSegmentEntry: a roller that seals and syncs
// segment 0, creates the next segment and dies before it syncs the
// directory leaves a segment whose directory entry a power loss may take.
// A record acknowledged durable in it needs that directory sync first.
func TestDurablePointCoversNewSegmentEntry(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1}
	l := openTest(t, dir, opts)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	pdir := filepath.Join(dir, "topics", "t", "0")
	p := mustProducer(t, l, "t", nil)
	fillSegment(t, p, 20)
	shm, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.close()
	_, dirSyncs := countSyncs(t, segmentPath(pdir, 0, logExt), pdir)

	next := deadRoller(t, pdir, shm, false, false).next
	if err := unix.Fdatasync(fdOf(t, segmentPath(pdir, 0, logExt))); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segmentPath(pdir, next, logExt), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	pos, err := p.Send(context.Background(), Record{Value: []byte("G")})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != next {
		t.Fatalf("G at %v, want offset %d (the first of the new segment)", pos, next)
	}
	if dirSyncs.Load() == 0 {
		t.Fatalf("G was acknowledged durable in segment %d, whose directory entry was never synced", next)
	}
}

// fdOf opens path for the rest of the test and returns its descriptor.
func fdOf(t *testing.T, path string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}
