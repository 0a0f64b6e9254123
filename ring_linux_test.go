package runnel

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
	"github.com/runnel-log/runnel/internal/uring"
	"golang.org/x/sys/unix"
)

// newTestRingAppender returns an io_uring appender with at most maxRings
// rings, closed at the end of the test, or skips where io_uring is refused.
func newTestRingAppender(tb testing.TB, maxRings int) *ringAppender {
	tb.Helper()
	a, err := newRingPool(maxRings)
	switch {
	case errors.Is(err, unix.ENOSYS):
		tb.Skipf("io_uring is not in this kernel (ENOSYS): %v", err)
	case errors.Is(err, unix.EPERM):
		tb.Skipf("io_uring is disabled here (EPERM: kernel.io_uring_disabled or seccomp): %v", err)
	case err != nil:
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := a.close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return a
}

// testFrame returns size random bytes with the state byte uncommitted, as
// frame.Builder leaves it.
func testFrame(rng *rand.Rand, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[frame.OffState] = frame.StateWritten
	return b
}

func openTestFile(tb testing.TB, name string, flag int) *os.File {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(tb.TempDir(), name), flag|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// checkFrameAt preads len(want) bytes at off and compares them with want
// whose state byte is committed or not.
func checkFrameAt(t *testing.T, f *os.File, off int64, want []byte, committed bool) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatalf("pread %d bytes at %d: %v", len(got), off, err)
	}
	state := byte(frame.StateWritten)
	if committed {
		state = frame.StateCommitted
	}
	if got[frame.OffState] != state {
		t.Errorf("state byte at %d = %d, want %d", off+frame.OffState, got[frame.OffState], state)
	}
	got[frame.OffState] = want[frame.OffState]
	if !bytes.Equal(got, want) {
		t.Errorf("frame bytes at %d differ from those appended", off)
	}
}

