package runnel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A group member's commits. Every call here may come from any goroutine:
// Consumer.mu serializes the writes, and concurrent committers in a
// Durable Log share one fdatasync of the offsets file.

// Commit commits, for every partition this group member owns, the offset
// after the last record handed to the application — all of every Poll's
// batch, and in Records up to and including the last record yielded,
// never records fetched behind it — as the group's committed offset (the
// next offset to read), in the offsets file, durable as the Log's
// Durability says. Partitions whose position did not move since their
// last commit are skipped. ctx is checked before anything is written; a
// commit is never left half-done.
func (c *Consumer) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commit(nil, false)
}

// MarkRecords marks records, which this group member handed to the
// application, as processed, for CommitMarked and for auto-commit with
// ConsumerOptions.AutoCommitMarks: the pattern of a pool of workers that
// finish records in any order. Only the record fields Partition and
// Offset are used, so a worker may mark a copy it kept. A record of a
// partition the member no longer owns, or not handed over since the
// partition was last assigned, sought or reset (which drop its marks), is
// ignored.
func (c *Consumer) MarkRecords(recs ...Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	for i := range recs {
		if p := recs[i].Partition; p >= 0 && p < len(c.byID) && c.byID[p] != nil {
			c.byID[p].prog.mark(recs[i].Offset)
		}
	}
}

// CommitMarked commits, for every partition this group member owns, the
// offset after the longest run of marked records from where the
// partition was last committed: a record finished out of order is never
// committed before the records ahead of it are. It never moves a
// committed offset backwards. Otherwise it is Commit.
func (c *Consumer) CommitMarked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commit(nil, true)
}

// CommitOffsets commits the given offsets (partition → next offset to
// read) as the group's committed offsets. Every partition must be owned by
// this member, or nothing is written and the error wraps ErrNotOwner.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[int]int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.checkGroup(); err != nil {
		c.mu.Unlock()
		return err
	}
	m := c.g.m
	for p, off := range offsets {
		if p < 0 || p >= m.nparts || !m.owned[p] {
			c.mu.Unlock()
			return m.notOwned(p)
		}
		if off < 0 {
			c.mu.Unlock()
			return fmt.Errorf("%w: offset %d for partition %d", ErrInvalidArgument, off, p)
		}
	}
	if len(offsets) == 0 {
		c.mu.Unlock()
		return nil
	}
	now := time.Now().UnixNano()
	var err error
	for p, off := range offsets {
		if err = m.off.writeCommit(p, &m.commits[p], off, now); err != nil {
			break
		}
		if part := c.byID[p]; part != nil {
			part.prog.committed(off)
		}
	}
	return c.written(err)
}

// commitAuto is auto-commit's commit of the owned partitions of ps (nil:
// all of them).
func (c *Consumer) commitAuto(ps []int) error {
	return c.commit(ps, c.opts.AutoCommitMarks)
}

// commit commits the owned partitions of ps (nil: all) whose position
// moved since their last commit: the records handed over, or with marked
// the run of marked ones.
func (c *Consumer) commit(ps []int, marked bool) error {
	c.mu.Lock()
	if err := c.checkGroup(); err != nil {
		c.mu.Unlock()
		return err
	}
	m := c.g.m
	now := time.Now().UnixNano()
	var wrote bool
	var err error
	for _, part := range c.parts {
		p := part.id
		if !m.owned[p] || ps != nil && !slices.Contains(ps, p) {
			continue
		}
		st := &m.commits[p]
		point := part.prog.next
		if marked {
			point = part.prog.markedUpTo()
		}
		if point == noPosition || point == st.offset || marked && point < st.offset {
			continue
		}
		if err = m.off.writeCommit(p, st, point, now); err != nil {
			break
		}
		wrote = true
		part.prog.committed(point)
	}
	if !wrote {
		c.mu.Unlock()
		return err
	}
	return c.written(err)
}

// written finishes a commit that wrote to the offsets file: it makes the
// writes as durable as the Log's Durability asks and returns err joined
// with any failure. The caller holds c.mu; written releases it.
func (c *Consumer) written(err error) error {
	g := c.g
	g.written++
	switch c.log.opts.Durability {
	case Periodic:
		g.dirty = true
		fallthrough
	case Buffered:
		c.mu.Unlock()
		return err
	}
	upTo := g.written
	c.syncers.Add(1) // before Close can see closed set: it waits for this
	c.mu.Unlock()
	defer c.syncers.Done()
	return errors.Join(err, c.syncCommits(upTo))
}

// syncCommits fdatasyncs the offsets file unless a sync that began after
// write number upTo was issued already did: concurrent committers share
// one.
func (c *Consumer) syncCommits(upTo uint64) error {
	g := c.g
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if g.synced >= upTo {
		return nil
	}
	c.mu.Lock()
	target := g.written
	c.mu.Unlock()
	if err := g.m.off.sync(); err != nil {
		return err
	}
	g.synced = target
	return nil
}
