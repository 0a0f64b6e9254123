package runnel

import (
	"context"
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// lockFileSys is the Linux part of a lockFile: its own open file
// description, which owns its OFD locks.
type lockFileSys struct {
	f  *os.File
	fd uintptr // f's descriptor; open until closed is set and helpers is 0

	mu      sync.Mutex
	closed  bool
	done    chan struct{}      // closed by Close, to wake waiting Lock calls
	helpers int                // F_OFD_SETLKW helpers still in the kernel
	waits   map[int64]*ofdWait // by byte: the helper waiting for it
}

// ofdWait is one helper's F_OFD_SETLKW on one byte, and what should become
// of the lock when it is granted. Fields other than done are guarded by
// lockFile.mu.
type ofdWait struct {
	done    chan struct{} // closed when the helper has returned
	err     error         // the helper's result, once done is closed
	waiting int           // Lock calls waiting for the result
	// held is set when the lockFile took the byte by another call while the
	// helper was waiting (OFD locks of one description never conflict), and
	// cleared by Unlock. The helper keeps what it is granted if held or
	// waiting says the byte is wanted.
	held bool
	// unlocked is set by an Unlock while the helper is in the kernel. The
	// kernel may have granted the helper's request just before that Unlock
	// (merging it with the lockFile's own lock), in which case the Unlock
	// undid the grant; so a grant that overlaps an Unlock proves nothing and
	// the helper asks again.
	unlocked bool
}

func (l *lockFile) open() error {
	f, err := l.openFile()
	if err != nil {
		return err
	}
	l.f = f
	l.fd = f.Fd()
	l.done = make(chan struct{})
	return nil
}

func (l *lockFile) file() *os.File { return l.f }

func (l *lockFile) lock(ctx context.Context, off int64) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.wrap("lock", off, os.ErrClosed)
	}
	lk := byteLock(unix.F_WRLCK, off)
	err := fcntlLock(l.fd, unix.F_OFD_SETLK, &lk)
	if err == nil {
		if w := l.waits[off]; w != nil {
			w.held = true
		}
		l.mu.Unlock()
		return nil
	}
	if !isContended(err) {
		l.mu.Unlock()
		return l.wrap("lock", off, err)
	}
	// Join the helper already waiting for this byte, if a cancelled Lock
	// left one: a second helper would be granted the same lock (same owner)
	// and the first one's release would drop it.
	w := l.waits[off]
	if w == nil {
		w = &ofdWait{done: make(chan struct{})}
		if l.waits == nil {
			l.waits = make(map[int64]*ofdWait)
		}
		l.waits[off] = w
		l.helpers++
		go l.await(off, w)
	}
	w.waiting++
	l.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
	case <-l.done:
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	w.waiting--
	select {
	case <-w.done:
		// The helper counted this call as waiting when it was granted the
		// lock, so it kept it, unless Close came first.
		if w.err != nil {
			return l.wrap("lock", off, w.err)
		}
		if l.closed {
			return l.wrap("lock", off, os.ErrClosed)
		}
		return nil
	default:
	}
	if l.closed {
		return l.wrap("lock", off, os.ErrClosed)
	}
	// With waiting back at zero the helper releases what it is granted,
	// unless the byte is wanted again by then.
	return ctx.Err()
}

// await blocks in F_OFD_SETLKW for the byte at off on behalf of w's waiters.
func (l *lockFile) await(off int64, w *ofdWait) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for {
		w.unlocked = false
		l.mu.Unlock()
		lk := byteLock(unix.F_WRLCK, off)
		err = fcntlLock(l.fd, unix.F_OFD_SETLKW, &lk)
		l.mu.Lock()
		if err != nil || l.closed || w.held || w.waiting == 0 || !w.unlocked {
			break
		}
		// Waiters want the byte but an Unlock overlapped the wait: ask
		// again (at once granted if the lock is still this lockFile's).
	}
	delete(l.waits, off)
	w.err = err
	if err == nil && (l.closed || (w.waiting == 0 && !w.held)) {
		// Nobody wants it any more. An unlock of a held byte on an open
		// descriptor cannot fail; if it somehow did, Close still releases it.
		un := byteLock(unix.F_UNLCK, off)
		_ = fcntlLock(l.fd, unix.F_OFD_SETLK, &un)
	}
	close(w.done)
	l.helpers--
	if l.closed && l.helpers == 0 {
		// Close returned long ago; its caller can no longer get this error.
		_ = l.f.Close()
	}
}

func (l *lockFile) tryLock(off int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, l.wrap("lock", off, os.ErrClosed)
	}
	lk := byteLock(unix.F_WRLCK, off)
	err := fcntlLock(l.fd, unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		if w := l.waits[off]; w != nil {
			w.held = true
		}
		return true, nil
	case isContended(err):
		return false, nil
	}
	return false, l.wrap("lock", off, err)
}

func (l *lockFile) unlock(off int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.wrap("unlock", off, os.ErrClosed)
	}
	if w := l.waits[off]; w != nil {
		w.held, w.unlocked = false, true
	}
	lk := byteLock(unix.F_UNLCK, off)
	return l.wrap("unlock", off, fcntlLock(l.fd, unix.F_OFD_SETLK, &lk))
}

func (l *lockFile) heldByOther(off int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, l.wrap("test lock", off, os.ErrClosed)
	}
	// F_OFD_GETLK ignores locks of this open file description, so it
	// reports exactly the other holders.
	lk := byteLock(unix.F_WRLCK, off)
	if err := fcntlLock(l.fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, l.wrap("test lock", off, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

func (l *lockFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.done)
	// Unlock explicitly rather than rely on close: an mmap of File() keeps
	// the open file description, and with it the locks, alive after the
	// descriptor is closed, and a helper still in the kernel keeps the
	// descriptor itself open until it returns.
	all := wholeFile(unix.F_UNLCK)
	err := fcntlLock(l.fd, unix.F_OFD_SETLK, &all)
	if l.helpers == 0 {
		err = errors.Join(err, l.f.Close())
	}
	return err
}
