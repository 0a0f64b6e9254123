package runnel

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// platformFdatasync makes a file's data durable; Linux's fdatasync reaches the disk.
func platformFdatasync(fd int) error {
	for {
		err := unix.Fdatasync(fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		return nil
	}
}
