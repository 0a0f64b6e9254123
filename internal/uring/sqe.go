//go:build linux

package uring

import (
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inflight is one operation between its Prep call and the PeekCQE that
// returns its completion. buf and iov are what keep the memory the kernel
// reads reachable for the garbage collector; iov's backing array is reused
// by later WRITEVs through the same slot.
type inflight struct {
	userData uint64 // the caller's, returned in the CQE
	used     bool
	buf      []byte
	iov      []unix.Iovec
}

// PrepWrite queues IORING_OP_WRITE: write b to fd at offset off (-1: the
// file position, where the kernel has IORING_FEAT_RW_CUR_POS). The
// completion's Res is the byte count written, which may be short, or a
// negated errno.
func (r *Ring) PrepWrite(fd int, b []byte, off int64, flags SQEFlags, userData uint64) error {
	if uint64(len(b)) > math.MaxUint32 {
		return fmt.Errorf("uring: write of %d bytes: %w", len(b), unix.EINVAL)
	}
	e, slot, err := r.next(userData)
	if err != nil {
		return err
	}
	r.ops[slot].buf = b
	*e = sqe{
		opcode:   uint8(OpWrite),
		flags:    uint8(flags),
		fd:       int32(fd),
		off:      uint64(off),
		addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))),
		len:      uint32(len(b)),
		userData: uint64(slot),
	}
	return nil
}

// PrepWritev queues IORING_OP_WRITEV: write the buffers in bufs, in order,
// to fd at offset off. The iovec array is built in storage the Ring reuses,
// so steady-state use does not allocate. Res is as for PrepWrite.
func (r *Ring) PrepWritev(fd int, bufs [][]byte, off int64, flags SQEFlags, userData uint64) error {
	if uint64(len(bufs)) > math.MaxUint32 {
		return fmt.Errorf("uring: writev of %d buffers: %w", len(bufs), unix.EINVAL)
	}
	e, slot, err := r.next(userData)
	if err != nil {
		return err
	}
	op := &r.ops[slot]
	if cap(op.iov) < len(bufs) {
		op.iov = make([]unix.Iovec, len(bufs))
	}
	op.iov = op.iov[:len(bufs)]
	for i, b := range bufs {
		op.iov[i] = unix.Iovec{Base: unsafe.SliceData(b)}
		op.iov[i].SetLen(len(b))
	}
	*e = sqe{
		opcode:   uint8(OpWritev),
		flags:    uint8(flags),
		fd:       int32(fd),
		off:      uint64(off),
		addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(op.iov)))),
		len:      uint32(len(bufs)),
		userData: uint64(slot),
	}
	return nil
}

// PrepFsync queues IORING_OP_FSYNC on fd; fsyncFlags FsyncDatasync makes it
// an fdatasync. Res is 0 or a negated errno.
func (r *Ring) PrepFsync(fd int, fsyncFlags uint32, flags SQEFlags, userData uint64) error {
	e, slot, err := r.next(userData)
	if err != nil {
		return err
	}
	*e = sqe{
		opcode:   uint8(OpFsync),
		flags:    uint8(flags),
		fd:       int32(fd),
		opFlags:  fsyncFlags,
		userData: uint64(slot),
	}
	return nil
}

// PrepNop queues IORING_OP_NOP, which completes with Res 0.
func (r *Ring) PrepNop(flags SQEFlags, userData uint64) error {
	e, slot, err := r.next(userData)
	if err != nil {
		return err
	}
	*e = sqe{opcode: uint8(OpNop), flags: uint8(flags), userData: uint64(slot)}
	return nil
}

// next claims the next submission entry and an inflight slot for an
// operation. The caller fills the entry, with the slot index as the
// user_data the kernel hands back in the completion.
func (r *Ring) next(userData uint64) (*sqe, uint32, error) {
	if r.isClosed {
		return nil, 0, ErrClosed
	}
	if r.sqTail-atomic.LoadUint32(r.kSQHead) > r.sqMask || len(r.freeOps) == 0 {
		return nil, 0, ErrRingFull
	}
	slot := r.freeOps[len(r.freeOps)-1]
	r.freeOps = r.freeOps[:len(r.freeOps)-1]
	r.ops[slot].userData = userData
	r.ops[slot].used = true
	e := &r.sqes[r.sqTail&r.sqMask]
	r.sqTail++
	return e, slot, nil
}

// release frees an inflight slot and drops its references so the buffers
// can be collected; the iovec array is kept for reuse.
func (r *Ring) release(slot uint32) {
	op := &r.ops[slot]
	op.used = false
	op.buf = nil
	clear(op.iov)
	op.iov = op.iov[:0]
	r.freeOps = append(r.freeOps, slot)
}
