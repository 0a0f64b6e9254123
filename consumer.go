package runnel

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
	"time"
)

// StartPosition says where a Consumer starts reading a partition.
type StartPosition struct {
	kind   startKind
	offset int64
	time   time.Time
}

type startKind int

const (
	startEarliest startKind = iota
	startLatest
	startOffset
	startTime
)

var (
	// Earliest starts at the oldest record still stored.
	Earliest = StartPosition{kind: startEarliest}
	// Latest starts after the newest record: only new records are read.
	Latest = StartPosition{kind: startLatest}
)

// AtOffset starts at offset; ErrOutOfRange if it is not stored.
func AtOffset(offset int64) StartPosition { return StartPosition{kind: startOffset, offset: offset} }

// AtTime starts at the first record whose timestamp is at or after t.
func AtTime(t time.Time) StartPosition { return StartPosition{kind: startTime, time: t} }

func (sp StartPosition) String() string {
	switch sp.kind {
	case startLatest:
		return "latest"
	case startOffset:
		return fmt.Sprintf("offset %d", sp.offset)
	case startTime:
		return "time " + sp.time.Format(time.RFC3339Nano)
	}
	return "earliest"
}

// ConsumerOptions configure a Consumer. A nil *ConsumerOptions means the
// defaults.
type ConsumerOptions struct {
	// Partitions to read. Default: all of the topic's partitions. Must be
	// nil with Group: the group assigns partitions.
	Partitions []int

	// Start is where each partition is read from. Default Earliest. In a
	// group, it applies to partitions that have no committed offset.
	Start StartPosition

	// MaxPollBytes bounds how many bytes Poll reads from one partition in
	// one call. Default 1 MiB; at least 4 KiB. A frame larger than this is
	// still read whole.
	MaxPollBytes int

	// SpinWait makes Poll spin for up to this long, watching for appends,
	// before it sleeps: lower wake-up latency for a busy core. Default 0:
	// sleep at once (in the kernel, woken by the appending process).
	SpinWait time.Duration

	// Group makes the consumer a member of this consumer group: the
	// group's live members, in this process and others, share the topic's
	// partitions, each read by one member at a time, and the group's
	// committed offsets (groups/<Group>/<topic>.offsets) say where a
	// member that takes a partition over starts. Default "": no group.
	// See Commit, OnAssigned and OnRevoked.
	Group string

	// MemberName labels this member in DescribeGroup (at most 39 bytes
	// are kept). Default "<hostname>/<pid>".
	MemberName string

	// DisableAutoCommit stops the member from committing by itself.
	// Default false: every AutoCommitInterval, before a partition is
	// released, and at Close, Poll commits the position after the records
	// it returned, so what the application was given counts as processed
	// once it polls again (at-least-once delivery, as in Kafka). With
	// auto-commit off, the application commits with Commit or
	// CommitOffsets, and OnRevoked is its last chance to do so for a
	// partition the member gives up.
	DisableAutoCommit bool

	// AutoCommitInterval is the period of automatic commits. Default 5s.
	AutoCommitInterval time.Duration

	// OutOfRange says what happens when a partition's committed offset
	// (or Start, for one without a commit) is no longer stored. Default
	// OutOfRangeFail.
	OutOfRange OutOfRange

	// GroupCheckInterval is how often Poll checks, while it waits, whether
	// a member died (its partitions need a new owner). It bounds the time
	// a dead member's partitions stay unread. Joins, clean leaves and
	// releases wake the other members at once. Default 10ms.
	GroupCheckInterval time.Duration

	// OnAssigned, if set, is called inside Poll, on the polling goroutine,
	// with the partitions the member has just taken, in increasing order,
	// after their read positions were set.
	OnAssigned func(c *Consumer, partitions []int)

	// OnRevoked, if set, is called inside Poll (and Close) with the
	// partitions the member is about to give up, after the automatic
	// commit, while it still owns them: it may still Commit or
	// CommitOffsets them.
	OnRevoked func(c *Consumer, partitions []int)

	// StopAtGaps makes Poll return a *GapError (ErrGap) where a partition
	// has a gap: offsets whose records were lost to damage and that a
	// salvage (Repair with Salvage) marked as lost. The partition stays
	// before the gap until Seek moves it (to GapError.To, to go on).
	// Default false: the consumer skips the gap, counts the offsets in
	// Stats.GapsCrossed and logs a warning.
	StopAtGaps bool
}

