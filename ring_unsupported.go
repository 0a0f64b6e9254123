//go:build !linux

package runnel

import (
	"errors"
	"fmt"
)

// newRingAppender fails off Linux: io_uring exists only in the Linux
// kernel, so Open uses the pwrite backend (or fails, if Options.Backend
// asks for io_uring).
func newRingAppender() (appender, error) {
	return nil, fmt.Errorf("io_uring exists only on Linux: %w", errors.ErrUnsupported)
}
