package runnel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
	"golang.org/x/sys/unix"
)

// deadRoller plays a writer that took the writer lock of partition pdir,
// committed a seal at the published tail, and died (its lock released by
// the kernel) without doing the rest of the roll. With synced it
// fdatasync'd the sealed segment first; with created it also created the
// next segment, without syncing the directory. It returns the sealed
// tail.
func deadRoller(t *testing.T, pdir string, shm *metaMap, synced, created bool) logPos {
	t.Helper()
	a, err := openLockFile(filepath.Join(pdir, metaFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := lockAnnounced(context.Background(), a, shm, nil); err != nil {
		t.Fatal(err)
	}
	tl, ok := shm.tail()
	if !ok {
		t.Fatal("no published tail")
	}
	f, err := os.OpenFile(segmentPath(pdir, tl.base, logExt), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := unix.Pwrite(int(f.Fd()), frame.AppendSeal(nil, tl.next), tl.pos); err != nil {
		t.Fatal(err)
	}
	if synced {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	if created {
		nf, err := os.OpenFile(segmentPath(pdir, tl.next, logExt), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		nf.Close()
	}
	return tl
}

// A writer that rolled died after committing its seal, before it synced
// the sealed segment: the next writer follows the seal, so it syncs the
// sealed segment before appending past it, in every mode (a later
// segment vouches for every frame before it).
func TestFollowSealSyncsSealedSegment(t *testing.T) {
	for _, mode := range []Durability{Durable, Periodic, Buffered} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{Durability: mode, Backend: BackendPwrite, RetentionInterval: -1}
			l := openTest(t, dir, opts)
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
			pdir := filepath.Join(dir, "topics", "t", "0")
			p := mustProducer(t, l, "t", nil)
			val := bytes.Repeat([]byte("x"), 1000)
			for range 20 {
				if _, err := p.Send(context.Background(), Record{Value: val}); err != nil {
					t.Fatal(err)
				}
			}
			shm, err := openMeta(pdir)
			if err != nil {
				t.Fatal(err)
			}
			defer shm.close()
			l.topics["t"].parts()[0].stopHold()
			fileSyncs, dirSyncs := countSyncs(t, segmentPath(pdir, 0, logExt), pdir)
			tl := deadRoller(t, pdir, shm, false, false)
			pos, err := p.Send(context.Background(), Record{Value: []byte("G")})
			if err != nil {
				t.Fatal(err)
			}
			if pos.Offset != tl.next {
				t.Fatalf("G at offset %d, want %d (the first of the segment the seal names)", pos.Offset, tl.next)
			}
			if files, dirs := fileSyncs.Load(), dirSyncs.Load(); files == 0 || dirs == 0 {
				t.Fatalf("after following the seal: %d fdatasyncs of the sealed segment, %d syncs of the directory; want both", files, dirs)
			}
		})
	}
}

// A writer that rolled died after creating the next segment, before it
// synced the directory: the next writer finds the file, and syncs its
// directory entry before appending to it (a durable point recorded in the
// segment must not outlive the file).
func TestFollowSealSyncsExistingSegmentsEntry(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1}
	l := openTest(t, dir, opts)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	pdir := filepath.Join(dir, "topics", "t", "0")
	p := mustProducer(t, l, "t", nil)
	val := bytes.Repeat([]byte("x"), 1000)
	for range 20 {
		if _, err := p.Send(context.Background(), Record{Value: val}); err != nil {
			t.Fatal(err)
		}
	}
	shm, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.close()
	l.topics["t"].parts()[0].stopHold()
	_, dirSyncs := countSyncs(t, segmentPath(pdir, 0, logExt), pdir)
	tl := deadRoller(t, pdir, shm, true, true)
	pos, err := p.Send(context.Background(), Record{Value: []byte("G")})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != tl.next {
		t.Fatalf("G at offset %d, want %d", pos.Offset, tl.next)
	}
	if dirs := dirSyncs.Load(); dirs == 0 {
		t.Fatalf("G acknowledged durable in segment %d, whose directory entry was never synced", tl.next)
	}
}
