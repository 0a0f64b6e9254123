//go:build linux

package uring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newRing returns a ring closed at the end of the test, or skips the test
// where the kernel or the sandbox refuses io_uring.
func newRing(t *testing.T, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		t.Skipf("io_uring is not in this kernel (ENOSYS): %v", err)
	case errors.Is(err, unix.EPERM):
		t.Skipf("io_uring is disabled here (EPERM: kernel.io_uring_disabled or seccomp): %v", err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func tempFile(t *testing.T, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "f"), flag|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// reap collects n completions, keyed by user_data.
func reap(t *testing.T, r *Ring, n int) map[uint64]CQE {
	t.Helper()
	got := make(map[uint64]CQE, n)
	for range n {
		c, ok := r.PeekCQE()
		if !ok {
			t.Fatalf("have %d completions, want %d", len(got), n)
		}
		got[c.UserData] = c
	}
	if c, ok := r.PeekCQE(); ok {
		t.Fatalf("unexpected extra completion %+v", c)
	}
	return got
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestABISizes(t *testing.T) {
	// The compile-time checks in abi.go cover this; the test documents it.
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_params", unsafe.Sizeof(params{}), 120},
		{"io_uring_sqe", unsafe.Sizeof(sqe{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(cqe{}), 16},
		{"io_uring_probe", unsafe.Sizeof(probeHeader{}), 16},
		{"io_uring_probe_op", unsafe.Sizeof(probeOp{}), 8},
	} {
		if c.got != c.want {
			t.Errorf("sizeof %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestNewRejectsFlags(t *testing.T) {
	for _, f := range []SetupFlags{setupSQPoll, setupIOPoll, setupSQE128, setupCQE32} {
		if _, err := New(4, f); !errors.Is(err, unix.EINVAL) {
			t.Errorf("New(4, %#x) = %v, want EINVAL", uint32(f), err)
		}
	}
}

func TestCoopTaskrun(t *testing.T) {
	newRing(t, 4) // skips where io_uring is unavailable
	r, err := New(4, SetupCoopTaskrun)
	if errors.Is(err, unix.EINVAL) {
		t.Skip("kernel older than 5.19: IORING_SETUP_COOP_TASKRUN unknown")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PrepNop(0, 7); err != nil {
		t.Fatal(err)
	}
	if err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[7]; c.Res != 0 {
		t.Errorf("NOP res = %d", c.Res)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestProbe(t *testing.T) {
	r := newRing(t, 4)
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []Op{OpNop, OpWritev, OpFsync, OpWrite} {
		if !p.Supported(op) {
			t.Errorf("%v not supported", op)
		}
	}
	if p.LastOp() < OpWrite {
		t.Errorf("LastOp = %v, want at least %v", p.LastOp(), OpWrite)
	}
	if err := p.Require(OpWrite, OpWritev, OpFsync); err != nil {
		t.Error(err)
	}
	if err := p.Require(OpWrite, Op(255)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Require(op 255) = %v, want ErrUnsupported", err)
	}
}

// TestWriteCommitSync is the append protocol in miniature: a frame, then,
// linked, its commit byte, then, linked, fdatasync — one io_uring_enter.
func TestWriteCommitSync(t *testing.T) {
	r := newRing(t, 4)
	f := tempFile(t, os.O_RDWR)
	fd := int(f.Fd())
	const rounds = 50
	var want []byte
	enters := r.EnterCalls()
	for i := range rounds {
		frame := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		off := int64(len(want))
		mustOK(t, r.PrepWrite(fd, frame, off, FlagLink, 1))
		mustOK(t, r.PrepWrite(fd, []byte{'!'}, off+5, FlagLink, 2))
		mustOK(t, r.PrepFsync(fd, FsyncDatasync, 0, 3))
		mustOK(t, r.SubmitAndWait(3))
		got := reap(t, r, 3)
		if got[1].Res != int32(len(frame)) || got[2].Res != 1 || got[3].Res != 0 {
			t.Fatalf("round %d: completions %+v", i, got)
		}
		frame[5] = '!'
		want = append(want, frame...)
	}
	if r.InFlight() != 0 {
		t.Errorf("InFlight = %d after reaping everything", r.InFlight())
	}
	if !bytes.Equal(readAll(t, f), want) {
		t.Error("file content differs from the frames written")
	}
	// One enter per chain; a signal may rarely cut a wait short.
	if n := r.EnterCalls() - enters; n < rounds || n > rounds+rounds/10 {
		t.Errorf("%d io_uring_enter calls for %d chains", n, rounds)
	}
}

func TestWritev(t *testing.T) {
	r := newRing(t, 4)
	f := tempFile(t, os.O_RDWR)
	bufs := [][]byte{[]byte("hello, "), nil, []byte("vectored "), {}, []byte("world")}
	want := bytes.Join(bufs, nil)
	for round := range 3 { // reuses the slot's iovec storage
		mustOK(t, r.PrepWritev(int(f.Fd()), bufs, int64(round*len(want)), 0, 9))
		mustOK(t, r.SubmitAndWait(1))
		if c := reap(t, r, 1)[9]; c.Res != int32(len(want)) {
			t.Fatalf("WRITEV res = %d, want %d", c.Res, len(want))
		}
	}
	if got := readAll(t, f); !bytes.Equal(got, bytes.Repeat(want, 3)) {
		t.Errorf("file = %q", got)
	}
}

// TestLinkFailureCancels: a failing write completes with its errno and
// the rest of its chain with -ECANCELED, without running.
func TestLinkFailureCancels(t *testing.T) {
	r := newRing(t, 4)
	ro := tempFile(t, os.O_RDONLY)
	for _, c := range []struct {
		name string
		fd   int
	}{{"read-only fd", int(ro.Fd())}, {"bad fd", -1}} {
		t.Run(c.name, func(t *testing.T) {
			target := tempFile(t, os.O_RDWR)
			mustOK(t, r.PrepWrite(c.fd, []byte("frame"), 0, FlagLink, 1))
			mustOK(t, r.PrepWrite(int(target.Fd()), []byte{1}, 0, FlagLink, 2))
			mustOK(t, r.PrepFsync(int(target.Fd()), FsyncDatasync, 0, 3))
			mustOK(t, r.SubmitAndWait(3))
			got := reap(t, r, 3)
			if !errors.Is(got[1].Err(), unix.EBADF) {
				t.Errorf("failed write: res %d (%v), want -EBADF", got[1].Res, got[1].Err())
			}
			for _, ud := range []uint64{2, 3} {
				if !errors.Is(got[ud].Err(), unix.ECANCELED) {
					t.Errorf("linked op %d: res %d (%v), want -ECANCELED", ud, got[ud].Res, got[ud].Err())
				}
			}
			if b := readAll(t, target); len(b) != 0 {
				t.Errorf("cancelled write landed: %q", b)
			}
		})
	}
}

// TestShortWrite makes the kernel write part of a buffer: the second page
// of the buffer is unreadable, so the copy stops after the first. A short
// write breaks the link (the commit must not land), and the caller finishes
// the rest — as runnel's appender does.
func TestShortWrite(t *testing.T) {
	r := newRing(t, 4)
	f := tempFile(t, os.O_RDWR)
	fd := int(f.Fd())
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for i := range mem {
		mem[i] = byte(i % 251)
	}
	mustOK(t, unix.Mprotect(mem[page:], unix.PROT_NONE))

	mustOK(t, r.PrepWrite(fd, mem, 0, FlagLink, 1))
	mustOK(t, r.PrepWrite(fd, []byte{0xff}, int64(2*page), 0, 2))
	mustOK(t, r.SubmitAndWait(2))
	got := reap(t, r, 2)
	n := got[1].Res
	if n <= 0 || int(n) >= len(mem) {
		t.Fatalf("write res = %d (%v), want a short count", n, got[1].Err())
	}
	if !errors.Is(got[2].Err(), unix.ECANCELED) {
		t.Fatalf("op linked to a short write: res %d, want -ECANCELED", got[2].Res)
	}
	if size := len(readAll(t, f)); size != int(n) {
		t.Fatalf("file has %d bytes after a short write of %d", size, n)
	}

	// The caller's part: finish the remaining bytes, then commit.
	mustOK(t, unix.Mprotect(mem[page:], unix.PROT_READ))
	mustOK(t, r.PrepWrite(fd, mem[n:], int64(n), FlagLink, 1))
	mustOK(t, r.PrepWrite(fd, []byte{0xff}, int64(2*page), 0, 2))
	mustOK(t, r.SubmitAndWait(2))
	got = reap(t, r, 2)
	if got[1].Res != int32(len(mem))-n || got[2].Res != 1 {
		t.Fatalf("completions after retry: %+v", got)
	}
	if b := readAll(t, f); !bytes.Equal(b, append(mem[:len(mem):len(mem)], 0xff)) {
		t.Error("file content differs after finishing the short write")
	}
}

// TestBufferKeptAlive: a buffer whose only reference is the ring's table
// is neither collected nor reused before its completion.
func TestBufferKeptAlive(t *testing.T) {
	r := newRing(t, 4)
	f := tempFile(t, os.O_RDWR)
	const size = 1 << 20
	var finalized atomic.Bool
	func() {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = 'k'
		}
		runtime.SetFinalizer(&buf[0], func(*byte) { finalized.Store(true) })
		mustOK(t, r.PrepWrite(int(f.Fd()), buf, 0, 0, 1))
	}()
	// Churn the heap so that a freed buffer would be reused and overwritten.
	var junk [][]byte
	for range 3 {
		runtime.GC()
		for range 8 {
			junk = append(junk, bytes.Repeat([]byte{'x'}, size))
		}
	}
	runtime.KeepAlive(junk)
	if finalized.Load() {
		t.Fatal("buffer was collected while its write was queued")
	}
	mustOK(t, r.SubmitAndWait(1))
	if c := reap(t, r, 1)[1]; c.Res != size {
		t.Fatalf("write res = %d", c.Res)
	}
	if !bytes.Equal(readAll(t, f), bytes.Repeat([]byte{'k'}, size)) {
		t.Error("file content is not the buffer's")
	}
}

func TestRingFull(t *testing.T) {
	r := newRing(t, 4)
	n := 0
	for ; ; n++ {
		err := r.PrepNop(0, uint64(n))
		if errors.Is(err, ErrRingFull) {
			break
		}
		mustOK(t, err)
	}
	if n != 4 {
		t.Fatalf("queued %d NOPs in a 4-entry ring", n)
	}
	mustOK(t, r.SubmitAndWait(uint32(n)))
	got := reap(t, r, n)
	for i := range n {
		if c, ok := got[uint64(i)]; !ok || c.Res != 0 {
			t.Errorf("NOP %d: %+v, %v", i, c, ok)
		}
	}
	if err := r.SubmitAndWait(1); !errors.Is(err, unix.EINVAL) {
		t.Errorf("waiting with nothing in flight = %v, want EINVAL", err)
	}
}

func TestClose(t *testing.T) {
	r := newRing(t, 4)
	mustOK(t, r.PrepNop(0, 1))
	if err := r.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with an operation queued = %v, want ErrBusy", err)
	}
	mustOK(t, r.SubmitAndWait(1))
	if err := r.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with a completion unreaped = %v, want ErrBusy", err)
	}
	reap(t, r, 1)
	mustOK(t, r.Close())
	mustOK(t, r.Close()) // idempotent
	if err := r.PrepNop(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("PrepNop after Close = %v", err)
	}
	if err := r.SubmitAndWait(0); !errors.Is(err, ErrClosed) {
		t.Errorf("SubmitAndWait after Close = %v", err)
	}
	if _, err := r.Probe(); !errors.Is(err, ErrClosed) {
		t.Errorf("Probe after Close = %v", err)
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	r := newRing(t, 4)
	f := tempFile(t, os.O_RDWR)
	fd := int(f.Fd())
	frame := make([]byte, 256)
	bufs := [][]byte{frame[:100], frame[100:]}
	allocs := testing.AllocsPerRun(100, func() {
		_ = r.PrepWritev(fd, bufs, 0, FlagLink, 1)
		_ = r.PrepWrite(fd, frame[:1], 5, 0, 2)
		_ = r.SubmitAndWait(2)
		for _, ok := r.PeekCQE(); ok; _, ok = r.PeekCQE() {
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per chain, want 0", allocs)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
