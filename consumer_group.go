package runnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// A group member's side of the Consumer: joining, and taking and giving
// up partitions inside Poll. Committing is in consumer_commit.go; the
// protocol itself in group.go and offsets.go.

// groupState is a Consumer's side of its group membership. The polling
// goroutine alone uses the first fields; Consumer.mu guards the member's
// ownership and commit state (m.owned, m.commits, m.count) and the fields
// marked so, which committers on other goroutines use too.
type groupState struct {
	m *member

	seenGen    uint32 // the group word at the last check
	settled    bool   // the last check left the member with its quota
	seenReset  uint32 // the reset epoch whose requests were applied
	lastCheck  time.Time
	lastCommit time.Time // the last automatic commit
	lastSync   time.Time // the last periodic sync of commits

	// Guarded by Consumer.mu.
	dirty   bool      // Periodic: commits written since the last sync
	written uint64    // commit writes so far
	clock   pollClock // MaxPollInterval (consumer_maxpoll.go)

	syncMu sync.Mutex // one fdatasync of the offsets file at a time
	synced uint64     // written, as of the last fdatasync; guarded by syncMu
}

// joinGroup makes c a member of its group. It takes no partitions yet:
// the first Poll does.
func (c *Consumer) joinGroup(ctx context.Context) error {
	m, err := joinGroup(ctx, c.log, c.topic, c.opts.Group, c.opts.MemberName)
	if err != nil {
		return err
	}
	m.lease, m.predecessors = c.opts.Lease, c.opts.Succeeds
	now := time.Now()
	g := &groupState{
		m:          m,
		seenGen:    m.off.gen().Load(),
		seenReset:  m.off.resetEpoch().Load(),
		lastCommit: now,
		lastSync:   now,
	}
	// A Log closed during the join (which may wait for another process)
	// has abandoned its members already, or will find this one: it must
	// not stay a member no call can use, holding its share of the
	// partitions until the process ends.
	c.mu.Lock()
	if c.log.closed.Load() {
		c.mu.Unlock()
		return errors.Join(ErrClosed, m.leave())
	}
	c.g = g
	c.startPollClock()
	c.mu.Unlock()
	c.rebuildWords()
	return nil
}

// nextCheck is how long a sleeping Poll may wait before the next
// membership check, due every interval.
func (g *groupState) nextCheck(interval time.Duration) time.Duration {
	return max(interval-time.Since(g.lastCheck), 50*time.Microsecond)
}

// groupTick is a group member's work inside Poll: forced resets, the
// membership check (take or give up partitions), automatic commits and,
// in Periodic mode, the sync of commits. ctx is Poll's (nil for
// TryPoll): it bounds the join of a member that expired.
func (c *Consumer) groupTick(ctx context.Context) error {
	g := c.g
	if g == nil {
		return nil
	}
	if c.shut() {
		return ErrClosed
	}
	off := g.m.off
	if off.deleted() {
		return c.groupDeleted()
	}
	if c.expiredNow() {
		if rejoined, err := c.rejoin(ctx); err != nil || !rejoined {
			return err // not a member: nothing more to do until it is
		}
	}
	if e := off.resetEpoch().Load(); e != g.seenReset {
		g.seenReset = e
		if err := c.applyResets(c.owned()); err != nil {
			return err
		}
	}
	now := time.Now()
	if gen := off.gen().Load(); gen != g.seenGen || now.Sub(g.lastCheck) >= c.opts.GroupCheckInterval {
		moved := gen != g.seenGen
		g.seenGen, g.lastCheck = gen, now
		grew, err := c.followGroupGrowth(moved)
		if err != nil {
			return err
		}
		if err := c.rebalance(moved || grew, now); err != nil {
			return err
		}
	}
	if !c.opts.DisableAutoCommit && now.Sub(g.lastCommit) >= c.opts.AutoCommitInterval {
		g.lastCommit = now
		if err := c.commitAuto(nil); err != nil {
			return err
		}
	}
	if now.Sub(g.lastSync) < c.log.opts.SyncInterval {
		return nil
	}
	c.mu.Lock()
	dirty := g.dirty
	g.dirty = false
	c.mu.Unlock()
	if !dirty {
		return nil
	}
	g.lastSync = now
	return off.sync()
}

