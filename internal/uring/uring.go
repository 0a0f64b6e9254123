//go:build linux

package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Op is an io_uring opcode (IORING_OP_*).
type Op uint8

// The opcodes this package builds entries for.
const (
	OpNop    Op = 0  // IORING_OP_NOP, since Linux 5.1
	OpWritev Op = 2  // IORING_OP_WRITEV, since Linux 5.1
	OpFsync  Op = 3  // IORING_OP_FSYNC, since Linux 5.1
	OpWrite  Op = 23 // IORING_OP_WRITE, since Linux 5.6
)

func (o Op) String() string {
	switch o {
	case OpNop:
		return "NOP"
	case OpWritev:
		return "WRITEV"
	case OpFsync:
		return "FSYNC"
	case OpWrite:
		return "WRITE"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// SQEFlags are per-entry flags (IOSQE_*).
type SQEFlags uint8

// FlagLink (IOSQE_IO_LINK) links an entry to the next one in the
// submission queue: the next starts only after this one completed, and if
// this one fails — an error, or a short read or write — every later entry of
// the chain completes with -ECANCELED without running.
const FlagLink SQEFlags = 1 << 2

// FsyncDatasync (IORING_FSYNC_DATASYNC) makes PrepFsync an fdatasync.
const FsyncDatasync uint32 = 1 << 0

// SetupFlags are io_uring_setup flags (IORING_SETUP_*) that New accepts.
type SetupFlags uint32

const (
	// SetupClamp caps an oversized entries count instead of failing.
	SetupClamp SetupFlags = 1 << 4
	// SetupCoopTaskrun (Linux 5.19) lets the kernel run completion work
	// when the task next enters the kernel instead of interrupting it.
	// Older kernels reject it with EINVAL.
	SetupCoopTaskrun SetupFlags = 1 << 8
)

// Errors returned by Ring methods.
var (
	// ErrRingFull is returned by a Prep method when the submission queue,
	// or the table of operations in flight, has no free slot: submit and
	// reap completions first.
	ErrRingFull = errors.New("uring: ring full")
	// ErrBusy is returned by Close while operations are in flight or
	// completions are unreaped.
	ErrBusy = errors.New("uring: operations in flight")
	// ErrPartialSubmit is returned by SubmitAndWait when the kernel took
	// only the first part of the prepared entries; the rest were dropped.
	ErrPartialSubmit = errors.New("uring: partial submission")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("uring: ring closed")
)

// CQE is a completion: the user_data given to the Prep call, the kernel's
// result (a byte count, 0, or a negated errno) and the CQE flags.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Err returns the errno a negative Res carries, or nil.
func (c CQE) Err() error {
	if c.Res < 0 {
		return syscall.Errno(-c.Res)
	}
	return nil
}

// Ring is one io_uring instance: its file descriptor, the mapped submission
// and completion rings, and the table that keeps in-flight buffers alive.
// It is not safe for concurrent use.
type Ring struct {
	fd       int
	features uint32

	ringMem []byte // SQ ring, and CQ ring too with featSingleMmap
	cqMem   []byte // CQ ring without featSingleMmap, else nil
	sqeMem  []byte // the SQE array

	// Submission queue. kSQHead is written by the kernel, kSQTail by us.
	kSQHead *uint32
	kSQTail *uint32
	sqMask  uint32
	sqes    []sqe
	sqTail  uint32 // our next free entry; published to kSQTail by flush

	// Completion queue. kCQTail is written by the kernel, kCQHead by us.
	kCQHead *uint32
	kCQTail *uint32
	cqMask  uint32
	cqes    []cqe

	ops      []inflight // indexed by the user_data the kernel sees
	freeOps  []uint32   // indexes of unused ops entries
	enters   uint64     // io_uring_enter calls made, for tests and diagnostics
	isClosed bool
}

// New sets up a ring with room for entries submissions (rounded up to a
// power of two by the kernel) and twice as many completions. flags may
// combine SetupClamp and SetupCoopTaskrun. The error wraps the errno of the
// failing system call: ENOSYS where the kernel lacks io_uring, EPERM where
// it is disabled (kernel.io_uring_disabled, seccomp), ENOMEM past
// RLIMIT_MEMLOCK on kernels before 5.12.
func New(entries uint32, flags SetupFlags) (*Ring, error) {
	if flags&^(SetupClamp|SetupCoopTaskrun) != 0 {
		return nil, fmt.Errorf("uring: unsupported setup flags %#x: %w", uint32(flags), unix.EINVAL)
	}
	var p params
	p.flags = uint32(flags)
	fd, _, errno := unix.Syscall6(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0, 0, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("uring: io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(fd), features: p.features}
	if err := r.mmap(&p); err != nil {
		r.unmap()
		unix.Close(r.fd)
		return nil, err
	}
	// One entry per completion slot bounds what is in flight, so the
	// completion queue can never overflow.
	r.ops = make([]inflight, p.cqEntries)
	r.freeOps = make([]uint32, p.cqEntries)
	for i := range r.freeOps {
		r.freeOps[i] = uint32(len(r.freeOps) - 1 - i)
	}
	return r, nil
}

// mmap maps the rings and the SQE array and points r's fields into them.
func (r *Ring) mmap(p *params) error {
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(cqe{}))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | unix.MAP_POPULATE
	var err error
	if r.ringMem, err = unix.Mmap(r.fd, offSQRing, sqSize, prot, flags); err != nil {
		return fmt.Errorf("uring: mmap SQ ring: %w", err)
	}
	cqMem := r.ringMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, prot, flags); err != nil {
			return fmt.Errorf("uring: mmap CQ ring: %w", err)
		}
		cqMem = r.cqMem
	}
	sqeSize := int(p.sqEntries) * int(unsafe.Sizeof(sqe{}))
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, prot, flags); err != nil {
		return fmt.Errorf("uring: mmap SQEs: %w", err)
	}

	r.kSQHead = u32At(r.ringMem, p.sqOff.head)
	r.kSQTail = u32At(r.ringMem, p.sqOff.tail)
	r.sqMask = *u32At(r.ringMem, p.sqOff.ringMask)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.sqTail = atomic.LoadUint32(r.kSQTail)
	// The SQ array maps ring slots to SQE indexes; an identity map, set
	// once, lets an entry be filled in place at its slot.
	array := unsafe.Slice(u32At(r.ringMem, p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}

	r.kCQHead = u32At(cqMem, p.cqOff.head)
	r.kCQTail = u32At(cqMem, p.cqOff.tail)
	r.cqMask = *u32At(cqMem, p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cqMem[p.cqOff.cqes])), p.cqEntries)
	return nil
}

