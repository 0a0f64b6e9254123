package runnel

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
	"github.com/runnel-log/runnel/internal/uring"
	"golang.org/x/sys/unix"
)

// ringAppender is the io_uring backend. Each append is one linked chain —
// WRITE the frame → WRITE its commit byte → FSYNC(DATASYNC) when syncing —
// submitted and waited for in a single io_uring_enter. The link is what
// orders the commit strictly after the frame: the kernel starts the commit
// write only once the frame write completed in full, and cancels it if that
// write failed or was short.
//
// A process killed by SIGKILL mid-chain is safe for the same reason a
// pwrite is: on exit the kernel cancels or completes the dead task's
// in-flight io_uring requests before it closes its files, and the writer
// lock goes only with the last file reference. So the next writer cannot
// take the lock while the dead one's frame or commit byte is still in
// flight; it finds at most an uncommitted frame, which it cuts.
//
// A uring.Ring serves one goroutine at a time, so the appender keeps a pool
// of rings, created on demand up to max. An append that finds every ring
// busy does not wait for one — that would make one partition's fdatasync
// delay another's append — but takes the pwrite path instead.
type ringAppender struct {
	mu     sync.Mutex
	idle   []*uring.Ring
	rings  int // rings created and not closed or retired: idle and in use
	max    int
	closed bool

	overflows atomic.Uint64 // appends that took the pwrite path: no ring free
}

// ringEntries is a ring's submission queue size: the chain is at most three
// entries.
const ringEntries = 4

// maxChainStalls bounds the resubmissions in a row that make no progress
// (every completion -EINTR or -EAGAIN) before an append gives up.
const maxChainStalls = 100

