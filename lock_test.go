package runnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The lockholder child is another process for the lock tests. It opens
// $RUNNEL_LOCK_PATH and, by $RUNNEL_LOCK_MODE:
//
//	hold   locks byte $RUNNEL_LOCK_OFF (and the $RUNNEL_LOCK_N-1 bytes after
//	       it, if set), prints "locked", and holds the locks until its
//	       stdin closes (or it is killed);
//	probe  prints whether TryLock of byte $RUNNEL_LOCK_OFF succeeded;
//	count  $RUNNEL_LOCK_N times: locks byte 0, adds one to the counter at
//	       bytes 8..16 of the file, unlocks.
func init() {
	childMains["lockholder"] = lockHolderMain
}

func lockHolderMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "lockholder:", err)
		return 1
	}
	off, _ := strconv.ParseInt(os.Getenv("RUNNEL_LOCK_OFF"), 10, 64)
	l, err := openLockFile(os.Getenv("RUNNEL_LOCK_PATH"))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	switch mode := os.Getenv("RUNNEL_LOCK_MODE"); mode {
	case "hold":
		n := int64(1)
		if v := os.Getenv("RUNNEL_LOCK_N"); v != "" {
			if n, err = strconv.ParseInt(v, 10, 64); err != nil {
				return fail(err)
			}
		}
		for b := off; b < off+n; b++ {
			if err := l.Lock(context.Background(), b); err != nil {
				return fail(err)
			}
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		for b := off; b < off+n; b++ {
			if err := l.Unlock(b); err != nil {
				return fail(err)
			}
		}
	case "probe":
		ok, err := l.TryLock(off)
		if err != nil {
			return fail(err)
		}
		fmt.Println(ok)
	case "count":
		n, _ := strconv.Atoi(os.Getenv("RUNNEL_LOCK_N"))
		for range n {
			if err := lockedIncrement(l); err != nil {
				return fail(err)
			}
		}
	default:
		return fail(fmt.Errorf("unknown mode %q", mode))
	}
	return 0
}

// lockedIncrement adds one to the counter at bytes 8..16 of l's file under
// the lock on byte 0, with a read and a separate write so that a lost
// update shows if two holders ever overlap.
func lockedIncrement(l *lockFile) error {
	if err := l.Lock(context.Background(), 0); err != nil {
		return err
	}
	var buf [8]byte
	if _, err := l.File().ReadAt(buf[:], 8); err != nil && err != io.EOF {
		return err
	}
	binary.LittleEndian.PutUint64(buf[:], binary.LittleEndian.Uint64(buf[:])+1)
	if _, err := l.File().WriteAt(buf[:], 8); err != nil {
		return err
	}
	return l.Unlock(0)
}

func lockChild(mode, path string, off int64, extra ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=lockholder",
		"RUNNEL_LOCK_MODE="+mode,
		"RUNNEL_LOCK_PATH="+path,
		"RUNNEL_LOCK_OFF="+strconv.FormatInt(off, 10),
		// The race runtime otherwise sleeps a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

// holdInChild starts a child process that holds the lock on byte off of
// path, and returns once it does. Closing the returned writer makes the
// child unlock and exit; the child is killed at the end of the test.
func holdInChild(t *testing.T, path string, off int64) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	return holdBytesInChild(t, path, off, 1)
}

// holdBytesInChild is holdInChild of the n bytes from off.
func holdBytesInChild(t *testing.T, path string, off, n int64) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := lockChild("hold", path, off, "RUNNEL_LOCK_N="+strconv.FormatInt(n, 10))
	stdin, stdout := startPiped(t, cmd)
	var waitOnce sync.Once
	t.Cleanup(func() {
		cmd.Process.Kill()
		waitOnce.Do(func() { cmd.Wait() })
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "locked\n" {
			t.Fatalf("child said %q, want \"locked\"", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child did not take the lock within 10s")
	}
	return cmd, stdin
}

// probeInChild reports whether another process could take the lock on byte
// off of path right now.
func probeInChild(t *testing.T, path string, off int64) bool {
	t.Helper()
	out, err := lockChild("probe", path, off).Output()
	if err != nil {
		t.Fatalf("probe child: %v", err)
	}
	ok, err := strconv.ParseBool(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("probe child said %q", out)
	}
	return ok
}

func openTestLock(t testing.TB, path string) *lockFile {
	t.Helper()
	l, err := openLockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustTryLock(t *testing.T, l *lockFile, off int64, want bool) {
	t.Helper()
	got, err := l.TryLock(off)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("TryLock(%d) = %v, want %v", off, got, want)
	}
}

func mustHeldByOther(t *testing.T, l *lockFile, off int64, want bool) {
	t.Helper()
	got, err := l.HeldByOther(off)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("HeldByOther(%d) = %v, want %v", off, got, want)
	}
}

func mustUnlock(t *testing.T, l *lockFile, off int64) {
	t.Helper()
	if err := l.Unlock(off); err != nil {
		t.Fatal(err)
	}
}

// eventuallyFree waits until l can take byte off (a helper left behind by
// a cancelled Lock gives it back soon after it is granted), then releases it.
func eventuallyFree(t *testing.T, l *lockFile, off int64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ok, err := l.TryLock(off)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			mustUnlock(t, l, off)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("byte %d still locked after %v", off, patience)
		}
		time.Sleep(time.Millisecond)
	}
}

