package runnel

import (
	"context"
	"runtime"
	"time"

	"github.com/runnel-log/runnel/internal/tracefmt"
)

// How a Poll with nothing to return waits: in the kernel on the shared
// append-sequence words, optionally after a spin.

// sleep waits until a partition's append sequence (or the group's word)
// moves, ctx ends, or timeout passes (0: no timeout).
func (c *Consumer) sleep(ctx context.Context, timeout time.Duration) {
	defer c.noteSleep()
	if c.opts.SpinWait > 0 {
		spin := c.opts.SpinWait
		if timeout > 0 {
			spin = min(spin, timeout)
		}
		if c.spinFor(ctx, spin) {
			return
		}
		if timeout > 0 {
			if timeout -= spin; timeout <= 0 {
				return
			}
		}
	}
	// A mapping this process may not write cannot count it as a sleeper,
	// so no writer would wake it: such a consumer polls the words.
	polled := false
	for _, m := range c.metas {
		if m.shared() {
			m.sleepIn()
		} else {
			polled = true
		}
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
	if polled {
		pollWords(c.words, c.expect, &c.cancel, priv, timeout)
	} else {
		waitWords(c.words, c.expect, &c.cancel, priv, timeout)
	}
	tracePoint(tracefmt.PollWoken)
	stop()
	for _, m := range c.metas {
		if m.shared() {
			m.sleepOut()
		}
	}
}

// spinFor watches the append sequences for up to d; it reports whether
// the wait is over before that: a sequence moved, ctx ended or the Log
// closed, which end a sleep too.
func (c *Consumer) spinFor(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		for i, w := range c.words {
			if w.Load() != c.expect[i] {
				return true
			}
		}
		if ctx.Err() != nil || c.log.closed.Load() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
}
