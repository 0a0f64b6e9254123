package runnel

import (
	"errors"

	"golang.org/x/sys/unix"
)

// reserveBlocks allocates blocks for n bytes from off without changing the
// file's size (FALLOC_FL_KEEP_SIZE), so that appends there need no
// allocation.
func reserveBlocks(fd int, off, n int64) error {
	return fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// allocateBlocks allocates blocks for n bytes from off, growing the file
// to off+n if it is shorter (fallocate mode 0: the data is unchanged, and
// blocks already there stay). A file system that cannot is
// errors.ErrUnsupported.
func allocateBlocks(fd int, off, n int64) error {
	err := fallocate(fd, 0, off, n)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return errors.Join(errors.ErrUnsupported, err)
	}
	return err
}

func fallocate(fd int, mode uint32, off, n int64) error {
	for {
		err := unix.Fallocate(fd, mode, off, n)
		if err != unix.EINTR {
			return err
		}
	}
}

// extendFile allocates blocks for n bytes from off and extends the file's
// size over them: zeros that a shared mapping may store into.
func extendFile(fd int, off, n int64) error {
	for {
		err := unix.Fallocate(fd, 0, off, n)
		if err != unix.EINTR {
			return err
		}
	}
}
