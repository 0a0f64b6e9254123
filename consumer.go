package runnel

import (
	"context"
	"fmt"
	"iter"
	"slices"
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

// ConsumerOptions configure a Consumer. A nil *ConsumerOptions means the
// defaults.
type ConsumerOptions struct {
	// Partitions to read. Default: all of the topic's partitions.
	Partitions []int

	// Start is where each partition is read from. Default Earliest.
	Start StartPosition

	// MaxPollBytes bounds how many bytes Poll reads from one partition in
	// one call. Default 1 MiB. A frame larger than this is still read
	// whole.
	MaxPollBytes int
}

const defaultMaxPollBytes = 1 << 20

// Consumer reads records from a topic's partitions. It is not safe for
// concurrent use: one goroutine polls it (as with Kafka's consumer).
//
// Only committed records whose checksum matches are delivered, in offset
// order per partition. Records alias the consumer's buffers: see Record.
type Consumer struct {
	log     *Log
	topic   *topic
	readers []*partReader
	wake    chan struct{}
	recs    []Record
	rr      int // partition Poll starts with, rotated for fairness
	closed  bool
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
	if o.MaxPollBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxPollBytes", ErrInvalidArgument)
	}
	parts := o.Partitions
	if parts == nil {
		for i := range t.parts {
			parts = append(parts, i)
		}
	}
	c := &Consumer{log: l, topic: t, wake: make(chan struct{}, 1)}
	seen := map[int]bool{}
	for _, id := range parts {
		if id < 0 || id >= len(t.parts) || seen[id] {
			c.Close()
			return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions (or listed twice)", ErrInvalidArgument, id, topic, len(t.parts))
		}
		seen[id] = true
		r := newPartReader(t.parts[id], o.MaxPollBytes)
		c.readers = append(c.readers, r)
		if err := r.start(o.Start); err != nil {
			c.Close()
			return nil, err
		}
		t.parts[id].subscribe(c.wake)
	}
	return c, nil
}

// start positions r as sp says.
func (r *partReader) start(sp StartPosition) error {
	switch sp.kind {
	case startLatest:
		return r.seekEnd()
	case startOffset:
		return r.seek(sp.offset)
	case startTime:
		return r.seekTime(sp.time)
	}
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		return r.openSegment(0)
	}
	return r.openSegment(bases[0])
}

// Poll waits until at least one record is available, then returns the
// records available now (up to about MaxPollBytes per partition). It
// returns ctx.Err() when ctx ends first. The returned slice and the bytes
// its records point to stay valid until the next Poll or Close.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
		recs, err := c.TryPoll()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TryPoll is Poll without the wait: it returns no records when none are
// available.
func (c *Consumer) TryPoll() ([]Record, error) {
	if c.closed || c.log.closed.Load() {
		return nil, ErrClosed
	}
	// Drain a pending wake-up first, so that an append after this read
	// leaves a fresh one for Poll's wait.
	select {
	case <-c.wake:
	default:
	}
	c.recs = c.recs[:0]
	n := len(c.readers)
	for i := range n {
		r := c.readers[(c.rr+i)%n]
		var err error
		if c.recs, err = r.fill(c.recs); err != nil {
			return c.recs, err
		}
	}
	c.rr++
	return c.recs, nil
}

// Records iterates over records as they arrive, waiting for new ones,
// until ctx ends, the consumer closes or an error occurs; the error (or
// ctx.Err()) is the last pair yielded. Each record is valid only during its
// iteration step.
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			recs, err := c.Poll(ctx)
			for _, r := range recs {
				if !yield(r, nil) {
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

// Seek moves partition's read position to the start position sp.
func (c *Consumer) Seek(partition int, sp StartPosition) error {
	if c.closed {
		return ErrClosed
	}
	r := c.reader(partition)
	if r == nil {
		return fmt.Errorf("%w: partition %d is not read by this consumer", ErrInvalidArgument, partition)
	}
	r.byTime = false
	return r.start(sp)
}

// Position returns the next offset the consumer will deliver from
// partition, or -1 if it does not read it.
func (c *Consumer) Position(partition int) int64 {
	if r := c.reader(partition); r != nil {
		return r.next
	}
	return -1
}

// Partitions lists the partitions the consumer reads.
func (c *Consumer) Partitions() []int {
	ids := make([]int, len(c.readers))
	for i, r := range c.readers {
		ids[i] = r.p.id
	}
	slices.Sort(ids)
	return ids
}

func (c *Consumer) reader(partition int) *partReader {
	for _, r := range c.readers {
		if r.p.id == partition {
			return r
		}
	}
	return nil
}

// Close releases the consumer's files. It is idempotent.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	for _, r := range c.readers {
		r.p.unsubscribe(c.wake)
		r.close()
	}
	c.readers = nil
	return nil
}

