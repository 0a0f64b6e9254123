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

// zeroTail is a segment file of committed frames with zeros ahead of its
// tail, as a writer copying frames through the mapping leaves it.
type zeroTail struct {
	t    *testing.T
	f    *os.File
	end  int64 // where the data ends
	next int64
}

func newZeroTail(t *testing.T, frames int, zeros int64) *zeroTail {
	path := segmentPath(t.TempDir(), 0, logExt)
	seg, next := appendFrames(nil, 0, frames)
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	z := &zeroTail{t: t, f: f, end: int64(len(seg)), next: next}
	z.resize(z.end + zeros)
	return z
}

// write appends n frames at the tail, into the zeros.
func (z *zeroTail) write(n int) {
	var more []byte
	more, z.next = appendFrames(nil, z.next, n)
	if _, err := z.f.WriteAt(more, z.end); err != nil {
		z.t.Fatal(err)
	}
	z.end += int64(len(more))
}

// resize cuts the file or extends it with zeros to size.
func (z *zeroTail) resize(size int64) {
	if err := z.f.Truncate(size); err != nil {
		z.t.Fatal(err)
	}
}

// TestCursorFollowsZeroTail: a cursor following a writer that extends its
// segment with zeros ahead of the tail reads, per wake-up, about a page
// for the new frames and only the zeros it has not found zero before,
// however the extension moved (grown, cut back when the writer let its
// lock go, extended again). Reading the window and the whole extension
// again on every change cost a consumer tens of microseconds per record
// (docs/PERFORMANCE.md). What was never found zero is still read, and a
// byte that is not zero there is still a break.
func TestCursorFollowsZeroTail(t *testing.T) {
	const ext = 64 << 10
	z := newZeroTail(t, 4, ext)
	var zeroRead int
	testHookZeroRead = func(n int) { zeroRead += n }
	t.Cleanup(func() { testHookZeroRead = nil })

	c := &cursor{verify: true, window: 1 << 20}
	f := &statCounting{File: z.f}
	c.setFile(f, z.f.Name())
	c.seek(0, 0)
	// wake reads what is new, as a reader woken by an append does, and
	// returns the bytes zerosToEnd read.
	wake := func(what string) int {
		t.Helper()
		zeroRead = 0
		c.invalidate()
		fr, st, err := c.walk(nil)
		if err != nil || st != frameEnd || !fr.eof {
			t.Fatalf("%s: walk stopped at %v (eof %v), %v; want the end of the data", what, st, fr.eof, err)
		}
		if c.pos != z.end || c.next != z.next {
			t.Fatalf("%s: cursor at %d (offset %d), want %d (offset %d)", what, c.pos, c.next, z.end, z.next)
		}
		return zeroRead
	}
	if n := wake("first"); n != ext {
		t.Fatalf("first look: %d bytes of zeros read, want all %d", n, ext)
	}
	for round := range 10 {
		z.write(1)
		f.stats = 0
		if n := wake("one frame more"); n != 0 {
			t.Fatalf("round %d: %d bytes of zeros read again", round, n)
		}
		if f.stats != 0 {
			t.Fatalf("round %d: %d stats of the file", round, f.stats)
		}
		if c.ahead != tailWindow {
			t.Fatalf("round %d: read-ahead %d at the zeros, want %d", round, c.ahead, tailWindow)
		}
	}
	// The writer lets its lock go (cut back to the tail), and extends
	// again, as far as before: nothing new to read.
	st, err := z.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	known := st.Size()
	z.resize(z.end)
	z.write(1)
	z.resize(known)
	if n := wake("cut and extended as far"); n != 0 {
		t.Fatalf("cut and extended within the zeros found: %d bytes read", n)
	}
	// Extended further: only the new bytes are read.
	z.resize(known + ext)
	if n := wake("extended further"); n != ext {
		t.Fatalf("extended by %d: %d bytes read", ext, n)
	}
	// A byte that is not zero past what was found zero is a break.
	z.resize(known + 2*ext)
	if _, err := z.f.WriteAt([]byte{1}, known+2*ext-1); err != nil {
		t.Fatal(err)
	}
	c.invalidate()
	if fr, st, err := c.peek(); err != nil || st != frameEnd || fr.eof {
		t.Fatalf("zeros then a byte that is not zero: %v (eof %v), %v; want a zero length field that does not end the data", st, fr.eof, err)
	}
	// judgeTail trusts no shortcut: a byte that is not zero among the
	// zeros found before is a break to it.
	if _, err := z.f.WriteAt([]byte{0}, known+2*ext-1); err != nil {
		t.Fatal(err)
	}
	wake("zeros again")
	if _, err := z.f.WriteAt([]byte{1}, known); err != nil {
		t.Fatal(err)
	}
	if v, err := c.judgeTail(tailRules{}); err != nil || v.kind == tailEnd || v.kind == tailMoved {
		t.Fatalf("a byte that is not zero among zeros found before: judged %v, %v; want a break", v.kind, err)
	}
}

