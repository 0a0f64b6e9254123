package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile is a file used for exclusive byte-range locks, one byte each.
// runnel uses three kinds:
//
//   - a partition's writer lock: byte 0 of partition.meta;
//   - consumer-group ownership: a member owns partition p by locking byte
//     2^30+p of the group's offsets file (see offsets.go);
//   - group member slots: a member holds one slot byte while it lives, and
//     the others count live members by probing slots with HeldByOther.
//
// The kernel drops a lock when its holder dies, however it dies, so no lock
// ever needs a heartbeat, a lease or a cleanup pass.
//
// # Holders
//
// Each openLockFile call is an independent holder: two lockFiles on the same
// path conflict with each other exactly as two processes do, whether they
// belong to one goroutine, two goroutines or two Logs. A lockFile is one
// holder, not one goroutine: locking a byte the lockFile already holds
// succeeds at once, and Unlock releases it whoever calls it, so goroutines
// that share a lockFile must order their use of a byte themselves (as the
// partition writer does with its mutex).
//
// # Linux
//
// Locks are open-file-description (OFD) locks (F_OFD_SETLK, F_OFD_SETLKW,
// F_OFD_GETLK, Linux 3.15 and later). They belong to the open file
// description that openLockFile created, so they conflict between two
// lockFiles of one process and are released by Close or by the holder's
// death. The kernel does no deadlock detection for them.
//
// # Other Unix systems
//
// Classic fcntl locks (F_SETLK, F_SETLKW, F_GETLK) belong to the process:
// they never conflict inside it, and closing any descriptor of the file drops
// all of the process's locks on it. lock_other.go therefore keeps a
// process-wide table keyed by (device, inode): every lockFile of one file
// shares a single descriptor, which is closed only when the last of them is,
// and the table records which lockFile holds each byte, so lockFiles of one
// process exclude each other as on Linux. Two consequences for callers:
//
//   - do all I/O on a lock file through File(), and never open the path
//     another way, because closing that other descriptor would silently drop
//     every lock this process holds on the file;
//   - never Close the *os.File that File returns: it is shared.
//
// Classic locks treat the whole process as one owner in deadlock detection,
// so F_SETLKW can report EDEADLK where no lockFile is actually stuck (two
// processes that each hold one file and wait for the other's, from
// different goroutines). The blocked Lock retries after a short back-off.
//
// # Blocking and cancellation
//
// Lock first tries a non-blocking set: one fcntl when the byte is free.
// When the byte is taken it waits in the kernel (F_SETLKW), so a release in
// another process, or that process's death, hands the lock over at once,
// with no polling. The wait runs on a helper goroutine so that Lock can
// return ctx.Err() as soon as ctx is done. A kernel wait cannot be
// interrupted, so after a cancelled Lock the helper stays blocked until the
// byte is free, takes it, and gives it straight back, unless by then the
// byte is wanted again. Because the helper's lock and the lockFile's own
// lock are one owner's (on Linux the open file description's; elsewhere the
// process's), the hand-back must never undo a lock a caller believes it
// holds:
//
//   - a later Lock of the same byte that finds it taken joins the waiting
//     helper instead of starting a second one;
//   - a later Lock or TryLock that gets the byte marks it wanted, so the
//     helper keeps what it is granted;
//   - on Linux, a grant that an Unlock of the byte may have undone (the
//     kernel merges it with the lockFile's own lock, which the Unlock then
//     drops) is asked for again before any waiter is told it holds the lock.
//     Elsewhere no lockFile of the process holds a byte while its helper
//     waits, so the case cannot arise.
//
// If the lock is granted at the moment ctx is done, Lock returns nil and the
// lock is held. Close wakes every Lock waiting on the lockFile (they return
// an error wrapping os.ErrClosed); a helper still blocked then keeps the
// file's descriptor open until it returns.
type lockFile struct {
	path string
	// readOnly is set when the file could only be opened for reading (a
	// read-only directory or file system, another user's file): locks can
	// be tested, not taken. writeErr says why.
	readOnly bool
	writeErr error
	// existing: the file must be there already; it is never created.
	existing bool
	lockFileSys
}

