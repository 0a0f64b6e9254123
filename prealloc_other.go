//go:build !linux

package runnel

import "errors"

// reserveBlocks reserves nothing outside Linux: the portable calls
// (posix_fallocate, F_PREALLOCATE) either change the file's size, which
// readers would see as zeros past the data, or are not measured here.
func reserveBlocks(fd int, off, n int64) error {
	return errors.ErrUnsupported
}

// allocateBlocks leaves allocation to allocateFile's zero fill outside
// Linux.
func allocateBlocks(fd int, off, n int64) error {
	return errors.ErrUnsupported
}

// extendFile extends nothing outside Linux, where frames are not written
// through a mapping (commitmap_other.go).
func extendFile(fd int, off, n int64) error {
	return errors.ErrUnsupported
}