// statCounting is a segment file that counts its Stat and ReadAt calls.
type statCounting struct {
	*os.File
	stats, reads int
}

func (f *statCounting) Stat() (os.FileInfo, error) {
	f.stats++
	return f.File.Stat()
}

func (f *statCounting) ReadAt(b []byte, off int64) (int, error) {
	f.reads++
	return f.File.ReadAt(b, off)
}

// TestCursorTrustsZerosOnceAtNewTail: a cursor following a writer record
// by record reads once per wake-up, the new frame with the zeros after
// it, and not again past the zeros it found before to learn that the
// file ends there (that pread was half a follower's system calls). The
// first look at a new tail trusts them; a look at the same tail again,
// with nothing written at it meanwhile, reads on, so that a byte that is
// not zero past them is still a break, found one look later.
func TestCursorTrustsZerosOnceAtNewTail(t *testing.T) {
	const ext = 64 << 10
	z := newZeroTail(t, 4, ext)
	c := &cursor{verify: true, window: 1 << 20}
	f := &statCounting{File: z.f}
	c.setFile(f, z.f.Name())
	c.seek(0, 0)
	look := func(what string) segFrame {
		t.Helper()
		c.invalidate()
		fr, st, err := c.walk(nil)
		if err != nil || st != frameEnd {
			t.Fatalf("%s: walk stopped at %v, %v; want the end of the data", what, st, err)
		}
		if c.pos != z.end || c.next != z.next {
			t.Fatalf("%s: cursor at %d (offset %d), want %d (offset %d)", what, c.pos, c.next, z.end, z.next)
		}
		return fr
	}
	look("first")
	// A look that read past the zeros makes the next look at that tail
	// its second: it reads on too, and finds a byte that is not zero.
	st, err := z.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	z.resize(st.Size() + ext)
	if _, err := z.f.WriteAt([]byte{1}, st.Size()+ext-1); err != nil {
		t.Fatal(err)
	}
	if fr := look("the first tail again, a byte past the zeros"); fr.eof {
		t.Fatal("the second look at the first tail took zeros and a byte that is not zero for the end of the data")
	}
	if _, err := z.f.WriteAt([]byte{0}, st.Size()+ext-1); err != nil {
		t.Fatal(err)
	}
	look("the first tail, zeros again")
	for round := range 10 {
		z.write(1)
		f.reads = 0
		if fr := look("one frame more"); !fr.eof {
			t.Fatalf("round %d: the zeros after the new frame do not end the data", round)
		}
		if f.reads != 1 {
			t.Fatalf("round %d: %d reads for one new frame, want 1", round, f.reads)
		}
	}
	// A new frame, and a byte that is not zero past the zeros found:
	// the first look at the new tail takes the zeros for the end, the
	// next one, with nothing written at it, finds the break.
	st, err = z.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	z.write(1)
	z.resize(st.Size() + ext)
	if _, err := z.f.WriteAt([]byte{1}, st.Size()+ext-1); err != nil {
		t.Fatal(err)
	}
	if fr := look("new tail, a byte past the zeros"); !fr.eof {
		t.Fatal("the first look at a new tail read past the zeros found before")
	}
	if fr := look("the same tail again"); fr.eof {
		t.Fatal("the second look at the same tail took zeros and a byte that is not zero for the end of the data")
	}
	if fr := look("and again"); fr.eof {
		t.Fatal("the third look at the same tail took zeros and a byte that is not zero for the end of the data")
	}
}
