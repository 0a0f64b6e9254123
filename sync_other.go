//go:build !linux && !darwin

package runnel

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// platformFdatasync makes a file durable where neither fdatasync nor F_FULLFSYNC is
// known to exist: fsync is the portable upper bound.
func platformFdatasync(fd int) error {
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}