func u32At(mem []byte, off uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

func (r *Ring) unmap() error {
	var errs []error
	for _, m := range []*[]byte{&r.sqeMem, &r.cqMem, &r.ringMem} {
		if *m != nil {
			if err := unix.Munmap(*m); err != nil {
				errs = append(errs, fmt.Errorf("uring: munmap: %w", err))
			}
			*m = nil
		}
	}
	r.sqes, r.cqes = nil, nil
	r.kSQHead, r.kSQTail, r.kCQHead, r.kCQTail = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Features returns the IORING_FEAT_* bits the kernel reported at setup.
func (r *Ring) Features() uint32 { return r.features }

// InFlight returns how many operations were prepared and have not had their
// completion returned by PeekCQE yet.
func (r *Ring) InFlight() int { return len(r.ops) - len(r.freeOps) }

// EnterCalls returns how many io_uring_enter system calls the ring has
// made, so tests and benchmarks can check the one-call-per-batch promise.
func (r *Ring) EnterCalls() uint64 { return r.enters }

// Close unmaps the rings and closes the ring's descriptor. It refuses, with
// ErrBusy, while any operation is in flight or unreaped: the kernel might
// still read buffers this Ring keeps alive. Close is idempotent.
func (r *Ring) Close() error {
	if r.isClosed {
		return nil
	}
	if r.InFlight() > 0 {
		return fmt.Errorf("%w: %d", ErrBusy, r.InFlight())
	}
	r.isClosed = true
	err := r.unmap()
	if cerr := unix.Close(r.fd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("uring: close: %w", cerr))
	}
	r.fd = -1
	return err
}
