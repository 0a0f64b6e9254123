package runnel

import (
	"context"
	"time"
)

// A reader that stops short of a good frame is at the end of the data
// (wait), behind a live writer (wait), past a dead writer's leftovers
// (repair them) or at damage (report it): reader_end.go tells which.

// testHookRepair, if set, runs just before a stuck reader's repair
// (reader_end.go).
var testHookRepair func()

// stuckRecheck bounds a sleep while a reader waits on a frame that a live
// writer is writing: if that writer dies, no append will wake the reader.
// It also paces readers whose partition cannot be mapped shared (a
// directory they may only read), which no append wakes at all.
const stuckRecheck = 10 * time.Millisecond

// unstick judges every reader that stopped short of a good frame in the
// last poll; it returns the first damage found, and how soon to look
// again (0: when an append wakes the consumer).
func (c *Consumer) unstick(ctx context.Context) (time.Duration, error) {
	var timeout time.Duration
	for _, part := range c.parts {
		if part.err != nil || part.paused {
			continue
		}
		if part.meta.private {
			timeout = stuckRecheck
		}
		recheck, err := part.r.checkStop(ctx, part.meta)
		if err != nil {
			return 0, err
		}
		if recheck {
			timeout = stuckRecheck
		}
	}
	return timeout, nil
}