func TestRingAppenderFrames(t *testing.T) {
	a := newTestRingAppender(t, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sync := range []bool{false, true} {
		for _, size := range []int{frame.HeaderSize, 104, 4096, 64 << 10, 1 << 20} {
			t.Run(fmt.Sprintf("sync=%t/size=%d", sync, size), func(t *testing.T) {
				f := openTestFile(t, "seg.log", os.O_RDWR)
				var offs []int64
				var frames [][]byte
				off := int64(8) // not at 0, not page-aligned
				for range 3 {
					b := testFrame(rng, size)
					if err := a.appendFrame(int(f.Fd()), off, b, sync, nil); err != nil {
						t.Fatal(err)
					}
					if b[frame.OffState] != frame.StateWritten {
						t.Fatal("appendFrame modified the caller's frame")
					}
					offs, frames = append(offs, off), append(frames, b)
					off += frame.AlignUp(int64(size))
				}
				for i := range frames {
					checkFrameAt(t, f, offs[i], frames[i], true)
				}
			})
		}
	}
	if a.name() != BackendIOURing {
		t.Errorf("name = %q", a.name())
	}
}

// TestRingAppenderOneEnter holds the backend to its promise: one
// io_uring_enter per append, no pwrite, no allocation.
func TestRingAppenderOneEnter(t *testing.T) {
	a := newTestRingAppender(t, 1)
	f := openTestFile(t, "seg.log", os.O_RDWR)
	b := testFrame(rand.New(rand.NewPCG(3, 4)), 256)
	r := a.idle[0]
	for _, sync := range []bool{false, true} {
		const appends = 40
		enters := r.EnterCalls()
		off := int64(0)
		allocs := testing.AllocsPerRun(appends, func() {
			if err := a.appendFrame(int(f.Fd()), off, b, sync, nil); err != nil {
				t.Fatal(err)
			}
			off += int64(len(b))
		})
		// AllocsPerRun makes one warm-up call; a signal may rarely
		// cut a wait short and cost a second enter.
		if n := r.EnterCalls() - enters; n < appends+1 || n > appends+1+appends/10 {
			t.Errorf("sync=%t: %d io_uring_enter calls for %d appends", sync, n, appends+1)
		}
		if allocs != 0 {
			t.Errorf("sync=%t: %.1f allocations per append, want 0", sync, allocs)
		}
	}
	if n := a.overflows.Load(); n != 0 {
		t.Errorf("%d appends took the pwrite path with a free ring", n)
	}
}

func TestRingAppenderConcurrent(t *testing.T) {
	for _, maxRings := range []int{ringPoolSize(), 2} {
		t.Run(fmt.Sprintf("rings=%d", maxRings), func(t *testing.T) {
			a := newTestRingAppender(t, maxRings)
			const writers, appends = 16, 40
			files := make([]*os.File, writers)
			frames := make([][][]byte, writers)
			for w := range writers {
				files[w] = openTestFile(t, fmt.Sprintf("p%d.log", w), os.O_RDWR)
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 5))
					off := int64(0)
					for i := range appends {
						b := testFrame(rng, 8*(6+rng.IntN(600)))
						if err := a.appendFrame(int(files[w].Fd()), off, b, i%4 == 0, nil); err != nil {
							errs <- err
							return
						}
						frames[w] = append(frames[w], b)
						off += int64(len(b))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for w := range writers {
				off := int64(0)
				for _, b := range frames[w] {
					checkFrameAt(t, files[w], off, b, true)
					off += int64(len(b))
				}
			}
			a.mu.Lock()
			rings := a.rings
			a.mu.Unlock()
			if rings > maxRings {
				t.Errorf("%d rings, cap %d", rings, maxRings)
			}
			t.Logf("%d rings; %d of %d appends took the pwrite path", rings, a.overflows.Load(), writers*appends)
		})
	}
}

// TestRingAppenderErrors: a failed frame write cancels the commit, and the
// frame stays uncommitted on file.
func TestRingAppenderErrors(t *testing.T) {
	a := newTestRingAppender(t, 2)
	b := testFrame(rand.New(rand.NewPCG(6, 7)), 512)

	if err := a.appendFrame(-1, 0, b, true, nil); !errors.Is(err, unix.EBADF) {
		t.Errorf("append to fd -1 = %v, want EBADF", err)
	}

	// A read-only descriptor of a file that already holds the frame,
	// uncommitted: the append fails and leaves the state byte alone.
	path := filepath.Join(t.TempDir(), "seg.log")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, sync := range []bool{false, true} {
		if err := a.appendFrame(int(ro.Fd()), 0, b, sync, nil); !errors.Is(err, unix.EBADF) {
			t.Errorf("sync=%t: append to a read-only fd = %v, want EBADF", sync, err)
		}
	}
	checkFrameAt(t, ro, 0, b, false)

	// The ring that saw the failures is whole and back in the pool.
	f := openTestFile(t, "ok.log", os.O_RDWR)
	if err := a.appendFrame(int(f.Fd()), 0, b, true, nil); err != nil {
		t.Fatal(err)
	}
	checkFrameAt(t, f, 0, b, true)
}

// TestRingAppenderShortWrite makes the kernel write only the first page of
// a frame (the second page of the buffer is unreadable): the link breaks,
// the retry of the rest fails with EFAULT, and the commit never lands.
func TestRingAppenderShortWrite(t *testing.T) {
	a := newTestRingAppender(t, 1)
	f := openTestFile(t, "seg.log", os.O_RDWR)
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	copy(mem, testFrame(rand.New(rand.NewPCG(8, 9)), len(mem)))
	if err := unix.Mprotect(mem[page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	err = a.appendFrame(int(f.Fd()), 0, mem, true, nil)
	if !errors.Is(err, unix.EFAULT) {
		t.Fatalf("append of a half-unreadable frame = %v, want EFAULT", err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(page) {
		t.Errorf("file size %d, want the %d bytes written before the fault", fi.Size(), page)
	}
	checkFrameAt(t, f, 0, mem[:page], false)
}

// TestChainResumesShortWrite: after a short frame write, the next round
// writes the rest of the frame and only then the commit and the sync.
func TestChainResumesShortWrite(t *testing.T) {
	a := newTestRingAppender(t, 1)
	r := a.idle[0]
	for _, sync := range []bool{false, true} {
		f := openTestFile(t, fmt.Sprintf("seg-%t.log", sync), os.O_RDWR)
		b := testFrame(rand.New(rand.NewPCG(10, 11)), 3000)
		const off, done = 64, 1234
		// As if the first round's write had been cut short at done.
		c := chain{fd: int(f.Fd()), off: off, frame: b, synced: !sync}
		if !c.absorb(stepFrame, done) || c.absorb(stepCommit, -int32(unix.ECANCELED)) || c.absorb(stepSync, -int32(unix.ECANCELED)) {
			t.Fatal("absorb reports progress wrongly")
		}
		if c.err != nil || c.done() || c.written != done || c.commit {
			t.Fatalf("after a short write: written=%d commit=%t err=%v", c.written, c.commit, c.err)
		}
		if _, err := f.WriteAt(b[:done], off); err != nil {
			t.Fatal(err)
		}
		enters := r.EnterCalls()
		if err := c.run(r); err != nil {
			t.Fatal(err)
		}
		if n := r.EnterCalls() - enters; n != 1 {
			t.Errorf("resume took %d io_uring_enter calls", n)
		}
		checkFrameAt(t, f, off, b, true)
	}
}

// TestChainAbsorb covers completions the kernel rarely produces.
func TestChainAbsorb(t *testing.T) {
	neg := func(e unix.Errno) int32 { return -int32(e) }
	for _, c := range []struct {
		name     string
		cqes     [][2]int64 // step, res
		progress bool
		err      error
		want     chain // written, commit, synced
	}{
		{"all done", [][2]int64{{stepFrame, 100}, {stepCommit, 1}, {stepSync, 0}}, true, nil, chain{written: 100, commit: true, synced: true}},
		{"short then cancelled", [][2]int64{{stepFrame, 40}, {stepCommit, int64(neg(unix.ECANCELED))}, {stepSync, int64(neg(unix.ECANCELED))}}, true, nil, chain{written: 40}},
		{"frame EINTR", [][2]int64{{stepFrame, int64(neg(unix.EINTR))}, {stepCommit, int64(neg(unix.ECANCELED))}}, false, nil, chain{}},
		{"commit EAGAIN", [][2]int64{{stepFrame, 100}, {stepCommit, int64(neg(unix.EAGAIN))}, {stepSync, int64(neg(unix.ECANCELED))}}, true, nil, chain{written: 100}},
		{"frame wrote nothing", [][2]int64{{stepFrame, 0}, {stepCommit, int64(neg(unix.ECANCELED))}}, false, unix.EIO, chain{}},
		{"frame ENOSPC", [][2]int64{{stepFrame, int64(neg(unix.ENOSPC))}, {stepCommit, int64(neg(unix.ECANCELED))}}, false, unix.ENOSPC, chain{}},
		{"sync EIO", [][2]int64{{stepFrame, 100}, {stepCommit, 1}, {stepSync, int64(neg(unix.EIO))}}, true, unix.EIO, chain{written: 100, commit: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := chain{frame: make([]byte, 100)}
			progress := false
			for _, q := range c.cqes {
				if ch.absorb(uint64(q[0]), int32(q[1])) {
					progress = true
				}
			}
			if progress != c.progress {
				t.Errorf("progress = %t, want %t", progress, c.progress)
			}
			if c.err == nil && ch.err != nil || c.err != nil && !errors.Is(ch.err, c.err) {
				t.Errorf("err = %v, want %v", ch.err, c.err)
			}
			if ch.written != c.want.written || ch.commit != c.want.commit || ch.synced != c.want.synced {
				t.Errorf("state written=%d commit=%t synced=%t, want %d %t %t",
					ch.written, ch.commit, ch.synced, c.want.written, c.want.commit, c.want.synced)
			}
		})
	}
}

func TestRingAppenderClose(t *testing.T) {
	a := newTestRingAppender(t, 2)
	f := openTestFile(t, "seg.log", os.O_RDWR)
	b := testFrame(rand.New(rand.NewPCG(12, 13)), 128)
	if err := a.appendFrame(int(f.Fd()), 0, b, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := a.appendFrame(int(f.Fd()), 0, b, false, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close = %v, want ErrClosed", err)
	}
	if a.rings != 0 || len(a.idle) != 0 {
		t.Errorf("after close: %d rings, %d idle", a.rings, len(a.idle))
	}
}

func TestNewRingAppender(t *testing.T) {
	app, err := newRingAppender()
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if app.name() != BackendIOURing {
		t.Errorf("name = %q", app.name())
	}
	if err := app.close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAppender compares the io_uring and pwrite backends side by side:
// one goroutine appending frames of each size to a growing file.
func BenchmarkAppender(b *testing.B) {
	backends := []struct {
		name string
		new  func(testing.TB) appender
	}{
		{BackendIOURing, func(tb testing.TB) appender { return newTestRingAppender(tb, 1) }},
		{BackendPwrite, func(testing.TB) appender { return pwriteAppender{} }},
	}
	sizes := []struct {
		name string
		size int
	}{{"104B", 104}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}}
	for _, sync := range []bool{false, true} {
		for _, s := range sizes {
			for _, be := range backends {
				b.Run(fmt.Sprintf("sync=%t/size=%s/backend=%s", sync, s.name, be.name), func(b *testing.B) {
					app := be.new(b)
					f := openTestFile(b, "seg.log", os.O_RDWR)
					fd := int(f.Fd())
					buf := testFrame(rand.New(rand.NewPCG(14, 15)), s.size)
					var ring *uring.Ring
					if ra, ok := app.(*ringAppender); ok {
						ring = ra.idle[0]
					}
					var enters uint64
					if ring != nil {
						enters = ring.EnterCalls()
					}
					var cm *commitMap // as a Log gives it: a mapping outside Durable mode
					if ring == nil && !sync {
						cm = newCommitMap(fd)
						defer cm.close()
					}
					const fileLimit = 64 << 20 // start over to bound disk use
					b.SetBytes(int64(s.size))
					b.ReportAllocs()
					b.ResetTimer()
					off := int64(0)
					for range b.N {
						if off+int64(s.size) > fileLimit {
							b.StopTimer()
							if err := f.Truncate(0); err != nil {
								b.Fatal(err)
							}
							off = 0
							b.StartTimer()
						}
						if err := app.appendFrame(fd, off, buf, sync, cm); err != nil {
							b.Fatal(err)
						}
						off += int64(s.size)
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
					if ring != nil {
						b.ReportMetric(float64(ring.EnterCalls()-enters)/float64(b.N), "enters/op")
					}
				})
			}
		}
	}
}
