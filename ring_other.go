package runnel

import (
	"fmt"

	"github.com/runnel-log/runnel/internal/frame"
	"golang.org/x/sys/unix"
)

// pwriteAppender is the portable backend: pwrite the frame, write the
// commit byte (through the segment's shared mapping where there is one,
// commitmap_linux.go, else with a second pwrite), fdatasync. Where the
// writer extended the file past a small frame, the frame itself is copied
// through the mapping instead of pwritten. It is the only backend off
// Linux.
type pwriteAppender struct{}

var commitByte = []byte{frame.StateCommitted}

func (pwriteAppender) appendFrame(fd int, off int64, b []byte, sync bool, cm *commitMap) error {
	if !sync && cm.write(off, b) {
		// A writer keeping the lock in Buffered or Periodic mode, with
		// the file extended past the frame (commitmap_linux.go).
		return nil
	}
	if err := pwriteFull(fd, b, off); err != nil {
		return err
	}
	if !cm.commit(off, b) {
		if err := pwriteFull(fd, commitByte, off+frame.OffState); err != nil {
			return err
		}
	}
	if sync {
		return fdatasync(fd)
	}
	return nil
}

func (pwriteAppender) sync(fd int) error { return fdatasync(fd) }

func (pwriteAppender) name() string { return BackendPwrite }
func (pwriteAppender) close() error { return nil }

// pwriteFull writes all of b at off, retrying short writes and EINTR.
func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("pwrite: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("pwrite: %w", unix.EIO)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
