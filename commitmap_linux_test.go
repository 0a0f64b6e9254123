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
