// Package uring is a minimal binding to Linux io_uring, written from the
// kernel ABI on golang.org/x/sys/unix without cgo. It offers what runnel's
// append path needs and nothing more: positional WRITE and WRITEV, FSYNC
// (optionally datasync only), linked chains (FlagLink), submit-and-wait in one
// io_uring_enter, and an opcode probe.
//
// # Use
//
//	r, err := uring.New(4, 0)
//	...
//	r.PrepWrite(fd, frame, off, uring.FlagLink, 1)
//	r.PrepWrite(fd, marker, off+5, uring.FlagLink, 2)
//	r.PrepFsync(fd, uring.FsyncDatasync, 0, 3)
//	err = r.SubmitAndWait(3) // one io_uring_enter: submit 3, wait for 3
//	for c, ok := r.PeekCQE(); ok; c, ok = r.PeekCQE() { ... c.UserData, c.Res ... }
//
// # Memory
//
// The kernel reads a write's buffer (and a WRITEV's iovec array) at some
// point between submission and completion, through an address stored as a
// plain integer in the shared submission entry, where Go's garbage collector
// cannot see it. A Ring therefore keeps a reference to every buffer and iovec
// array of an operation in a Go-side table, indexed by the user_data the
// kernel sees, from the Prep call until PeekCQE returns that operation's
// completion. Go's heap does not move objects, and a buffer handed to a Prep
// method escapes to the heap (the table holds it), so its address stays valid
// for that whole time. Callers must not modify a buffer while its operation
// is in flight.
//
// The ring's head and tail indexes are shared with the kernel. This package
// reads the kernel-written ones (SQ head, CQ tail) with atomic loads and
// publishes its own (SQ tail, CQ head) with atomic stores, which gives the
// load-acquire / store-release pairing the ABI requires: entries are filled
// before the SQ tail store, and a completion is copied out before the CQ head
// store hands its slot back to the kernel.
//
// # Concurrency
//
// A Ring is not safe for concurrent use: one goroutine at a time may call its
// methods. Pool rings to serve many goroutines.
//
// # Limits
//
// SQPOLL and IOPOLL rings are not supported (New refuses them): this package
// relies on the kernel reading the submission queue only inside
// io_uring_enter. The package is empty on systems other than Linux.
package uring
