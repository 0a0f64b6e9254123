//go:build linux

package uring

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe is the kernel's answer to IORING_REGISTER_PROBE: which opcodes this
// kernel implements. An opcode can also be disabled for a ring by
// restrictions, which runnel never registers.
type Probe struct {
	lastOp    Op
	supported [256]bool
}

// Probe asks the kernel which opcodes it supports. Kernels before 5.6 have
// no probe and fail with EINVAL; they also lack OpWrite.
func (r *Ring) Probe() (*Probe, error) {
	if r.isClosed {
		return nil, ErrClosed
	}
	// The kernel refuses a probe buffer that is not zeroed.
	var buf struct {
		hdr probeHeader
		ops [256]probeOp
	}
	// The pointer converted in the argument list of an assembly function
	// stays live for the call; no KeepAlive is needed.
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe,
		uintptr(unsafe.Pointer(&buf)), uintptr(len(buf.ops)), 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("uring: io_uring_register(PROBE): %w", errno)
	}
	p := &Probe{lastOp: Op(buf.hdr.lastOp)}
	for _, o := range buf.ops[:buf.hdr.opsLen] {
		if o.flags&probeOpSupported != 0 {
			p.supported[o.op] = true
		}
	}
	return p, nil
}

// LastOp is the highest opcode the kernel knows.
func (p *Probe) LastOp() Op { return p.lastOp }

// Supported reports whether the kernel implements op.
func (p *Probe) Supported(op Op) bool { return p.supported[op] }

// Require returns nil if every op is supported, else an error naming the
// missing ones that wraps errors.ErrUnsupported.
func (p *Probe) Require(ops ...Op) error {
	var missing []Op
	for _, op := range ops {
		if !p.Supported(op) {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("uring: kernel lacks opcodes %v: %w", missing, errors.ErrUnsupported)
	}
	return nil
}
