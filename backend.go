package runnel

import "errors"

// appender is the write path's one seam: every frame a Log writes goes
// through it, so the io_uring backend (ring_linux.go) and the portable
// pwrite backend (ring_other.go) are interchangeable.
//
// appendFrame writes frame at off in the file fd, then, strictly after that
// write completed, the commit byte (frame.StateCommitted at
// off+frame.OffState), then, when sync is set, fdatasyncs the file. cm,
// if not nil, is a shared mapping of the file that a backend may write
// the commit byte through. It
// returns only when all of that is done. On error the frame may be partly
// written but its commit byte is not set, so readers never deliver it and
// the next writer repairs it. An error that wraps *inFlightError says that
// some of it may still be running in the kernel.
//
// sync fdatasyncs the file fd.
//
// Implementations are safe for concurrent use: partitions append in
// parallel, one partition's fdatasync must not wait for another's, and a
// partition's next frame is written while its last one is synced.
type appender interface {
	appendFrame(fd int, off int64, frame []byte, sync bool, cm *commitMap) error
	sync(fd int) error
	// name is the backend's name as Stats reports it: "io_uring" or "pwrite".
	name() string
	close() error
}

// Backend names, for Options.Backend and Stats.
const (
	BackendAuto    = ""         // the backend measured faster for the durability mode: pwrite in both today
	BackendIOURing = "io_uring" // linked io_uring chain per batch (Linux)
	BackendPwrite  = "pwrite"   // pwrite + pwrite + fdatasync, everywhere
)

// inFlightError is an append's failure after which some of its writes may
// still be running in the kernel: the frame's buffer must not be reused
// and the writer lock not released before drained is closed, or a late
// write could land after the next writer's.
type inFlightError struct {
	err     error
	drained <-chan struct{} // closed once nothing of the append is in flight
}

func (e *inFlightError) Error() string { return e.err.Error() + " (writes may still be in flight)" }
func (e *inFlightError) Unwrap() error { return e.err }

// stillInFlight reports whether err says writes may still be in flight,
// and returns the channel that is closed when they are not.
func stillInFlight(err error) (<-chan struct{}, bool) {
	var e *inFlightError
	if errors.As(err, &e) {
		return e.drained, true
	}
	return nil, false
}
