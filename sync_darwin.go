package runnel

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// platformFdatasync makes a file's data durable. On darwin fsync only reaches the
// drive's cache; F_FULLFSYNC asks the drive to flush it too.
func platformFdatasync(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0); err != nil {
		return fmt.Errorf("fcntl F_FULLFSYNC: %w", err)
	}
	return nil
}
