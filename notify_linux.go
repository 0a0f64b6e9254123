package runnel

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cross-process wake-ups on Linux: readers sleep in futex_waitv on the
// append-sequence words of their partitions' shared mappings (plus one
// private word that cancels the wait), and writers FUTEX_WAKE them. The
// futexes are shared (no FUTEX_PRIVATE_FLAG) because the words live in a
// file mapping that other processes map too.

const (
	futexWait        = 0
	futexWake        = 1
	futexPrivateFlag = 128
	futex2Size32     = 2 // FUTEX2_SIZE_U32
)

// futexWaitv mirrors the kernel's struct futex_waitv.
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// noFutexWaitv remembers that the kernel lacks futex_waitv.
var noFutexWaitv atomic.Bool

// wakeAll wakes every process and thread asleep on word, and returns how
// many there were.
func wakeAll(word *atomic.Uint32) int {
	n, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWake, math.MaxInt32, 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// waitWord sleeps until word differs from expect, a wake-up, or timeout.
// Spurious returns are allowed; callers re-check what they wait for.
func waitWord(word *atomic.Uint32, expect uint32, timeout time.Duration) {
	ts := unix.NsecToTimespec(int64(timeout))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWait, uintptr(expect), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// wakePrivate wakes waiters on a word of this process's own memory.
func wakePrivate(word *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWake|futexPrivateFlag, math.MaxInt32, 0, 0, 0)
}

// waitWords sleeps until any shared word differs from its expected value,
// the private word differs from privExpect, or timeout passes (0: none).
// Spurious returns are allowed; callers re-check what they wait for.
func waitWords(words []*atomic.Uint32, expect []uint32, private *atomic.Uint32, privExpect uint32, timeout time.Duration) {
	if len(words)+1 > 128 { // futex_waitv's limit
		pollWords(words, expect, private, privExpect, timeout)
		return
	}
	var vec [128]futexWaitv
	for i, w := range words {
		vec[i] = futexWaitv{val: uint64(expect[i]), uaddr: uint64(uintptr(unsafe.Pointer(w))), flags: futex2Size32}
	}
	n := len(words)
	vec[n] = futexWaitv{val: uint64(privExpect), uaddr: uint64(uintptr(unsafe.Pointer(private))), flags: futex2Size32 | futexPrivateFlag}
	var tsp *unix.Timespec
	if timeout > 0 {
		// futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
		var now unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		ts := unix.NsecToTimespec(now.Nano() + int64(timeout))
		tsp = &ts
	}
	if noFutexWaitv.Load() {
		pollWords(words, expect, private, privExpect, timeout)
		return
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&vec[0])), uintptr(n+1), 0, uintptr(unsafe.Pointer(tsp)), uintptr(unix.CLOCK_MONOTONIC), 0)
	if errno == unix.ENOSYS {
		// Kernels before 5.16 lack futex_waitv: poll, now and from now on.
		noFutexWaitv.Store(true)
		pollWords(words, expect, private, privExpect, timeout)
	}
	// EAGAIN (a word already changed), EINTR and ETIMEDOUT all mean:
	// return and let the caller look again.
}
