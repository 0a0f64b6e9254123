//go:build linux

package uring

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxBusyRetries bounds how often SubmitAndWait retries an io_uring_enter
// that failed with EAGAIN or EBUSY (the kernel could not allocate requests,
// or has completions backed up) before giving up; with backoff that is
// tens of milliseconds.
const maxBusyRetries = 64

// SubmitAndWait submits every prepared entry and waits until at least
// waitNr completions are ready to be reaped with PeekCQE, normally in a
// single io_uring_enter call. waitNr 0 submits without waiting; waitNr may
// not exceed InFlight.
//
// EINTR (a signal, such as the Go runtime's preemption signal, interrupted
// the wait) is retried. So are EAGAIN and EBUSY, with backoff, a bounded
// number of times. If the kernel takes only part of the batch (it could not
// allocate requests for the rest), the error wraps ErrPartialSubmit. On any
// error, entries the kernel had not taken are dropped (they will not
// complete and no longer count in InFlight); entries it took are in flight,
// and their completions must still be reaped before Close.
func (r *Ring) SubmitAndWait(waitNr uint32) error {
	if r.isClosed {
		return ErrClosed
	}
	if int(waitNr) > r.InFlight() {
		return fmt.Errorf("uring: wait for %d completions with %d operations in flight: %w", waitNr, r.InFlight(), unix.EINVAL)
	}
	// Store-release of the SQ tail: the entries filled before it are
	// visible to the kernel once it reads the new tail.
	atomic.StoreUint32(r.kSQTail, r.sqTail)
	busy := 0
	for {
		// Load-acquire of the SQ head (entries the kernel consumed) and
		// of the CQ tail (completions it posted, with their contents).
		toSubmit := r.sqTail - atomic.LoadUint32(r.kSQHead)
		ready := atomic.LoadUint32(r.kCQTail) - atomic.LoadUint32(r.kCQHead)
		if toSubmit == 0 && ready >= waitNr {
			return nil
		}
		var flags, minComplete uintptr
		if ready < waitNr {
			// The kernel waits until waitNr completions are in the
			// ring in total, counting ones posted before this call.
			flags, minComplete = enterGetEvents, uintptr(waitNr)
		}
		r.enters++
		// The result is the number of entries the kernel took. If a
		// signal cut the wait short, the loop enters again to wait.
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), minComplete, flags, 0, 0)
		switch errno {
		case 0:
			if uint32(n) < toSubmit {
				// Linked entries submitted in two calls would
				// not be linked to each other, so the rest of
				// the batch is dropped rather than sent later.
				r.unqueue()
				return fmt.Errorf("uring: kernel took %d of %d entries: %w", n, toSubmit, ErrPartialSubmit)
			}
		case unix.EINTR:
		case unix.EAGAIN, unix.EBUSY:
			busy++
			if busy > maxBusyRetries {
				r.unqueue()
				return fmt.Errorf("uring: io_uring_enter: %w (after %d retries)", errno, maxBusyRetries)
			}
			backoff(busy)
		default:
			r.unqueue()
			return fmt.Errorf("uring: io_uring_enter: %w", errno)
		}
	}
}

// backoff yields for the first few retries, then sleeps up to a millisecond.
func backoff(n int) {
	if n <= 3 {
		runtime.Gosched()
		return
	}
	time.Sleep(min(time.Microsecond<<n, time.Millisecond))
}

// unqueue takes back the published entries the kernel has not consumed.
// Without SQPOLL the kernel reads the submission queue only inside
// io_uring_enter, so between calls moving the tail back is safe.
func (r *Ring) unqueue() {
	head := atomic.LoadUint32(r.kSQHead)
	for i := head; i != r.sqTail; i++ {
		r.release(uint32(r.sqes[i&r.sqMask].userData))
	}
	r.sqTail = head
	atomic.StoreUint32(r.kSQTail, head)
}

// PeekCQE returns the oldest ready completion, if any, and hands its slot
// back to the kernel. From then on the Ring no longer keeps that
// operation's buffers alive.
func (r *Ring) PeekCQE() (CQE, bool) {
	if r.isClosed {
		return CQE{}, false
	}
	head := atomic.LoadUint32(r.kCQHead)
	if head == atomic.LoadUint32(r.kCQTail) {
		return CQE{}, false
	}
	c := r.cqes[head&r.cqMask]
	// Store-release of the CQ head, after the copy above: the kernel may
	// reuse the slot as soon as it sees the new head.
	atomic.StoreUint32(r.kCQHead, head+1)
	if c.userData >= uint64(len(r.ops)) || !r.ops[c.userData].used {
		// Every entry this package submits carries the index of a
		// used slot; anything else means the ring's memory is not
		// what this package believes it is.
		panic(fmt.Sprintf("uring: completion for unknown user_data %d", c.userData))
	}
	slot := uint32(c.userData)
	out := CQE{UserData: r.ops[slot].userData, Res: c.res, Flags: c.flags}
	r.release(slot)
	return out, true
}
