//go:build !linux

package runnel

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Classic fcntl locks belong to the process and vanish when any of its
// descriptors for the file is closed. So every lockFile of one file shares
// one lockInode: one descriptor, closed with the last user, and a record of
// which lockFile holds each byte. The kernel lock says "this process";
// lockByte.owner says which lockFile in it.

// lockFileSys is the part of a lockFile specific to classic locks.
type lockFileSys struct {
	ino    *lockInode
	closed bool          // guarded by ino.mu
	done   chan struct{} // closed by Close, to wake this lockFile's Lock calls
}

type inodeKey struct{ dev, ino uint64 }

// lockTable holds the open lockInodes. Lock order: lockTable.mu before
// lockInode.mu.
var lockTable struct {
	mu     sync.Mutex
	inodes map[inodeKey]*lockInode
}

type lockInode struct {
	key   inodeKey
	f     *os.File
	fd    uintptr    // f's descriptor, open while refs > 0
	spare []*os.File // more descriptors for the inode (see open); guarded by lockTable.mu

	mu    sync.Mutex
	refs  int  // open lockFiles plus F_SETLKW helpers in flight
	dead  bool // refs reached 0: fd is closed or about to be
	bytes map[int64]*lockByte
}

// lockByte is the process's state for one byte. An entry exists while the
// byte is held, wanted or waited for; it is deleted by settle when idle.
type lockByte struct {
	owner   *lockFile     // the lockFile holding the byte, or nil
	kernel  bool          // this process holds the fcntl lock
	helper  bool          // an F_SETLKW for the byte is in flight
	waiting int           // Lock calls waiting for the byte
	failed  error         // the last helper's error, for the Lock calls it served
	wake    chan struct{} // closed when the byte may have become available
}

