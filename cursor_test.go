package runnel

import (
	"bytes"
	"os"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
)

// appendFrames appends n committed frames of one 1 KiB record each, from
// offset next on, and returns the next offset.
func appendFrames(seg []byte, next int64, n int) ([]byte, int64) {
	var b frame.Builder
	for range n {
		b.Reset()
		b.Add(1000, nil, bytes.Repeat([]byte{'v'}, 1<<10), nil)
		fr := b.Finish(next)
		fr[frame.OffState] = frame.StateCommitted
		seg = append(seg, fr...)
		next++
	}
	return seg, next
}

// TestCursorReadAhead: a cursor first reads firstWindow bytes, doubles its
// read-ahead after each read it used up, up to its window, and does not
// grow while it follows a tail (short reads): a consumer that wants a few
// records, or waits at the end, does not fault in a whole window.
func TestCursorReadAhead(t *testing.T) {
	const window = 1 << 20
	seg, next := appendFrames(nil, 0, 3*window>>10) // 3 MiB and more
	path := segmentPath(t.TempDir(), 0, logExt)
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	c := &cursor{verify: true, window: window}
	c.setFile(f, path)
	c.seek(0, 0)
	var reads []int
	lastAt := int64(-1)
	for {
		fr, st, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if c.at != lastAt {
			reads = append(reads, c.ahead)
			lastAt = c.at
		}
		if st != frameOK {
			if st != frameEnd || !fr.eof {
				t.Fatalf("walk stopped at %v", st)
			}
			break
		}
	}
	if c.next != next {
		t.Fatalf("walked to offset %d, want %d", c.next, next)
	}
	want := []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20}
	if len(reads) < len(want) {
		t.Fatalf("read sizes %v, want %v then window-sized reads", reads, want)
	}
	for i, size := range reads {
		if w := want[min(i, len(want)-1)]; size != w {
			t.Fatalf("read %d asked for %d bytes, want %d (all: %v)", i, size, w, reads)
		}
	}
	if cap(c.buf) != window {
		t.Errorf("buffer of %d bytes after a long walk, want the window, %d", cap(c.buf), window)
	}

	// Following a tail: every read is short, the read-ahead stays small.
	tail := segmentPath(t.TempDir(), 0, logExt)
	seg, next = appendFrames(nil, 0, 4)
	if err := os.WriteFile(tail, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := os.OpenFile(tail, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	c = &cursor{verify: true, window: window}
	c.setFile(tf, tail)
	c.seek(0, 0)
	for round := range 20 {
		if _, st, err := c.walk(nil); err != nil || st != frameEnd {
			t.Fatalf("round %d: walk stopped at %v, %v", round, st, err)
		}
		if c.ahead != firstWindow || cap(c.buf) != firstWindow {
			t.Fatalf("round %d: read-ahead %d, buffer %d bytes at the tail; want %d", round, c.ahead, cap(c.buf), firstWindow)
		}
		var more []byte
		more, next = appendFrames(nil, next, 40)
		if _, err := tf.Write(more); err != nil {
			t.Fatal(err)
		}
		c.invalidate()
	}
}
