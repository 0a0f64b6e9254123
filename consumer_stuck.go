package runnel

import (
	"context"
	"time"
)

// A reader that stops short of the end of its file is either behind a live
// writer (wait), past a dead writer's leftovers (repair them) or at damage
// (report it).

// testHookRepair, if set, runs just before a stuck reader's repair.
var testHookRepair func()

// stuckRecheck bounds a sleep while a reader waits on a frame that a live
// writer is writing: if that writer dies, no append will wake the reader.
const stuckRecheck = 10 * time.Millisecond

// unstick handles readers that stopped before the end of their file. A
// writer holding the lock is still writing: sleep, briefly. Otherwise the
// bytes are a dead writer's (repair cuts them) or damage (reported). The
// repair waits for the writer lock until ctx ends.
func (c *Consumer) unstick(ctx context.Context) (time.Duration, error) {
	var timeout time.Duration
	for _, part := range c.parts {
		r := part.r
		if r.stuck == nil || part.err != nil {
			continue
		}
		timeout = stuckRecheck
		held, err := r.writerActive()
		if err != nil || held {
			continue
		}
		if testHookRepair != nil {
			testHookRepair()
		}
		if err := r.p.repair(ctx); err != nil {
			return 0, err
		}
		if err := r.checkDamage(); err != nil {
			return 0, err
		}
	}
	return timeout, nil
}
