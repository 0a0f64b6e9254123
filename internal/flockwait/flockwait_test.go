package flockwait

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLock: a lock another open file description holds keeps Lock
// waiting until its context ends (shared against exclusive, exclusive
// against shared), and Lock takes it once it is let go; shared locks
// share.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	holder, waiter := open(), open()
	for _, tc := range []struct {
		name      string
		held, how int
	}{{"shared against exclusive", unix.LOCK_EX, unix.LOCK_SH}, {"exclusive against shared", unix.LOCK_SH, unix.LOCK_EX}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := unix.Flock(int(holder.Fd()), tc.held); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := Lock(ctx, int(waiter.Fd()), tc.how); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock while the lock is held: %v, want the context's end", err)
			}
			done := make(chan error, 1)
			go func() { done <- Lock(context.Background(), int(waiter.Fd()), tc.how) }()
			if err := unix.Flock(int(holder.Fd()), unix.LOCK_UN); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Lock once the lock is let go: %v", err)
			}
			if err := unix.Flock(int(waiter.Fd()), unix.LOCK_UN); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if err := Lock(context.Background(), int(waiter.Fd()), unix.LOCK_SH); err != nil {
		t.Fatalf("a shared lock beside another: %v", err)
	}
}
