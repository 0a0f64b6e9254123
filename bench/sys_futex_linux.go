package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex is the physical reference of the latency workload: no log at all,
// just a shared mapping between the two processes. The writer copies the
// value into a ring slot, bumps a sequence word and FUTEX_WAKEs it; the
// reader sleeps in FUTEX_WAIT on the word. What it measures is one store,
// one futex wake-up of another process, and a copy: the floor under any
// cross-process notification on the machine.

const futexName = "futex ping"

var futexSystems = []*system{{
	Name:       futexName,
	Open:       openFutex,
	OpenTail:   openFutexTail,
	LatencyRef: true,
	Note:       "shared mapping: copy into a ring slot, bump a word, FUTEX_WAKE; the reader sleeps in FUTEX_WAIT",
}}

// The ring holds more values than any latency run sends (30,000 in the
// full plan), so a reader the machine keeps off its CPU for a while
// never finds a value overwritten.
const (
	futexSlots    = 1 << 15
	futexSlotSize = 128
	futexFileSize = 4096 + futexSlots*futexSlotSize
)

type futexStore struct {
	mem []byte
	seq *atomic.Uint32
}

func mapFutex(cfg config) (*futexStore, error) {
	flag := os.O_RDWR
	if cfg.Create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(filepath.Join(cfg.Dir, "futex.shm"), flag, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if cfg.Create {
		if err := f.Truncate(futexFileSize); err != nil {
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, futexFileSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &futexStore{mem: mem, seq: (*atomic.Uint32)(unsafe.Pointer(&mem[0]))}, nil
}

func openFutex(cfg config) (store, error) {
	if cfg.ValueSize > futexSlotSize-4 {
		return nil, fmt.Errorf("futex reference: values of %d bytes: %w", cfg.ValueSize, errUnsupported)
	}
	return mapFutex(cfg)
}

func (s *futexStore) slot(seq uint32) []byte {
	off := 4096 + int(seq%futexSlots)*futexSlotSize
	return s.mem[off : off+futexSlotSize]
}

func (s *futexStore) Append(v []byte) error {
	seq := s.seq.Load()
	slot := s.slot(seq)
	binary.LittleEndian.PutUint32(slot, uint32(len(v)))
	copy(slot[4:], v)
	s.seq.Store(seq + 1)
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(s.seq)), 1 /* FUTEX_WAKE */, math.MaxInt32, 0, 0, 0)
	return nil
}

func (s *futexStore) AppendBatch([][]byte) error { return errUnsupported }
func (s *futexStore) Scan(func([]byte)) error    { return errUnsupported }
func (s *futexStore) Close() error               { return unix.Munmap(s.mem) }

func openFutexTail(cfg config) (tailer, func() error, error) {
	s, err := mapFutex(cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

func (s *futexStore) Tail(ctx context.Context, fn func(v []byte) bool) error {
	var seen uint32
	ts := unix.NsecToTimespec(int64(100 * time.Millisecond))
	for ctx.Err() == nil {
		cur := s.seq.Load()
		if cur == seen {
			unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(s.seq)), 0 /* FUTEX_WAIT */, uintptr(seen), uintptr(unsafe.Pointer(&ts)), 0, 0)
			continue
		}
		for ; seen != cur; seen++ {
			slot := s.slot(seen)
			n := binary.LittleEndian.Uint32(slot)
			if !fn(slot[4 : 4+n]) {
				return nil
			}
		}
	}
	return ctx.Err()
}
