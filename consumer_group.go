package runnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A group member's side of the Consumer: joining, taking and giving up
// partitions inside Poll, and committing offsets. The protocol itself is
// in group.go and offsets.go.

// groupState is a Consumer's side of its group membership.
type groupState struct {
	m              *member
	autoCommit     bool
	commitInterval time.Duration
	checkInterval  time.Duration
	outOfRange     OutOfRange
	onAssigned     func(*Consumer, []int)
	onRevoked      func(*Consumer, []int)
	durability     Durability
	syncInterval   time.Duration

	seenGen    uint32 // the group word at the last check
	seenReset  uint32 // the reset epoch whose requests were applied
	lastCheck  time.Time
	lastCommit time.Time
	lastSync   time.Time
	dirty      bool // Periodic: commits written since the last sync
}

// joinGroup makes c a member of o.Group. It takes no partitions yet: the
// first Poll does.
func (c *Consumer) joinGroup(o ConsumerOptions) (*Consumer, error) {
	if o.Partitions != nil {
		return nil, fmt.Errorf("%w: Partitions must be nil with Group (the group assigns them)", ErrInvalidArgument)
	}
	if err := validateName("group", o.Group); err != nil {
		return nil, err
	}
	name := o.MemberName
	if name == "" {
		name = defaultMemberName()
	}
	m, err := joinGroup(c.log, c.topic, o.Group, name)
	if err != nil {
		return nil, err
	}
	c.g = &groupState{
		m:              m,
		autoCommit:     !o.DisableAutoCommit,
		commitInterval: cmp.Or(o.AutoCommitInterval, defaultAutoCommitInterval),
		checkInterval:  cmp.Or(o.GroupCheckInterval, defaultGroupCheckInterval),
		outOfRange:     o.OutOfRange,
		onAssigned:     o.OnAssigned,
		onRevoked:      o.OnRevoked,
		durability:     c.log.opts.Durability,
		syncInterval:   c.log.opts.SyncInterval,
		seenGen:        m.off.gen().Load(),
		seenReset:      m.off.resetEpoch().Load(),
		lastCommit:     time.Now(),
		lastSync:       time.Now(),
	}
	c.rebuildWords()
	return c, nil
}

// groupTick is a group member's work inside Poll: forced resets, the
// membership check (take or give up partitions), automatic commits and,
// in Periodic mode, the sync of commits.
func (c *Consumer) groupTick() error {
	g := c.g
	if g == nil {
		return nil
	}
	if c.closed || c.log.closed.Load() {
		return ErrClosed
	}
	off := g.m.off
	if e := off.resetEpoch().Load(); e != g.seenReset {
		g.seenReset = e
		if err := c.applyResets(g.m.ownedList()); err != nil {
			return err
		}
	}
	now := time.Now()
	if gen := off.gen().Load(); gen != g.seenGen || now.Sub(g.lastCheck) >= g.checkInterval {
		g.seenGen, g.lastCheck = gen, now
		if err := c.rebalance(); err != nil {
			return err
		}
	}
	if g.autoCommit && now.Sub(g.lastCommit) >= g.commitInterval {
		g.lastCommit = now
		if err := c.commitPositions(nil); err != nil {
			return err
		}
	}
	if g.dirty && now.Sub(g.lastSync) >= g.syncInterval {
		if err := off.sync(); err != nil {
			return err
		}
		g.dirty, g.lastSync = false, now
	}
	return nil
}

// rebalance moves the member toward its quota: it gives up partitions it
// has too many of, or takes free ones.
func (c *Consumer) rebalance() error {
	m := c.g.m
	live, rank, err := m.census()
	if err != nil {
		return err
	}
	q := quota(m.nparts, live, rank)
	switch {
	case m.count > q:
		// Give up the highest-numbered: members of lower rank start their
		// search low, so this tends to keep everyone's partitions apart.
		owned := m.ownedList()
		return c.revoke(owned[q:])
	case m.count < q:
		got, err := m.acquire(q-m.count, rank*m.nparts/live)
		if len(got) > 0 {
			err = errors.Join(err, c.assign(got))
		}
		return err
	}
	return nil
}

