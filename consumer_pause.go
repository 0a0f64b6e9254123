package runnel

import "slices"

// Pausing partitions, as Kafka's consumer pause and resume: a paused
// partition stays the consumer's (a group member keeps owning it) at its
// position, but Poll neither reads it (poll, unstick) nor wakes for its
// appends (rebuildWords) until it is resumed.

// Pause stops reading partitions until Resume: Poll, TryPoll and Records
// return no records of them and do not read their files, nor wake for
// their appends; an error a paused partition has waits until it is
// resumed. A paused partition keeps its position, which Seek may still
// move, and commits cover it as before: Resume goes on from the same
// record, none lost or read twice, unless retention removed it meanwhile
// (a paused partition holds no file open): then it is out of range, as
// for any reader retention overtakes (ConsumerOptions.OutOfRange).
// Inside a Records loop Pause takes effect at once: the records of the
// batch not yielded yet go back, as at a Seek.
//
// A group member keeps owning its paused partitions: no other member
// gets them while it polls, as a Kafka consumer keeps polling while
// paused. Poll goes on with the member's group work (taking and giving
// up partitions, auto-commit); with every partition paused it returns
// nothing until its ctx ends, asleep between group checks, and TryPoll
// returns nothing after doing that work. A partition a rebalance
// takes away is no longer paused: if the member gets it back, it is read
// unless OnAssigned pauses it again.
//
// Pause is for the polling goroutine, as Seek is (OnAssigned runs on it).
// A partition the consumer does not read fails the call with
// ErrInvalidArgument, or in a group, one the member does not own with
// ErrNotOwner, as Seek does, and none of the partitions is paused.
// Pausing a paused partition does nothing.
func (c *Consumer) Pause(partitions ...int) error {
	return c.setPaused(partitions, true)
}

// Resume reads paused partitions again, from where they stopped. It
// fails as Pause does; resuming a partition not paused does nothing.
func (c *Consumer) Resume(partitions ...int) error {
	return c.setPaused(partitions, false)
}

// Paused lists the paused partitions, in increasing order.
func (c *Consumer) Paused() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int
	for _, part := range c.parts {
		if part.paused {
			ids = append(ids, part.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// setPaused pauses or resumes partitions: all of them, or none when one
// is not the consumer's.
func (c *Consumer) setPaused(partitions []int, paused bool) error {
	parts := make([]*consumedPart, len(partitions))
	for i, id := range partitions {
		part, err := c.readPart(id)
		if err != nil {
			return err
		}
		parts[i] = part
	}
	changed := false
	c.mu.Lock()
	for _, part := range parts {
		changed = changed || part.paused != paused
		part.paused = paused
	}
	c.mu.Unlock()
	if !changed {
		return nil
	}
	if paused {
		// A Records loop under way hands out no more of the batch (see
		// rewind): a paused partition's go back.
		c.moves++
	}
	c.rebuildWords() // and a resumed partition is looked at
	return nil
}
