package runnel

// appender is the write path's one seam: every frame a Log writes goes
// through it, so the io_uring backend (ring_linux.go) and the portable
// pwrite backend (ring_other.go) are interchangeable.
//
// appendFrame writes frame at off in the file fd, then, strictly after that
// write completed, the commit byte (frame.StateCommitted at
// off+frame.OffState), then, when sync is set, fdatasyncs the file. It
// returns only when all of that is done. On error the frame may be partly
// written but its commit byte is not set, so readers never deliver it and
// the next writer repairs it.
//
// Implementations are safe for concurrent use: partitions append in
// parallel, and one partition's fdatasync must not wait for another's.
type appender interface {
	appendFrame(fd int, off int64, frame []byte, sync bool) error
	// name is the backend's name as Stats reports it: "io_uring" or "pwrite".
	name() string
	close() error
}

// Backend names, for Options.Backend and Stats.
const (
	BackendAuto    = ""         // the backend measured fastest: pwrite today
	BackendIOURing = "io_uring" // linked io_uring chain per batch (Linux)
	BackendPwrite  = "pwrite"   // pwrite + pwrite + fdatasync, everywhere
)