// assign starts reading partitions the member has just taken, from their
// committed offsets (or Start), applies reset requests left for them, and
// tells the application.
func (c *Consumer) assign(ps []int) error {
	g := c.g
	c.noteRebalance(len(ps))
	var errs []error
	for _, p := range ps {
		r, err := c.addReader(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st := g.m.commits[p]
		sp := c.start
		if st.offset != noCommit {
			sp = AtOffset(st.offset)
		}
		c.position(len(c.readers)-1, r, sp, st.offset != noCommit)
	}
	errs = append(errs, c.applyResets(ps))
	if g.onAssigned != nil {
		g.onAssigned(c, ps)
	}
	return errors.Join(errs...)
}

// position moves reader i to sp, applying the OutOfRange policy; an
// error it cannot resolve stays with the reader (Poll returns it) until
// Seek.
func (c *Consumer) position(i int, r *partReader, sp StartPosition, committed bool) {
	g := c.g
	err := r.start(sp)
	if errors.Is(err, ErrOutOfRange) {
		switch g.outOfRange {
		case OutOfRangeEarliest:
			err = r.start(Earliest)
		case OutOfRangeLatest:
			err = r.start(Latest)
		}
	}
	if err != nil {
		what := "start position " + sp.String()
		if committed {
			what = fmt.Sprintf("committed offset %d", sp.offset)
		}
		err = fmt.Errorf("runnel: group %s, topic %s, partition %d: %s: %w (Seek the partition to go on)", g.m.group, g.m.topic, r.p.id, what, err)
	}
	c.rerr[i] = err
}

// applyResets moves owned partitions of ps that have a pending forced
// reset request to the requested offset, and commits it as their owner.
func (c *Consumer) applyResets(ps []int) error {
	g := c.g
	var wrote bool
	var errs []error
	now := time.Now().UnixNano()
	for _, p := range ps {
		i := c.readerIndex(p)
		if i < 0 || !g.m.owned[p] {
			continue
		}
		req, err := g.m.off.readRequest(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st := &g.m.commits[p]
		if req.seq <= st.applied {
			continue
		}
		r := c.readers[i]
		r.byTime = false
		c.position(i, r, AtOffset(req.offset), true)
		st.applied = req.seq
		if err := g.m.off.writeCommit(p, st, req.offset, now); err != nil {
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
	if g.autoCommit {
		errs = append(errs, c.commitPositions(ps))
	}
	if g.onRevoked != nil {
		g.onRevoked(c, ps)
	}
	for _, p := range ps {
		errs = append(errs, c.removeReader(p))
		errs = append(errs, g.m.release(p))
	}
	g.m.off.bump(g.m.off.gen())
	return errors.Join(errs...)
}

// Commit records, for every partition this group member owns, the
// position after the records Poll has returned as the group's committed
// offset (the next offset to read), in the offsets file: durable as the
// Log's Durability says. Partitions whose position did not move since
// their last commit are skipped. ctx is checked before anything is
// written; a commit is never left half-done.
func (c *Consumer) Commit(ctx context.Context) error {
	if err := c.checkGroup(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commitPositions(nil)
}

// CommitOffsets commits the given offsets (partition → next offset to
// read) as the group's committed offsets. Every partition must be owned by
// this member, or nothing is written and the error wraps ErrNotOwner.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[int]int64) error {
	if err := c.checkGroup(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m := c.g.m
	for p, off := range offsets {
		if p < 0 || p >= m.nparts || !m.owned[p] {
			return m.notOwned(p)
		}
		if off < 0 {
			return fmt.Errorf("%w: offset %d for partition %d", ErrInvalidArgument, off, p)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	for p, off := range offsets {
		if err := m.off.writeCommit(p, &m.commits[p], off, now); err != nil {
			return err
		}
	}
	return c.committed()
}

func (c *Consumer) checkGroup() error {
	if c.closed {
		return ErrClosed
	}
	if c.g == nil {
		return fmt.Errorf("%w: the consumer is not a group member (ConsumerOptions.Group)", ErrInvalidArgument)
	}
	return nil
}

// commitPositions commits the read positions of the owned partitions in
// ps (nil: all) that moved since their last commit. It allocates nothing.
func (c *Consumer) commitPositions(ps []int) error {
	m := c.g.m
	now := time.Now().UnixNano()
	var wrote bool
	for i, r := range c.readers {
		p := r.p.id
		// A reader in error has no position, and one still skipping to
		// its start time has not reached it: neither is committed.
		if c.rerr[i] != nil || r.byTime || !m.owned[p] || (ps != nil && !slices.Contains(ps, p)) {
			continue
		}
		st := &m.commits[p]
		if st.offset == r.next {
			continue
		}
		if err := m.off.writeCommit(p, st, r.next, now); err != nil {
			return err
		}
		wrote = true
	}
	if !wrote {
		return nil
	}
	return c.committed()
}

// committed makes written commits as durable as the Log's Durability asks.
func (c *Consumer) committed() error {
	g := c.g
	switch g.durability {
	case Durable:
		return g.m.off.sync()
	case Periodic:
		g.dirty = true
	}
	return nil
}