// groupDeleted is the error of a member whose group DeleteGroup removed.
func (c *Consumer) groupDeleted() error {
	return fmt.Errorf("%w: group %s was deleted (by force, with members alive)", ErrGroupNotFound, c.g.m.group)
}

// owned lists the partitions the member owns, in increasing order.
func (c *Consumer) owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.g.m.ownedList()
}

// rebalance moves the member toward its quota: it gives up partitions it
// has too many of, or takes free ones. At a periodic check (the group's
// generation not moved) a member that has its quota has only a death to
// look for, which one member does for all (sharedCount): it counts only
// if none did within GroupCheckInterval. A successor takes back what it
// inherits whatever its quota (member.inherits), and gives the extras up
// at its next check, through OnRevoked, as any member over its quota.
func (c *Consumer) rebalance(moved bool, now time.Time) error {
	g := c.g
	m := g.m
	shared := !moved && g.settled
	if shared && !m.off.claimSharedCount(now, c.opts.GroupCheckInterval) {
		return nil
	}
	g.settled = false
	live, rank, err := m.census()
	if err != nil {
		return err
	}
	if shared {
		m.off.sharedCount(g.seenGen, live)
	}
	q := quota(m.nparts, live, rank)
	c.mu.Lock()
	if c.closed.Load() { // abandoned: its Log closed
		c.mu.Unlock()
		return ErrClosed
	}
	owned := m.ownedList()
	var got []int
	if len(owned) < q || m.inheriting() {
		got, err = m.acquire(q-len(owned), rank*m.nparts/live)
	}
	inheriting := m.inheriting()
	c.mu.Unlock()
	if len(got) > 0 {
		// Assigned before anything is given up: what a successor took
		// beyond its quota goes at the next check (settled stays false).
		err = errors.Join(err, c.assign(got))
	} else if len(owned) > q {
		// Give up the highest-numbered: members of lower rank start their
		// search low, so this tends to keep everyone's partitions apart.
		err = errors.Join(err, c.revoke(owned[q:]))
		g.settled = err == nil && !inheriting
		return err
	}
	g.settled = err == nil && len(owned)+len(got) == q && !inheriting
	return err
}

