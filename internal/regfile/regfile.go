// Package regfile opens the files of a runnel directory without waiting
// on one that is not a regular file.
//
// Opening a FIFO for reading waits until some process opens it for
// writing, which may be never, and a device or a socket is no file runnel
// wrote either: whatever is found at the name of one of runnel's files
// (by hand, by a restore, by a test) must make the call that meets it
// fail, naming the file, not hang. Open is the one rule for that; runnel
// and its Kafka server open every file of their directory through it, and
// every directory they open (to sync it, to lock it) through OpenDir.
package regfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is the cause of Open's error for a name that leads to
// something other than a regular file (a FIFO, a directory, a device, a
// socket).
var ErrNotRegular = errors.New("not a regular file")

// Open is os.OpenFile(path, flag, perm) for a file that must be regular
// (a symbolic link to one is followed, as os.OpenFile does). Anything else
// is refused with an *fs.PathError naming path whose cause wraps
// ErrNotRegular and says what was found, whether the open itself
// succeeded (a FIFO for reading, a directory for reading) or not (a
// directory for writing, a socket).
//
// The open itself must not wait: it adds O_NONBLOCK, with which the
// open of a FIFO returns at once, checks what it opened, and clears
// O_NONBLOCK again on a regular file. The flag changes nothing for a
// regular file's reads and writes through the os package, but it would
// for other users of the descriptor (an io_uring read of a file opened
// O_NONBLOCK fails with EAGAIN where it would have waited for the disk),
// so the file returned is as os.OpenFile would have made it. Nor does it
// change what the open of a regular file waits for: one under another
// holder's lease waits for the lease to be let go, as os.OpenFile's
// does. It costs no
// more system calls than os.OpenFile: on Linux an openat, a failed
// epoll_ctl, an fstat and two fcntl, where os.OpenFile makes an openat,
// four fcntl (setting O_NONBLOCK for the poller, and clearing it when
// the poller refuses a regular file) and the failed epoll_ctl.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, perm)
	if errors.Is(err, syscall.EWOULDBLOCK) && isRegular(path) {
		// Another holder's lease on the file (Linux: Samba's oplocks,
		// an NFS server's delegations), which O_NONBLOCK makes the
		// open refuse where os.OpenFile's waits for its holder to let
		// go, within the kernel's lease-break-time. A FIFO's open never
		// fails so; only one put there since the look would be waited
		// on.
		f, err = os.OpenFile(path, flag, perm)
	}
	if err != nil {
		return nil, refused(path, err)
	}
	if err := check(f); err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, nil
}

// refused is the error of an open of path that failed with err. Where
// something other than a regular file is at path, the open may fail
// before there is anything to check, with an error that does not say
// so: "is a directory" for a directory opened for writing, "no such
// device or address" on Linux for a socket, a FIFO opened for writing
// only, or a device without a driver; a permission error for a FIFO the
// process may not write. That is the same damage as one that opens,
// named as Open names it. Any other failure, a missing file, and one
// there already for O_EXCL, whatever it is, is err as os.OpenFile made
// it.
func refused(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
		return err
	}
	st, serr := os.Stat(path)
	if serr != nil || st.Mode().IsRegular() {
		return err
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: %s", ErrNotRegular, kind(st.Mode()))}
}

// isRegular reports whether path leads to a regular file.
func isRegular(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// check refuses f unless it is a regular file, which it then makes
// blocking again.
func check(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", ErrNotRegular, kind(st.Mode()))
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) { err = syscall.SetNonblock(int(fd), false) }); cerr != nil {
		return cerr
	}
	return err
}

// kind names what a file of mode m is, for the error.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "of mode " + m.String()
}

// WriteFile is os.WriteFile by Open's rule: a FIFO at path, whose open
// for writing would wait for a reader, is refused like anything else
// but a regular file.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Open(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
