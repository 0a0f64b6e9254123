package runnel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A group member's MaxPollInterval (Kafka's max.poll.interval.ms). A
// member acts only inside Poll, so one that stopped polling — stuck in a
// job, deadlocked, left open — would check nothing and keep its
// partitions for as long as its process lives: its liveness is its
// process's. A timer, stopped while Poll runs and armed again as Poll
// returns, makes it leave from a goroutine of its own: it gives up its
// slot and its partitions as a member that dies does, committing
// nothing, and the member's next Poll joins again.

// pollClock is a member's MaxPollInterval state, guarded by Consumer.mu.
type pollClock struct {
	timer   *time.Timer // nil: MaxPollInterval is off
	polling bool        // Poll is under way: the time does not count
	since   time.Time   // when the last Poll returned, or the member joined
	expired bool        // the member left; its next Poll joins again
}

// startPollClock starts the clock of a member that has just joined: the
// time to its first Poll counts too, or a Consumer left open and never
// polled would hold its share of the partitions unread. The caller holds
// c.mu.
func (c *Consumer) startPollClock() {
	if c.opts.MaxPollInterval < 0 {
		return
	}
	pc := &c.g.clock
	pc.since = time.Now()
	pc.timer = time.AfterFunc(c.opts.MaxPollInterval, c.expire)
}

// stopPollClock stops the clock for good: the member is closing or
// abandoned. The caller holds c.mu.
func (c *Consumer) stopPollClock() {
	if t := c.g.clock.timer; t != nil {
		t.Stop()
	}
}

// pollBegins stops the clock as a Poll (TryPoll, Records' fetch) begins,
// and reports whether pollReturns has a clock to start again.
func (c *Consumer) pollBegins() bool {
	if c.g == nil || c.opts.MaxPollInterval < 0 {
		return false
	}
	c.mu.Lock()
	c.g.clock.polling = true
	c.g.clock.timer.Stop()
	c.mu.Unlock()
	return true
}

// pollReturns starts the clock again as a Poll returns.
func (c *Consumer) pollReturns(clocked bool) {
	if !clocked {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := &c.g.clock
	pc.polling = false
	if c.closing || c.closed.Load() {
		return
	}
	pc.since = time.Now()
	pc.timer.Reset(c.opts.MaxPollInterval)
}

// expire is the timer's: the member leaves its group unless it polled
// meanwhile. A timer that fired just as a Poll began waits here for it
// to have set polling, and one fired before the last Reset sees the
// later since.
func (c *Consumer) expire() {
	c.mu.Lock()
	g := c.g
	pc := &g.clock
	if pc.polling || pc.expired || c.closing || c.closed.Load() || time.Since(pc.since) < c.opts.MaxPollInterval {
		c.mu.Unlock()
		return
	}
	pc.expired = true
	lost := g.m.ownedList()
	err := g.m.quit(false)
	c.mu.Unlock()
	c.log.opts.Logger.Warn("runnel: group member not polled within MaxPollInterval left its group; its next Poll joins again",
		"group", g.m.group, "topic", g.m.topic, "member", c.opts.MemberName,
		"max_poll_interval", c.opts.MaxPollInterval, "lost", lost, "err", err)
}

// expiredErr is the error of a commit by a member that expired. The
// caller holds c.mu.
func (c *Consumer) expiredErr() error {
	return fmt.Errorf("%w: group %s, topic %s: not polled within MaxPollInterval (%v), it left the group, and its partitions are other members' (%w); its next Poll joins again",
		ErrMemberExpired, c.g.m.group, c.g.m.topic, c.opts.MaxPollInterval, ErrNotOwner)
}

// expiredNow reports whether the member left for not polling and has not
// joined again.
func (c *Consumer) expiredNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.g.clock.expired
}

// dropLost stops reading the partitions an expired member lost and
// tells the application, with OnLost, or OnRevoked when it has none (as
// Kafka's consumer calls onPartitionsRevoked then): inside the Poll that
// joins again, or at Close. Nothing is committed: the records handed
// over since the last commit are the next owners' to read again.
func (c *Consumer) dropLost() error {
	var lost []int
	for _, part := range c.parts {
		lost = append(lost, part.id)
	}
	if len(lost) == 0 {
		return nil
	}
	slices.Sort(lost)
	c.noteRebalance(len(lost))
	switch {
	case c.opts.OnLost != nil:
		c.opts.OnLost(c, lost)
	case c.opts.OnRevoked != nil:
		c.opts.OnRevoked(c, lost)
	}
	var errs []error
	for _, p := range lost {
		errs = append(errs, c.removePart(p))
	}
	return errors.Join(errs...)
}

// rejoin makes a member that expired a member again, in a new slot, and
// has its group check take its share of the partitions at once, each
// from the group's committed offset. It waits for another process only
// while an admin call of the group holds every slot (DeleteGroup,
// DeleteGroupOffsets), a moment, but one a process stopped in that
// moment (Ctrl-Z, SIGSTOP) or hung makes last: so no longer than ctx,
// Poll's, whose error it returns, and not at all for a nil ctx
// (TryPoll's), which leaves the member out. Either way the member stays
// expired, and the next Poll tries again. rejoined reports whether it
// is a member again.
func (c *Consumer) rejoin(ctx context.Context) (rejoined bool, err error) {
	g := c.g
	errs := []error{c.dropLost()}
	wait := ctx
	if wait == nil {
		wait = doneContext
	}
	slot, joined, err := g.m.enter(wait, c.opts.MemberName)
	if errors.Is(err, errGroupFileDeleted) {
		err = c.groupDeleted()
	}
	if ctx == nil && errors.Is(err, context.Canceled) {
		err = nil // TryPoll: a join that would have to wait
	}
	if err != nil || slot < 0 {
		return false, errors.Join(append(errs, err)...)
	}
	c.mu.Lock()
	if c.closed.Load() {
		// Its Log closed meanwhile, finding no slot to give up.
		c.mu.Unlock()
		err := g.m.off.lf.Unlock(memberLock(slot))
		g.m.off.bump(g.m.off.gen())
		return false, errors.Join(append(errs, ErrClosed, err)...)
	}
	g.m.slot, g.m.joined, g.m.left = slot, joined, false
	g.clock.expired = false
	c.mu.Unlock()
	g.lastCheck, g.settled = time.Time{}, false
	return true, errors.Join(errs...)
}

// doneContext is a context that has ended: a wait given it gives up at
// once.
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