func (b *lockByte) broadcast() {
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

func statKey(st *unix.Stat_t) inodeKey {
	return inodeKey{dev: uint64(st.Dev), ino: uint64(st.Ino)}
}

func (l *lockFile) open() error {
	lockTable.mu.Lock()
	defer lockTable.mu.Unlock()

	// Look the path up before opening it: opening and then closing a second
	// descriptor for a file this process locks would drop its locks.
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err == nil {
		if ino := lockTable.inodes[statKey(&st)]; ino != nil {
			l.attach(ino)
			return nil
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "stat", Path: l.path, Err: err}
	}
	f, err := l.openFile()
	if err != nil {
		return err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return &fs.PathError{Op: "fstat", Path: l.path, Err: err}
	}
	key := statKey(&st)
	if ino := lockTable.inodes[key]; ino != nil {
		// Someone renamed a file this process already locks onto the path
		// between Stat and OpenFile. Closing f would drop those locks, so
		// it lives as long as the shared descriptor.
		ino.spare = append(ino.spare, f)
		l.attach(ino)
		return nil
	}
	if lockTable.inodes == nil {
		lockTable.inodes = make(map[inodeKey]*lockInode)
	}
	ino := &lockInode{key: key, f: f, fd: f.Fd()}
	lockTable.inodes[key] = ino
	l.attach(ino)
	return nil
}

// attach makes l a user of ino. The caller holds lockTable.mu.
func (l *lockFile) attach(ino *lockInode) {
	ino.mu.Lock()
	ino.refs++
	ino.mu.Unlock()
	l.ino = ino
	l.done = make(chan struct{})
}

// release drops one reference to ino and closes its descriptors with the
// last. The caller must not hold ino.mu.
func (ino *lockInode) release() error {
	lockTable.mu.Lock()
	defer lockTable.mu.Unlock()
	ino.mu.Lock()
	ino.refs--
	last := ino.refs == 0
	ino.dead = last
	ino.mu.Unlock()
	if !last {
		return nil
	}
	// Still under lockTable.mu, so no new lockFile can open the inode
	// before its old descriptors are gone.
	delete(lockTable.inodes, ino.key)
	err := ino.f.Close()
	for _, f := range ino.spare {
		err = errors.Join(err, f.Close())
	}
	return err
}

func (l *lockFile) file() *os.File { return l.ino.f }

func (ino *lockInode) byteState(off int64) *lockByte {
	b := ino.bytes[off]
	if b == nil {
		if ino.bytes == nil {
			ino.bytes = make(map[int64]*lockByte)
		}
		b = &lockByte{}
		ino.bytes[off] = b
	}
	return b
}

// settle releases a kernel lock that a helper took for waiters who have all
// gone, and forgets an idle byte. The caller holds ino.mu.
func (ino *lockInode) settle(off int64, b *lockByte) {
	if b.owner != nil || b.helper || b.waiting > 0 {
		return
	}
	if b.kernel {
		if !ino.dead {
			un := byteLock(unix.F_UNLCK, off)
			_ = fcntlLock(ino.fd, unix.F_SETLK, &un) // cannot fail on an open descriptor
		}
		b.kernel = false
	}
	delete(ino.bytes, off)
}

func (l *lockFile) lock(ctx context.Context, off int64) error {
	ino := l.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	b := ino.byteState(off)
	waiting := false
	var err error
	for {
		if l.closed {
			err = l.wrap("lock", off, os.ErrClosed)
			break
		}
		if b.owner == l {
			break
		}
		if b.owner == nil {
			if b.kernel {
				// A helper took it for the waiters; this one is first.
				b.owner = l
				break
			}
			if !b.helper {
				if waiting && b.failed != nil {
					err = l.wrap("lock", off, b.failed)
					break
				}
				lk := byteLock(unix.F_WRLCK, off)
				e := fcntlLock(ino.fd, unix.F_SETLK, &lk)
				if e == nil {
					b.owner, b.kernel = l, true
					break
				}
				if !isContended(e) {
					err = l.wrap("lock", off, e)
					break
				}
				// Another process holds it: one helper waits in the kernel
				// for every lockFile of this process.
				b.helper, b.failed = true, nil
				ino.refs++
				go ino.await(off, b)
			}
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if !waiting {
			b.waiting++
			waiting = true
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		ino.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
		case <-l.done:
		}
		ino.mu.Lock()
	}
	if waiting {
		b.waiting--
	}
	ino.settle(off, b)
	return err
}

// await blocks in F_SETLKW for the byte at off on behalf of the process's
// waiting Lock calls; it holds a reference to ino, so the descriptor stays
// open.
func (ino *lockInode) await(off int64, b *lockByte) {
	err := setlkw(ino.fd, off)
	ino.mu.Lock()
	b.helper = false
	if err == nil {
		b.kernel = true
	} else if b.waiting > 0 {
		b.failed = err
	}
	b.broadcast()
	ino.settle(off, b)
	ino.mu.Unlock()
	_ = ino.release() // a close error here has no caller to go to
}

// setlkw blocks until the process holds the byte at off. Deadlock
// detection sees the process as one owner, so it reports EDEADLK for
// waits that are not deadlocks when different lockFiles of two processes
// hold and wait; back off briefly and wait again.
func setlkw(fd uintptr, off int64) error {
	backoff := time.Millisecond
	for {
		lk := byteLock(unix.F_WRLCK, off)
		err := fcntlLock(fd, unix.F_SETLKW, &lk)
		if !errors.Is(err, unix.EDEADLK) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

func (l *lockFile) tryLock(off int64) (bool, error) {
	ino := l.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if l.closed {
		return false, l.wrap("lock", off, os.ErrClosed)
	}
	if b := ino.bytes[off]; b != nil {
		switch {
		case b.owner == l:
			return true, nil
		case b.owner != nil, b.helper:
			return false, nil
		case b.kernel:
			b.owner = l
			return true, nil
		}
	}
	lk := byteLock(unix.F_WRLCK, off)
	err := fcntlLock(ino.fd, unix.F_SETLK, &lk)
	switch {
	case err == nil:
		b := ino.byteState(off)
		b.owner, b.kernel = l, true
		return true, nil
	case isContended(err):
		return false, nil
	}
	return false, l.wrap("lock", off, err)
}

func (l *lockFile) unlock(off int64) error {
	ino := l.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if l.closed {
		return l.wrap("unlock", off, os.ErrClosed)
	}
	b := ino.bytes[off]
	if b == nil || b.owner != l {
		return nil
	}
	return l.wrap("unlock", off, ino.drop(off, b))
}

// drop releases the kernel lock on a byte that a lockFile held and wakes
// the waiters, which try for it again. The kernel lock is released even
// when this process has waiters, so that other processes get their turn.
// The caller holds ino.mu.
func (ino *lockInode) drop(off int64, b *lockByte) error {
	un := byteLock(unix.F_UNLCK, off)
	err := fcntlLock(ino.fd, unix.F_SETLK, &un)
	b.owner, b.kernel = nil, false
	b.broadcast()
	ino.settle(off, b)
	return err
}

func (l *lockFile) heldByOther(off int64) (bool, error) {
	ino := l.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if l.closed {
		return false, l.wrap("test lock", off, os.ErrClosed)
	}
	if b := ino.bytes[off]; b != nil {
		if b.owner != nil {
			return b.owner != l, nil
		}
		if b.kernel {
			return true, nil // taken for the lockFiles waiting for it
		}
	}
	// F_GETLK ignores this process's own locks, which the table covered.
	lk := byteLock(unix.F_WRLCK, off)
	if err := fcntlLock(ino.fd, unix.F_GETLK, &lk); err != nil {
		return false, l.wrap("test lock", off, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

func (l *lockFile) close() error {
	ino := l.ino
	ino.mu.Lock()
	if l.closed {
		ino.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	var err error
	for off, b := range ino.bytes {
		if b.owner == l {
			err = errors.Join(err, ino.drop(off, b))
		}
	}
	ino.mu.Unlock()
	return errors.Join(err, ino.release())
}