// assign starts reading partitions the member has just taken, from their
// committed offsets (or Start), applies reset requests left for them, and
// tells the application.
func (c *Consumer) assign(ps []int) error {
	g := c.g
	c.noteRebalance(len(ps))
	var errs []error
	for _, p := range ps {
		part, err := c.addPart(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		committed := g.m.commits[p].offset
		c.mu.Unlock()
		sp, what := c.opts.Start, "start position "+c.opts.Start.String()
		if committed != noCommit {
			sp, what = AtOffset(committed), fmt.Sprintf("committed offset %d", committed)
		}
		c.positionOwned(part, sp, what)
	}
	errs = append(errs, c.applyResets(ps))
	if c.opts.OnAssigned != nil {
		c.opts.OnAssigned(c, ps)
	}
	return errors.Join(errs...)
}

// positionOwned positions an owned partition at a start (what names it in
// an error), applying the OutOfRange policy; an error it cannot resolve
// stays with the partition (Poll returns it) until Seek.
func (c *Consumer) positionOwned(part *consumedPart, sp StartPosition, what string) {
	if err := c.position(part, sp, true); err != nil {
		g := c.g
		part.err = fmt.Errorf("runnel: group %s, topic %s, partition %d: %s: %w (Seek the partition to go on)", g.m.group, g.m.topic, part.id, what, err)
	}
}

// applyResets moves owned partitions of ps that have a pending forced
// reset request to the requested offset, and commits it as their owner.
func (c *Consumer) applyResets(ps []int) error {
	g := c.g
	var wrote bool
	var errs []error
	for _, p := range ps {
		part := c.byID[p]
		if part == nil {
			continue
		}
		req, err := g.m.off.readRequest(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		applied := g.m.commits[p].applied
		c.mu.Unlock()
		if req.seq <= applied {
			continue
		}
		c.positionOwned(part, AtOffset(req.offset), fmt.Sprintf("reset to offset %d", req.offset))
		c.mu.Lock()
		if !g.m.owned[p] { // abandoned: its Log closed
			c.mu.Unlock()
			continue
		}
		st := &g.m.commits[p]
		st.applied = req.seq
		err = g.m.off.writeCommit(p, st, req.offset, time.Now().UnixNano())
		c.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		wrote = true
	}
	if wrote {
		// A reset is rare and its sender waits for it: always durable.
		errs = append(errs, g.m.off.sync())
	}
	return errors.Join(errs...)
}

// revoke gives partitions up: automatic commit, OnRevoked, release, and a
// wake-up for the other members.
func (c *Consumer) revoke(ps []int) error {
	g := c.g
	c.noteRebalance(len(ps))
	var errs []error
	if !c.opts.DisableAutoCommit && !g.m.off.deleted() {
		errs = append(errs, c.commitAuto(ps))
	}
	if c.opts.OnRevoked != nil {
		c.inRevoked.Store(true)
		c.opts.OnRevoked(c, ps)
		c.inRevoked.Store(false)
	}
	// An Abandon in OnRevoked released ps already, keeping their lease.
	for _, p := range ps {
		errs = append(errs, c.removePart(p))
		c.mu.Lock()
		errs = append(errs, g.m.release(p, false))
		c.mu.Unlock()
	}
	g.m.off.bump(g.m.off.gen())
	return errors.Join(errs...)
}

// leaveGroup is Close's group part: give every partition up, wait for
// commits under way, make the written ones durable, and leave. A member
// that expired (MaxPollInterval) has only its lost partitions to drop.
func (c *Consumer) leaveGroup() error {
	g := c.g
	c.mu.Lock()
	c.stopPollClock()
	c.mu.Unlock()
	var errs []error
	if c.expiredNow() {
		errs = append(errs, c.dropLost())
	}
	if owned := c.owned(); len(owned) > 0 {
		errs = append(errs, c.revoke(owned))
	}
	c.mu.Lock()
	c.closed.Store(true)
	dirty := g.dirty
	c.mu.Unlock()
	c.syncers.Wait()
	if dirty {
		errs = append(errs, g.m.off.sync())
	}
	errs = append(errs, g.m.leave())
	return errors.Join(errs...)
}

// abandonGroups is Log.Close's part for the group members it still has
// open: each leaves its group at once, as at its process's exit, since no
// call of it can read or commit its partitions any more; left to
// Consumer.Close, which may never come, they stayed its until the process
// ended.
func (l *Log) abandonGroups() error {
	l.consMu.Lock()
	cs := slices.Collect(maps.Keys(l.consumers))
	l.consMu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.abandon(false))
	}
	return errors.Join(errs...)
}

// abandon makes a group member leave, closed, with no commit and no
// OnRevoked, as a member that dies does: a Poll on another goroutine may
// be handing out records the application has not processed, so the next
// owners resume from the last commit. Its partitions keep their lease
// only with keepLease (Abandon): a Log's Close hands them over at once,
// since nothing reads them for it any more. A later Consumer.Close only
// closes its files; one under way does it all.
func (c *Consumer) abandon(keepLease bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.g == nil || c.closing { // not a member (yet: see joinGroup)
		return nil
	}
	c.closed.Store(true)
	c.stopPollClock()
	return c.g.m.quit(keepLease)
}

// checkGroup returns the error of a group call on a consumer that cannot
// make it. The caller holds c.mu.
func (c *Consumer) checkGroup() error {
	switch {
	case c.closed.Load():
		return ErrClosed
	case c.g == nil:
		return fmt.Errorf("%w: the consumer is not a group member (ConsumerOptions.Group)", ErrInvalidArgument)
	case c.g.m.off.deleted():
		return c.groupDeleted()
	case c.g.clock.expired:
		return c.expiredErr()
	}
	return nil
}