// openLockFile opens the lock file at path, creating it with mode 0644 if
// it does not exist. Where the process may only read it, it is opened
// read-only (see lockFile.readOnly); where it does not exist and cannot be
// created, the error is the one creating it gave (fs.ErrPermission, or
// EROFS).
func openLockFile(path string) (*lockFile, error) {
	l := &lockFile{path: path}
	if err := l.open(); err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return l, nil
}

// openExistingLockFile is openLockFile for a file that must exist
// already: a missing one is fs.ErrNotExist, never created. Readers that
// must leave a directory as they found it (an offsets file removed between
// their listing and their open) use it.
func openExistingLockFile(path string) (*lockFile, error) {
	l := &lockFile{path: path, existing: true}
	if err := l.open(); err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return l, nil
}

// Lock takes the exclusive lock on the byte at off, blocking until it is
// free. If ctx is done first, Lock returns ctx.Err() and holds nothing; a
// ctx that is already done fails even when the byte is free.
func (l *lockFile) Lock(ctx context.Context, off int64) error {
	if off < 0 {
		return l.wrap("lock", off, errNegativeLockOffset)
	}
	if l.readOnly {
		return l.writeErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.lock(ctx, off)
}

// TryLock takes the exclusive lock on the byte at off if no other holder
// has it. It reports false, nil when another holder has it.
func (l *lockFile) TryLock(off int64) (bool, error) {
	if off < 0 {
		return false, l.wrap("lock", off, errNegativeLockOffset)
	}
	if l.readOnly {
		return false, l.writeErr
	}
	return l.tryLock(off)
}

// Unlock releases the lock on the byte at off. Unlocking a byte the
// lockFile does not hold does nothing.
func (l *lockFile) Unlock(off int64) error {
	if off < 0 {
		return l.wrap("unlock", off, errNegativeLockOffset)
	}
	return l.unlock(off)
}

// HeldByOther reports whether a holder other than l — another process, or
// another lockFile in this process — holds the byte at off. It takes no
// lock and costs at most one fcntl. The answer may be stale by the time the
// caller acts on it.
func (l *lockFile) HeldByOther(off int64) (bool, error) {
	if off < 0 {
		return false, l.wrap("test lock", off, errNegativeLockOffset)
	}
	return l.heldByOther(off)
}

// File returns the file, for callers that also read, write or mmap it. It
// stays valid until Close. Callers must never Close it: on systems other
// than Linux it is shared by every lockFile of the same file in the
// process.
func (l *lockFile) File() *os.File { return l.file() }

// Close releases every lock l holds and closes l. Lock calls waiting on l
// return an error wrapping os.ErrClosed, as do later calls. Close is
// idempotent.
func (l *lockFile) Close() error {
	if err := l.close(); err != nil {
		return fmt.Errorf("close lock file %s: %w", l.path, err)
	}
	return nil
}

var errNegativeLockOffset = errors.New("negative offset")

// openFile opens the lock file for reading and writing, creating it
// unless l.existing; where that is not permitted, for reading only, which
// is enough to test locks and to read.
func (l *lockFile) openFile() (*os.File, error) {
	flag := os.O_RDWR | os.O_CREATE
	if l.existing {
		flag = os.O_RDWR
	}
	f, err := openRegular(l.path, flag, 0o644)
	if err == nil || !isPermission(err) {
		return f, err
	}
	rf, rerr := openRegularRead(l.path)
	if rerr != nil {
		return nil, err
	}
	l.readOnly, l.writeErr = true, err
	return rf, nil
}

// isPermission reports whether err says the process may not write: the
// file's or directory's mode, or a read-only file system.
func isPermission(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)
}

func (l *lockFile) wrap(op string, off int64, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s byte %d: %w", op, l.path, off, err)
}

// byteLock describes the one byte at off to fcntl.
func byteLock(typ int16, off int64) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: off, Len: 1}
}

// wholeFile describes every byte of a file, present or future.
func wholeFile(typ int16) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: io.SeekStart}
}

// fcntlLock runs one lock command, retrying when a signal interrupts it.
func fcntlLock(fd uintptr, cmd int, lk *unix.Flock_t) error {
	for {
		err := unix.FcntlFlock(fd, cmd, lk)
		if err != unix.EINTR {
			return err
		}
	}
}

// isContended reports whether a non-blocking set failed because another
// holder has the lock (POSIX allows either error).
func isContended(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES)
}
