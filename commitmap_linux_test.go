package runnel

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
	"golang.org/x/sys/unix"
)

// TestCommitMap: a commit byte stored through the mapping is what a pread
// of the file sees, across window boundaries; a frame too large for the
// mapping, or a store that faults (the file was cut under it), reports
// false so that the caller pwrites the byte instead.
func TestCommitMap(t *testing.T) {
	f := openTestFile(t, "seg.log", os.O_RDWR)
	fd := int(f.Fd())
	cm := newCommitMap(fd)
	defer cm.close()
	rng := rand.New(rand.NewPCG(1, 2))
	var pos int64
	for pos < 2*commitWindow+4096 {
		fr := testFrame(rng, 152)
		if err := pwriteFull(fd, fr, pos); err != nil {
			t.Fatal(err)
		}
		if !cm.commit(pos, fr) {
			t.Fatalf("commit at %d through the mapping failed", pos)
		}
		want := append([]byte(nil), fr...)
		want[frame.OffState] = frame.StateCommitted
		checkFrameAt(t, f, pos, want, true)
		pos += int64(len(fr))
	}

	big := testFrame(rng, commitMapMax+8)
	if cm.commit(pos, big) {
		t.Fatal("a frame larger than commitMapMax was committed through the mapping")
	}

	fr := testFrame(rng, 152)
	if err := pwriteFull(fd, fr, pos); err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		t.Fatal(err)
	}
	if cm.commit(pos, fr) {
		t.Fatal("a store past the end of the file reported success")
	}
}

// TestCommitMapWrite: frames copied through the mapping, below the size the
// file was extended to, are what a pread sees, committed; a frame past that
// size, or across a window boundary, is refused with nothing stored, so
// that the caller pwrites it; a store that faults reports false.
func TestCommitMapWrite(t *testing.T) {
	f := openTestFile(t, "seg.log", os.O_RDWR)
	fd := int(f.Fd())
	cm := newCommitMap(fd)
	defer cm.close()
	rng := rand.New(rand.NewPCG(3, 4))

	first := testFrame(rng, 160)
	if cm.write(0, first) {
		t.Fatal("a write with no extension reported success")
	}
	limit := int64(commitWindow + 64<<10)
	if err := extendFile(fd, 0, limit); err != nil {
		t.Skipf("fallocate: %v", err)
	}
	cm.setLimit(limit)
	// A frame past mapWriteMax is left to pwrite, nothing stored.
	if big := testFrame(rng, mapWriteMax+8); cm.write(0, big) {
		t.Fatalf("a %d-byte frame was written through the mapping", len(big))
	} else {
		checkZeros(t, f, 0, len(big))
	}
	var pos int64
	crossed := false
	for pos+2048 < limit {
		fr := testFrame(rng, (frame.HeaderSize+7)&^7+8*rng.IntN(200))
		ok := cm.write(pos, fr)
		end := pos + int64(len(fr))
		if straddles := pos/commitWindow != (end-1)/commitWindow; straddles {
			if ok {
				t.Fatalf("a frame across the window boundary at %d was written through the mapping", pos)
			}
			crossed = true
			checkZeros(t, f, pos, len(fr))
			if err := pwriteFull(fd, fr, pos); err != nil || !cm.commit(pos, fr) && pwriteFull(fd, commitByte, pos+frame.OffState) != nil {
				t.Fatal("pwrite fallback failed")
			}
		} else if !ok {
			t.Fatalf("write of %d bytes at %d through the mapping failed", len(fr), pos)
		}
		want := append([]byte(nil), fr...)
		want[frame.OffState] = frame.StateCommitted
		checkFrameAt(t, f, pos, want, true)
		pos = end
	}
	if !crossed {
		t.Fatal("test setup: no frame crossed a window boundary")
	}
	past := testFrame(rng, int(limit-pos)+8)
	if cm.write(pos, past) {
		t.Fatal("a frame past the extended size was written through the mapping")
	}
	checkZeros(t, f, pos, int(limit-pos))

	// The file cut under the mapping (never under a writer, which
	// holds the lock): the store faults, and the write says so.
	if err := unix.Ftruncate(fd, 0); err != nil {
		t.Fatal(err)
	}
	if cm.write(pos, testFrame(rng, 64)) {
		t.Fatal("a store past the end of the file reported success")
	}
}

func checkZeros(t *testing.T, f *os.File, pos int64, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	if !allZero(b) {
		t.Fatalf("bytes stored at %d by a write that reported failure", pos)
	}
}
