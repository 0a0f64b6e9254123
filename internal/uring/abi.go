//go:build linux

package uring

import "unsafe"

// The kernel's io_uring ABI (include/uapi/linux/io_uring.h), only as much of
// it as this package uses. Field order and sizes must match the kernel's
// structs exactly; the size checks below fail to compile otherwise.

// params is struct io_uring_params: filled in by io_uring_setup.
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

// sqringOffsets is struct io_sqring_offsets: byte offsets of the SQ ring's
// fields inside the mapping at offSQRing.
type sqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	flags       uint32
	dropped     uint32
	array       uint32
	resv1       uint32
	userAddr    uint64
}

// cqringOffsets is struct io_cqring_offsets: byte offsets of the CQ ring's
// fields inside the mapping at offCQRing (or offSQRing with
// featSingleMmap).
type cqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	overflow    uint32
	cqes        uint32
	flags       uint32
	resv1       uint32
	userAddr    uint64
}

// sqe is struct io_uring_sqe (64 bytes; IORING_SETUP_SQE128 is never set).
// The unions are named by the member this package uses.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64 // union: off, addr2
	addr        uint64 // union: addr, splice_off_in
	len         uint32
	opFlags     uint32 // union: rw_flags, fsync_flags, ...
	userData    uint64
	bufIndex    uint16 // union: buf_index, buf_group
	personality uint16
	spliceFdIn  int32 // union: splice_fd_in, file_index
	addr3       uint64
	pad2        uint64
}

// cqe is struct io_uring_cqe (16 bytes; IORING_SETUP_CQE32 is never set).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// probeHeader is struct io_uring_probe without its flexible ops array.
type probeHeader struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
}

// probeOp is struct io_uring_probe_op.
type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

// Compile-time layout checks: an index out of range or a negative constant
// stops the build if a struct's size drifts from the kernel's.
var (
	_ = [1]struct{}{}[unsafe.Sizeof(params{})-120]
	_ = [1]struct{}{}[unsafe.Sizeof(sqe{})-64]
	_ = [1]struct{}{}[unsafe.Sizeof(cqe{})-16]
	_ = [1]struct{}{}[unsafe.Sizeof(probeHeader{})-16]
	_ = [1]struct{}{}[unsafe.Sizeof(probeOp{})-8]
)

// mmap offsets (IORING_OFF_*).
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// io_uring_enter flags (IORING_ENTER_*).
const enterGetEvents = 1 << 0

// io_uring_register opcodes (IORING_REGISTER_*).
const registerProbe = 8

// Features reported by io_uring_setup (IORING_FEAT_*).
const featSingleMmap = 1 << 0

// probeOpSupported is IO_URING_OP_SUPPORTED in io_uring_probe_op.flags.
const probeOpSupported = 1 << 0

// Setup flags this package refuses: SQPOLL and IOPOLL change who reads the
// submission queue and when, which the memory-ordering and un-queueing logic
// here does not handle; SQE128 and CQE32 change the entry sizes.
const (
	setupIOPoll = 1 << 0
	setupSQPoll = 1 << 1
	setupSQE128 = 1 << 10
	setupCQE32  = 1 << 11
)
