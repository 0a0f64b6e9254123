// Package flockwait takes flock(2) locks, waiting at most until a context
// ends.
package flockwait

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// retryMax is the longest interval between two tries of a lock.
const retryMax = 20 * time.Millisecond

// Lock takes a flock of kind how (unix.LOCK_SH or unix.LOCK_EX) on fd,
// waiting at most until ctx ends, and then returns ctx.Err(). A blocking
// flock cannot be called off: it would wait for a holder that never lets
// go (a process stopped with SIGSTOP, or hung), holding a thread, so the
// lock is tried again at growing intervals, up to retryMax, instead.
func Lock(ctx context.Context, fd int, how int) error {
	for delay := time.Millisecond; ; delay = min(2*delay, retryMax) {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