// newRingAppender probes io_uring — a ring can be set up and the kernel
// supports the WRITE and FSYNC opcodes — and returns the io_uring backend,
// or an error wrapping the cause: ENOSYS (no io_uring in this kernel), EPERM
// (kernel.io_uring_disabled, seccomp), errors.ErrUnsupported (an opcode is
// missing).
func newRingAppender() (appender, error) {
	a, err := newRingPool(ringPoolSize())
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ringPoolSize caps the pool: enough rings for every P to have appends in
// flight on a couple of partitions, and at least 16.
func ringPoolSize() int { return max(16, 2*runtime.GOMAXPROCS(0)) }

func newRingPool(maxRings int) (*ringAppender, error) {
	r, err := newAppendRing(true)
	if err != nil {
		return nil, fmt.Errorf("probing io_uring: %w", err)
	}
	a := &ringAppender{idle: make([]*uring.Ring, 0, maxRings), max: maxRings, rings: 1}
	a.idle = append(a.idle, r)
	return a, nil
}

// newAppendRing sets up one ring; probe checks the opcodes the chain uses,
// which needs doing once per kernel, not once per ring.
func newAppendRing(probe bool) (*uring.Ring, error) {
	// IORING_SETUP_COOP_TASKRUN made no measurable difference: the
	// submitting thread is always waiting in io_uring_enter when its
	// completions arrive.
	r, err := uring.New(ringEntries, 0)
	if err != nil {
		return nil, err
	}
	if probe {
		p, err := r.Probe()
		if err == nil {
			err = p.Require(uring.OpWrite, uring.OpFsync)
		}
		if err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func (a *ringAppender) name() string { return BackendIOURing }

func (a *ringAppender) appendFrame(fd int, off int64, b []byte, sync bool, _ *commitMap) error {
	r, err := a.get()
	if err != nil {
		return err
	}
	if r == nil {
		a.overflows.Add(1)
		return pwriteAppender{}.appendFrame(fd, off, b, sync, nil)
	}
	c := chain{fd: fd, off: off, frame: b, synced: !sync}
	return a.finish(r, c.run(r))
}

func (a *ringAppender) sync(fd int) error {
	r, err := a.get()
	if err != nil {
		return err
	}
	if r == nil {
		a.overflows.Add(1)
		return fdatasync(fd)
	}
	c := chain{fd: fd, commit: true}
	return a.finish(r, c.run(r))
}

// finish returns r to the pool after an operation that ended with err. If
// the operation failed with entries still in flight, the ring is retired
// instead and err says so (*inFlightError): the caller must neither reuse
// the buffers it gave nor let another writer append before they drained.
func (a *ringAppender) finish(r *uring.Ring, err error) error {
	if err != nil && r.InFlight() > 0 {
		a.mu.Lock()
		a.rings--
		a.mu.Unlock()
		return &inFlightError{err: err, drained: retireRing(r)}
	}
	a.put(r)
	return err
}

// get takes an idle ring, or creates one while under the cap. It returns
// nil, nil when the caller should take the pwrite path.
func (a *ringAppender) get() (*uring.Ring, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, fmt.Errorf("io_uring append: %w", ErrClosed)
	}
	if n := len(a.idle); n > 0 {
		r := a.idle[n-1]
		a.idle = a.idle[:n-1]
		a.mu.Unlock()
		return r, nil
	}
	if a.rings >= a.max {
		a.mu.Unlock()
		return nil, nil
	}
	a.rings++
	a.mu.Unlock()

	r, err := newAppendRing(false)
	if err != nil {
		// Out of descriptors or locked memory, most likely: stop
		// growing the pool, and let this append use pwrite.
		a.mu.Lock()
		a.rings--
		a.max = max(a.rings, 1)
		a.mu.Unlock()
		return nil, nil
	}
	return r, nil
}

// put returns a ring with nothing in flight to the pool, or closes it if
// the appender closed meanwhile.
func (a *ringAppender) put(r *uring.Ring) {
	a.mu.Lock()
	if a.closed {
		a.rings--
		a.mu.Unlock()
		r.Close()
		return
	}
	a.idle = append(a.idle, r)
	a.mu.Unlock()
}

// close closes the idle rings; a ring in use by an append still running is
// closed when that append returns it.
func (a *ringAppender) close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	idle := a.idle
	a.idle = nil
	a.rings -= len(idle)
	a.mu.Unlock()
	var errs []error
	for _, r := range idle {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// retireRing takes a ring whose io_uring_enter failed with operations of
// unknown outcome out of service: a goroutine keeps reaping it until every
// operation completed (its table keeps the buffers the kernel may still
// read reachable meanwhile), closes the returned channel, and closes the
// ring. It stays idle unless io_uring_enter fails in ways the kernel does
// not document for this use.
func retireRing(r *uring.Ring) <-chan struct{} {
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for pause := time.Millisecond; r.InFlight() > 0; pause = min(2*pause, time.Second) {
			if err := ringEnter(r, uint32(r.InFlight())); err != nil {
				time.Sleep(pause)
			}
			for _, ok := ringPeek(r); ok; _, ok = ringPeek(r) {
			}
		}
		r.Close()
	}()
	return drained
}

// ringEnter and ringPeek are the ring's SubmitAndWait and PeekCQE,
// variables so that tests can make io_uring_enter fail with operations in
// flight, and keep them in flight.
var (
	ringEnter = (*uring.Ring).SubmitAndWait
	ringPeek  = (*uring.Ring).PeekCQE
)

// Steps of an append chain; each step's index is its user_data.
const (
	stepFrame = iota
	stepCommit
	stepSync
)

// chain is one append's progress. Every step is idempotent — positional
// writes of the same bytes, and fdatasync — so a step that did not complete
// is simply submitted again, together with the steps after it.
type chain struct {
	fd      int
	off     int64
	frame   []byte
	written int  // bytes of frame known to be on file
	commit  bool // commit byte written
	synced  bool // fdatasync done, or not asked for

	err   error      // the first hard failure
	retry unix.Errno // the last retryable errno seen
}

func (c *chain) done() bool { return c.written == len(c.frame) && c.commit && c.synced }

// run submits what is left of the chain and reaps its completions until it
// is done or fails. Normally that is one round: one io_uring_enter.
func (c *chain) run(r *uring.Ring) error {
	stalls := 0 // rounds in a row without progress
	for !c.done() {
		n, err := c.prep(r)
		if err != nil {
			return fmt.Errorf("io_uring append: %w", err)
		}
		if err := ringEnter(r, n); err != nil {
			if r.InFlight() == 0 {
				return fmt.Errorf("io_uring append: %w", err)
			}
			// Part of the chain is in the kernel. Its outcome must be
			// known before returning: a commit that landed after an
			// error was reported would break the append contract.
			if werr := waitAll(r); werr != nil {
				return fmt.Errorf("io_uring append: %w; waiting for the operations submitted: %w", err, werr)
			}
		}
		progress := false
		for cqe, ok := r.PeekCQE(); ok; cqe, ok = r.PeekCQE() {
			if c.absorb(cqe.UserData, cqe.Res) {
				progress = true
			}
		}
		if c.err != nil {
			return c.err
		}
		if progress {
			stalls = 0
		} else if stalls++; stalls > maxChainStalls {
			return fmt.Errorf("io_uring append at %d: %w (no progress after %d retries)", c.off, c.retry, maxChainStalls)
		}
	}
	return nil
}

// prep queues the steps still to do, each linked to the next.
func (c *chain) prep(r *uring.Ring) (uint32, error) {
	needFrame, needCommit, needSync := c.written < len(c.frame), !c.commit, !c.synced
	var n uint32
	if needFrame {
		n++
		if err := r.PrepWrite(c.fd, c.frame[c.written:], c.off+int64(c.written), linkIf(needCommit || needSync), stepFrame); err != nil {
			return 0, err
		}
	}
	if needCommit {
		n++
		if err := r.PrepWrite(c.fd, commitByte, c.off+frame.OffState, linkIf(needSync), stepCommit); err != nil {
			return 0, err
		}
	}
	if needSync {
		n++
		if err := r.PrepFsync(c.fd, uring.FsyncDatasync, 0, stepSync); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func linkIf(more bool) uring.SQEFlags {
	if more {
		return uring.FlagLink
	}
	return 0
}

// absorb records one completion and reports whether it was progress.
//
// A short frame write breaks the link, so the commit comes back -ECANCELED
// and the next round writes the rest of the frame, then the commit. -EINTR
// and -EAGAIN leave the step to be retried; any other error ends the
// append, with the commit not written unless that error is fdatasync's
// (as with the pwrite backend, the frame is then committed in the page
// cache but not known to be durable).
func (c *chain) absorb(step uint64, res int32) bool {
	if res < 0 {
		switch errno := unix.Errno(-res); errno {
		case unix.ECANCELED:
			// A step before this one failed; its completion decides.
		case unix.EINTR, unix.EAGAIN:
			c.retry = errno
		default:
			if c.err == nil {
				c.err = c.stepError(step, errno)
			}
		}
		return false
	}
	switch step {
	case stepFrame:
		left := len(c.frame) - c.written
		if res == 0 || int(res) > left {
			if c.err == nil {
				c.err = fmt.Errorf("io_uring write of frame at %d: %d of %d bytes written: %w", c.off, res, left, unix.EIO)
			}
			return false
		}
		c.written += int(res)
	case stepCommit:
		if res != 1 {
			if c.err == nil {
				c.err = fmt.Errorf("io_uring write of commit byte at %d: %d bytes written: %w", c.off+frame.OffState, res, unix.EIO)
			}
			return false
		}
		c.commit = true
	case stepSync:
		c.synced = true
	}
	return true
}

func (c *chain) stepError(step uint64, errno unix.Errno) error {
	switch step {
	case stepFrame:
		return fmt.Errorf("io_uring write of frame at %d: %w", c.off+int64(c.written), errno)
	case stepCommit:
		return fmt.Errorf("io_uring write of commit byte at %d: %w", c.off+frame.OffState, errno)
	}
	return fmt.Errorf("io_uring fdatasync: %w", errno)
}

// waitAll waits, retrying for a while, until every operation in flight on
// r has completed, so their results can be reaped.
func waitAll(r *uring.Ring) error {
	var err error
	for range 100 {
		if err = ringEnter(r, uint32(r.InFlight())); err == nil {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return err
}
