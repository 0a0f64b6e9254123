//go:build !linux

package runnel

import (
	"sync/atomic"
	"time"
)

// Without futexes shared between processes, readers poll the shared
// append-sequence words with a short backoff: wake-ups take up to a
// millisecond instead of microseconds.

func wakeAll(*atomic.Uint32) int { return 0 }
func wakePrivate(*atomic.Uint32) {}

func waitWord(word *atomic.Uint32, expect uint32, timeout time.Duration) {
	var never atomic.Uint32
	pollWords([]*atomic.Uint32{word}, []uint32{expect}, &never, 0, timeout)
}

func waitWords(words []*atomic.Uint32, expect []uint32, private *atomic.Uint32, privExpect uint32, timeout time.Duration) {
	pollWords(words, expect, private, privExpect, timeout)
}