const (
	defaultMaxPollBytes       = 1 << 20
	defaultAutoCommitInterval = 5 * time.Second
	defaultGroupCheckInterval = 10 * time.Millisecond
)

// Consumer reads records from a topic's partitions. It is not safe for
// concurrent use: one goroutine polls it (as with Kafka's consumer).
//
// Only committed records whose checksum matches are delivered, in offset
// order per partition. Records alias the consumer's buffers: see Record.
type Consumer struct {
	log     *Log
	topic   *topic
	readers []*partReader
	rerr    []error // by reader: a sticky error that Seek clears (groups)
	recs    []Record
	rr      int // partition Poll starts with, rotated for fairness
	closed  bool
	spin    time.Duration
	maxPoll int
	start   StartPosition

	stopAtGaps bool // ConsumerOptions.StopAtGaps

	// Sleeping: each reader's partition.meta mapping, its append-sequence
	// word (then, in a group, the group's word) and the value seen before
	// the last read; cancel wakes a sleep when Poll's ctx ends.
	metas  []*metaMap
	words  []*atomic.Uint32
	expect []uint32
	cancel atomic.Uint32

	g *groupState // nil unless the consumer is a group member
}

// Consumer returns a consumer of topic positioned as opts say.
func (l *Log) Consumer(topic string, opts *ConsumerOptions) (*Consumer, error) {
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	var o ConsumerOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxPollBytes < 0:
		return nil, fmt.Errorf("%w: negative MaxPollBytes", ErrInvalidArgument)
	case o.AutoCommitInterval < 0 || o.GroupCheckInterval < 0:
		return nil, fmt.Errorf("%w: negative interval", ErrInvalidArgument)
	case o.OutOfRange < OutOfRangeFail || o.OutOfRange > OutOfRangeLatest:
		return nil, fmt.Errorf("%w: OutOfRange %d", ErrInvalidArgument, int(o.OutOfRange))
	}
	c := &Consumer{log: l, topic: t, spin: o.SpinWait, maxPoll: o.MaxPollBytes, start: o.Start, stopAtGaps: o.StopAtGaps}
	l.addConsumer(c) // so that Log.Close wakes its Poll
	if o.Group != "" {
		gc, err := c.joinGroup(o)
		if err != nil {
			l.removeConsumer(c)
		}
		return gc, l.orGone(t, err)
	}
	parts := o.Partitions
	if parts == nil {
		for i := range t.parts {
			parts = append(parts, i)
		}
	}
	seen := map[int]bool{}
	for _, id := range parts {
		if id < 0 || id >= len(t.parts) || seen[id] {
			c.Close()
			return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions (or listed twice)", ErrInvalidArgument, id, topic, len(t.parts))
		}
		seen[id] = true
		r, err := c.addReader(id)
		if err != nil {
			c.Close()
			return nil, err
		}
		if err := r.start(o.Start); err != nil {
			c.Close()
			return nil, l.orGone(t, err)
		}
	}
	return c, nil
}

// addReader starts reading partition id (not positioned yet).
func (c *Consumer) addReader(id int) (*partReader, error) {
	p := c.topic.parts[id]
	m, err := p.openShared()
	if err != nil {
		return nil, err
	}
	r := newPartReader(p, c.maxPoll)
	r.seq = m.seq()
	r.stopAtGaps = c.stopAtGaps
	// A reader that retention overtakes mid-read resets to the new start
	// when the policy says so, instead of failing.
	r.resetOutOfRange = c.g != nil && c.g.outOfRange == OutOfRangeEarliest
	c.readers = append(c.readers, r)
	c.rerr = append(c.rerr, nil)
	c.metas = append(c.metas, m)
	c.rebuildWords()
	return r, nil
}