// lockAsync starts l.Lock(ctx, off) and checks that it is still blocked a
// moment later.
func lockAsync(t *testing.T, ctx context.Context, l *lockFile, off int64) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- l.Lock(ctx, off) }()
	select {
	case err := <-res:
		t.Fatalf("Lock(%d) returned %v while another holder has it", off, err)
	case <-time.After(30 * time.Millisecond):
	}
	return res
}

func waitLock(t *testing.T, res <-chan error) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case err := <-res:
		return err, time.Since(start)
	case <-time.After(patience):
		t.Fatalf("Lock still blocked after %v", patience)
		return nil, 0
	}
}

func TestLockOpenCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	l := openTestLock(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v, want a regular file with at most 0644", fi.Mode())
	}
	if l.File() == nil {
		t.Error("File() = nil")
	}
	if _, err := openLockFile(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Error("openLockFile in a missing directory succeeded")
	}
}

func TestLockTwoLockFilesConflict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	a, b := openTestLock(t, path), openTestLock(t, path)

	mustTryLock(t, a, 0, true)
	mustTryLock(t, a, 0, true) // the holder again: no-op
	mustTryLock(t, b, 0, false)
	mustTryLock(t, b, 1, true) // a different byte is independent
	mustTryLock(t, a, 1, false)
	mustTryLock(t, a, 2, true)

	mustUnlock(t, a, 0)
	mustTryLock(t, b, 0, true)
	mustTryLock(t, a, 0, false)
	mustTryLock(t, b, 2, false) // unlocking byte 0 left a's byte 2 alone

	mustUnlock(t, b, 5) // not held: no-op
	mustUnlock(t, b, 0)
	mustUnlock(t, b, 1)
	if err := a.Lock(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	mustTryLock(t, b, 0, false)
	mustTryLock(t, b, 1, false)
}

func TestLockHeldByOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.offsets")
	a, b := openTestLock(t, path), openTestLock(t, path)

	mustHeldByOther(t, b, 3, false)
	mustTryLock(t, a, 3, true)
	mustHeldByOther(t, b, 3, true)
	mustHeldByOther(t, a, 3, false) // its own lock is not another's
	mustHeldByOther(t, b, 2, false)
	mustHeldByOther(t, b, 4, false)
	mustUnlock(t, a, 3)
	mustHeldByOther(t, b, 3, false)

	// Held by another process.
	_, stdin := holdInChild(t, path, 7)
	mustHeldByOther(t, a, 7, true)
	mustHeldByOther(t, b, 7, true)
	mustHeldByOther(t, a, 6, false)
	mustTryLock(t, a, 7, false)
	stdin.Close() // the child unlocks and exits
	if err, _ := waitLock(t, lockAsyncMaybe(a, 7)); err != nil {
		t.Fatal(err)
	}
	mustHeldByOther(t, a, 7, false)
	mustHeldByOther(t, b, 7, true)
}

// lockAsyncMaybe is lockAsync without the check that Lock blocks.
func lockAsyncMaybe(l *lockFile, off int64) <-chan error {
	res := make(chan error, 1)
	go func() { res <- l.Lock(context.Background(), off) }()
	return res
}

func TestLockOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	l := openTestLock(t, path)
	mustTryLock(t, l, 0, true)
	if probeInChild(t, path, 0) {
		t.Fatal("another process took a held lock")
	}
	if !probeInChild(t, path, 1) {
		t.Fatal("another process could not take a free byte")
	}
	mustUnlock(t, l, 0)
	if !probeInChild(t, path, 0) {
		t.Fatal("another process could not take a released lock")
	}
}

func TestLockReleasedWhenHolderKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	cmd, _ := holdInChild(t, path, 0)
	l := openTestLock(t, path)
	mustTryLock(t, l, 0, false)

	res := lockAsync(t, context.Background(), l, 0)
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-res:
	case <-time.After(patience):
		t.Fatalf("Lock still blocked %v after the holder was killed", patience)
	}
	handover := time.Since(killed)
	if err != nil {
		t.Fatal(err)
	}
	// How fast is for BenchmarkGroupFailover, which measures a takeover
	// through exactly this hand-over; here it only has to happen.
	t.Logf("lock handed over %v after SIGKILL", handover)
	if err := cmd.Wait(); err == nil {
		t.Error("killed child exited cleanly")
	}
	other := openTestLock(t, path)
	mustHeldByOther(t, other, 0, true)
}

func TestLockCrossProcessExclusion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	const children, perChild, here = 2, 300, 300
	var cmds []*exec.Cmd
	for range children {
		cmd := lockChild("count", path, 0, "RUNNEL_LOCK_N="+strconv.Itoa(perChild))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	l := openTestLock(t, path)
	for range here {
		if err := lockedIncrement(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	var buf [8]byte
	if _, err := l.File().ReadAt(buf[:], 8); err != nil {
		t.Fatal(err)
	}
	if got, want := binary.LittleEndian.Uint64(buf[:]), uint64(children*perChild+here); got != want {
		t.Fatalf("counter = %d, want %d: two holders overlapped", got, want)
	}
}

func TestLockContextCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	holder, waiter := openTestLock(t, path), openTestLock(t, path)
	mustTryLock(t, holder, 0, true)

	// A deadline. (Returning the moment ctx ends is all a waiter can
	// check; how soon after is the scheduler's business.)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := waiter.Lock(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want context.DeadlineExceeded", err)
	}

	// An explicit cancel, while a helper from the first call still waits.
	ctx, cancel = context.WithCancel(context.Background())
	res := lockAsync(t, ctx, waiter, 0)
	cancel()
	if err, _ := waitLock(t, res); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock = %v, want context.Canceled", err)
	}

	// An already cancelled ctx fails even on a free byte, and takes nothing.
	if err := waiter.Lock(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled ctx = %v", err)
	}
	mustHeldByOther(t, holder, 1, false)

	// Nothing stays locked: once the holder releases, the abandoned helper
	// takes the lock and gives it back.
	mustUnlock(t, holder, 0)
	eventuallyFree(t, holder, 0)

	// And the waiter can lock it again.
	if err := waiter.Lock(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	mustTryLock(t, holder, 0, false)
	mustUnlock(t, waiter, 0)
	// Free again, once the abandoned helper is done: on a loaded machine
	// its goroutine may first ask the kernel only now, and hold the byte
	// for a moment before it gives it back (seen in CI's CPU-load pass).
	eventuallyFree(t, holder, 0)
}

// TestLockAfterCancel is the race the helper design must get right: a Lock
// cancelled while the byte is held leaves a helper in the kernel, and a
// later Lock or TryLock on the same lockFile must keep the lock that helper
// is eventually granted.
func TestLockAfterCancel(t *testing.T) {
	cancelled := func(t *testing.T) (holder, waiter *lockFile) {
		path := filepath.Join(t.TempDir(), "p.lock")
		holder, waiter = openTestLock(t, path), openTestLock(t, path)
		mustTryLock(t, holder, 0, true)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := waiter.Lock(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock = %v, want context.DeadlineExceeded", err)
		}
		return holder, waiter
	}
	// stillHeld checks, once the cancelled Lock's helper has returned and
	// kept or given back what it was granted, that waiter holds byte 0,
	// then frees it.
	stillHeld := func(t *testing.T, holder, waiter *lockFile) {
		waitFor(t, patience, "the cancelled Lock's helper to finish", func() bool { return lockHelpersIdle(waiter) })
		mustTryLock(t, holder, 0, false)
		mustHeldByOther(t, holder, 0, true)
		mustUnlock(t, waiter, 0)
		eventuallyFree(t, holder, 0)
	}

	t.Run("lock while held", func(t *testing.T) {
		holder, waiter := cancelled(t)
		res := lockAsync(t, context.Background(), waiter, 0)
		mustUnlock(t, holder, 0)
		if err, _ := waitLock(t, res); err != nil {
			t.Fatal(err)
		}
		stillHeld(t, holder, waiter)
	})
	t.Run("lock after release", func(t *testing.T) {
		holder, waiter := cancelled(t)
		mustUnlock(t, holder, 0)
		if err := waiter.Lock(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		stillHeld(t, holder, waiter)
	})
	t.Run("trylock after release", func(t *testing.T) {
		holder, waiter := cancelled(t)
		mustUnlock(t, holder, 0)
		deadline := time.Now().Add(patience)
		for {
			ok, err := waiter.TryLock(0)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("TryLock failed for %v after the holder released", patience)
			}
			time.Sleep(time.Millisecond)
		}
		stillHeld(t, holder, waiter)
	})
	t.Run("lock and unlock while held", func(t *testing.T) {
		holder, waiter := cancelled(t)
		res := lockAsync(t, context.Background(), waiter, 0)
		mustUnlock(t, holder, 0)
		if err, _ := waitLock(t, res); err != nil {
			t.Fatal(err)
		}
		mustUnlock(t, waiter, 0)
		eventuallyFree(t, holder, 0)
	})
}

func TestLockCloseReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	a, b := openTestLock(t, path), openTestLock(t, path)
	mustTryLock(t, a, 0, true)
	mustTryLock(t, a, 9, true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	mustTryLock(t, b, 0, true)
	mustTryLock(t, b, 9, true)
	if !probeInChild(t, path, 1) {
		t.Fatal("byte 1 is locked after Close")
	}
	for name, err := range map[string]error{
		"Lock":   a.Lock(context.Background(), 0),
		"Unlock": a.Unlock(0),
		"TryLock": func() error {
			_, err := a.TryLock(0)
			return err
		}(),
		"HeldByOther": func() error {
			_, err := a.HeldByOther(0)
			return err
		}(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close = %v, want os.ErrClosed", name, err)
		}
	}
}

func TestLockCloseKeepsOtherLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	a, b, c := openTestLock(t, path), openTestLock(t, path), openTestLock(t, path)
	mustTryLock(t, a, 0, true)
	mustTryLock(t, b, 1, true)
	if err := c.Close(); err != nil { // holds nothing
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // holds byte 1
		t.Fatal(err)
	}
	// a's lock survives, for this process and for others.
	d := openTestLock(t, path)
	mustTryLock(t, d, 0, false)
	mustHeldByOther(t, d, 0, true)
	if probeInChild(t, path, 0) {
		t.Fatal("closing other lockFiles dropped a's lock")
	}
	if !probeInChild(t, path, 1) {
		t.Fatal("b's lock survived its Close")
	}
	// So does a's use of the file.
	if _, err := a.File().WriteAt([]byte("x"), 100); err != nil {
		t.Fatal(err)
	}
}

func TestLockCloseWakesLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	holder, waiter := openTestLock(t, path), openTestLock(t, path)
	mustTryLock(t, holder, 0, true)
	res := lockAsync(t, context.Background(), waiter, 0)
	if err := waiter.Close(); err != nil {
		t.Fatal(err)
	}
	if err, _ := waitLock(t, res); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Lock = %v, want os.ErrClosed", err)
	}
	mustUnlock(t, holder, 0)
	eventuallyFree(t, holder, 0) // the closed waiter's helper gives it back
	if !probeInChild(t, path, 0) {
		t.Fatal("byte 0 still locked")
	}
}

// TestLockStress runs lockFiles of one file against each other, with
// TryLocks and with Locks that time out (leaving helpers behind that later
// Locks, TryLocks and Unlocks race with), and checks that no two ever hold
// byte 0 at once. The interleavings it needs are a matter of scheduling, so
// it runs many short rounds.
func TestLockStress(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "p.lock")
		const workers, iters = 4, 200
		var inside atomic.Int32
		var wg sync.WaitGroup
		for w := range workers {
			l := openTestLock(t, path)
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for range iters {
					var err error
					switch rng.IntN(4) {
					case 0:
						var ok bool
						if ok, err = l.TryLock(0); err == nil && !ok {
							continue
						}
					case 1:
						ctx, cancel := context.WithTimeout(context.Background(),
							time.Duration(rng.IntN(200))*time.Microsecond)
						err = l.Lock(ctx, 0)
						cancel()
						if errors.Is(err, context.DeadlineExceeded) {
							continue
						}
					default:
						err = l.Lock(context.Background(), 0)
					}
					if err != nil {
						t.Error(err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					runtime.Gosched()
					inside.Add(-1)
					if err := l.Unlock(0); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
		eventuallyFree(t, openTestLock(t, path), 0)
	}
}

func BenchmarkLockUnlock(b *testing.B) {
	path := filepath.Join(b.TempDir(), "p.lock")
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{
		{"ctx=background", context.Background()},
		{"ctx=cancelable", cancelable},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := openTestLock(b, path)
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Lock(bc.ctx, 0); err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
