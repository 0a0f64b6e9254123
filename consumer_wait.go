package runnel

import (
	"context"
	"runtime"
	"time"
)

// How a Poll with nothing to return waits: in the kernel on the shared
// append-sequence words, optionally after a spin.

// sleep waits until a partition's append sequence (or the group's word)
// moves, ctx ends, or timeout passes (0: no timeout).
func (c *Consumer) sleep(ctx context.Context, timeout time.Duration) {
	if c.opts.SpinWait > 0 && c.spinFor(c.opts.SpinWait) {
		return
	}
	for _, m := range c.metas {
		m.sleepIn()
	}
	priv := c.cancel.Load()
	// Log.Close sets closed before it bumps cancel: either this sees it
	// closed, or the wait sees cancel moved.
	if c.log.closed.Load() {
		priv++ // the wait returns at once
	}
	stop := context.AfterFunc(ctx, func() {
		c.cancel.Add(1)
		wakePrivate(&c.cancel)
	})
	waitWords(c.words, c.expect, &c.cancel, priv, timeout)
	stop()
	for _, m := range c.metas {
		m.sleepOut()
	}
}

// spinFor watches the append sequences for up to d; it reports whether
// one moved.
func (c *Consumer) spinFor(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		for i, w := range c.words {
			if w.Load() != c.expect[i] {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
}