// removeReader stops reading partition id.
func (c *Consumer) removeReader(id int) error {
	i := slices.IndexFunc(c.readers, func(r *partReader) bool { return r.p.id == id })
	if i < 0 {
		return nil
	}
	c.readers[i].close()
	err := c.metas[i].close()
	c.readers = slices.Delete(c.readers, i, i+1)
	c.rerr = slices.Delete(c.rerr, i, i+1)
	c.metas = slices.Delete(c.metas, i, i+1)
	c.rebuildWords()
	return err
}

// rebuildWords lists the words a sleeping Poll waits on: each reader's
// append sequence, then the group's word.
func (c *Consumer) rebuildWords() {
	c.words = c.words[:0]
	for _, m := range c.metas {
		c.words = append(c.words, m.seq())
	}
	if c.g != nil {
		c.words = append(c.words, c.g.m.off.gen())
	}
	c.expect = slices.Grow(c.expect[:0], len(c.words))[:len(c.words)]
}

// Poll waits until at least one record is available, then returns the
// records available now (up to about MaxPollBytes per partition). It
// returns ctx.Err() when ctx ends first. The returned slice and the bytes
// its records point to stay valid until the next Poll or Close.
//
// Poll sleeps in the kernel until a producer in any process appends to one
// of its partitions. It waits only at the end of the data: when it meets
// bytes past the committed data that no live writer is writing (a writer
// died mid-frame), it takes the writer lock and repairs them, and damage
// (a bad frame or a zeroed page before committed data, a sealed segment
// cut short or missing, committed records gone) is returned as a
// *CorruptError naming the file, byte and offsets. A partition of a
// directory this process may only read is watched by polling.
//
// In a group, Poll is also where the member takes and gives up partitions
// (calling OnAssigned and OnRevoked), commits automatically, and applies
// forced resets; while it waits it checks the group every
// GroupCheckInterval.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
		if err := c.groupTick(); err != nil {
			return nil, c.log.orGone(c.topic, err)
		}
		n := len(c.readers)
		for i := range n {
			c.expect[i] = c.words[i].Load()
		}
		if c.g != nil {
			// What the last check saw, not the word now: a change in
			// between must end the sleep at once.
			c.expect[n] = c.g.seenGen
		}
		recs, err := c.poll()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timeout, err := c.unstick(ctx)
		if err != nil {
			return nil, err
		}
		if c.g != nil {
			next := max(c.g.checkInterval-time.Since(c.g.lastCheck), 50*time.Microsecond)
			if timeout == 0 || next < timeout {
				timeout = next
			}
		}
		c.sleep(ctx, timeout)
	}
}

// TryPoll is Poll without the wait: it returns no records when none are
// available, and, like Poll, a *CorruptError at damage.
func (c *Consumer) TryPoll() ([]Record, error) {
	if err := c.groupTick(); err != nil {
		return nil, c.log.orGone(c.topic, err)
	}
	recs, err := c.poll()
	if err != nil || len(recs) > 0 {
		return recs, err
	}
	_, err = c.unstick(context.Background())
	return nil, err
}

func (c *Consumer) poll() ([]Record, error) {
	if c.closed || c.log.closed.Load() {
		return nil, ErrClosed
	}
	c.recs = c.recs[:0]
	// A deleted topic first: a reader's error may come from the delete.
	if err := c.checkDeleted(); err != nil {
		return nil, err
	}
	for _, err := range c.rerr {
		if err != nil {
			return nil, err
		}
	}
	n := len(c.readers)
	for i := range n {
		r := c.readers[(c.rr+i)%n]
		var err error
		if c.recs, err = r.fill(c.recs); err != nil {
			// A delete sets the flag before it moves the files away: a
			// file that vanished under the read says which happened.
			if derr := c.checkDeleted(); derr != nil {
				return nil, derr
			}
			return c.recs, err
		}
	}
	c.rr++
	return c.recs, nil
}

