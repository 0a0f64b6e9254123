package runnel

import "golang.org/x/sys/unix"

// reserveBlocks allocates blocks for n bytes from off without changing the
// file's size (FALLOC_FL_KEEP_SIZE), so that appends there need no
// allocation.
func reserveBlocks(fd int, off, n int64) error {
	for {
		err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
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
