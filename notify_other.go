//go:build !linux

package runnel

import (
	"sync/atomic"
	"time"
)

// Without futexes shared between processes, readers poll the shared
// append-sequence words with a short backoff: wake-ups take up to a
// millisecond instead of microseconds.

func wakeAll(*atomic.Uint32)     {}
func wakePrivate(*atomic.Uint32) {}

func waitWords(words []*atomic.Uint32, expect []uint32, private *atomic.Uint32, privExpect uint32, timeout time.Duration) {
	pollWords(words, expect, private, privExpect, timeout)
}