// checkDeleted fails with ErrTopicNotFound once the topic was deleted.
func (c *Consumer) checkDeleted() error {
	for i, m := range c.metas {
		if m.deleted() {
			return fmt.Errorf("%w: %s (partition %d) was deleted", ErrTopicNotFound, c.topic.name, c.readers[i].p.id)
		}
	}
	return nil
}

// Records iterates over records as they arrive, waiting for new ones,
// until ctx ends, the consumer closes or an error occurs; the error (or
// ctx.Err()) is the last pair yielded. Each record is valid only during its
// iteration step. When the loop stops early, the records fetched but not
// yielded are not lost: each partition's position goes back to the first
// of them (so a commit does not cover them either).
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			recs, err := c.Poll(ctx)
			for i, r := range recs {
				if !yield(r, nil) {
					c.rewind(recs[i+1:])
					return
				}
			}
			if err != nil {
				yield(Record{}, err)
				return
			}
		}
	}
}

// rewind moves each partition's position back to its first record in
// rest, records that Poll returned but the application did not take. An
// error stays with the partition's reader, for the next Poll to return.
func (c *Consumer) rewind(rest []Record) {
	if c.closed {
		return
	}
	var done []int
	for _, rec := range rest {
		if slices.Contains(done, rec.Partition) {
			continue
		}
		done = append(done, rec.Partition)
		if i := c.readerIndex(rec.Partition); i >= 0 {
			r := c.readers[i]
			r.byTime = false
			if err := r.seek(rec.Offset); err != nil {
				c.rerr[i] = err
			}
		}
	}
}

// Seek moves partition's read position to the start position sp. In a
// group the partition must be owned by this member; Seek also clears the
// error of a partition whose committed offset was out of range.
func (c *Consumer) Seek(partition int, sp StartPosition) error {
	if c.closed {
		return ErrClosed
	}
	i := c.readerIndex(partition)
	if i < 0 {
		if c.g != nil {
			return c.g.m.notOwned(partition)
		}
		return fmt.Errorf("%w: partition %d is not read by this consumer", ErrInvalidArgument, partition)
	}
	r := c.readers[i]
	r.byTime = false
	if err := r.start(sp); err != nil {
		return err
	}
	c.rerr[i] = nil
	return nil
}

// Position returns the next offset the consumer will deliver from
// partition, or -1 if it does not read it.
func (c *Consumer) Position(partition int) int64 {
	if i := c.readerIndex(partition); i >= 0 {
		return c.readers[i].next
	}
	return -1
}

// Partitions lists the partitions the consumer reads: in a group, those
// the member owns now.
func (c *Consumer) Partitions() []int {
	ids := make([]int, len(c.readers))
	for i, r := range c.readers {
		ids[i] = r.p.id
	}
	slices.Sort(ids)
	return ids
}

func (c *Consumer) readerIndex(partition int) int {
	for i, r := range c.readers {
		if r.p.id == partition {
			return i
		}
	}
	return -1
}

// Close releases the consumer's files. A group member first gives up its
// partitions as in a rebalance (automatic commit, then OnRevoked) and
// leaves the group, so the others take its partitions over at once and,
// with auto-commit, without reading any record twice. Close is
// idempotent.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.log.removeConsumer(c)
	var errs []error
	if c.g != nil {
		if owned := c.g.m.ownedList(); len(owned) > 0 {
			errs = append(errs, c.revoke(owned))
		}
		if c.g.dirty {
			errs = append(errs, c.g.m.off.sync())
		}
		errs = append(errs, c.g.m.leave())
	}
	c.closed = true
	for _, r := range c.readers {
		r.close()
	}
	c.readers = nil
	for _, m := range c.metas {
		errs = append(errs, m.close())
	}
	c.metas, c.words = nil, nil
	return errors.Join(errs...)
}
