package runnel

import (
	"sync/atomic"
	"time"
)

// pollWords is the portable wait: check the words, sleep a little longer
// each time (20µs up to 1ms), until one changed or the timeout passed.
func pollWords(words []*atomic.Uint32, expect []uint32, private *atomic.Uint32, privExpect uint32, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	pause := 20 * time.Microsecond
	for {
		if private.Load() != privExpect {
			return
		}
		for i, w := range words {
			if w.Load() != expect[i] {
				return
			}
		}
		if timeout > 0 && time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}
