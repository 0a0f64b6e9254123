package runnel

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
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

	// SpinWait makes Poll spin for up to this long, watching for appends,
	// before it sleeps: lower wake-up latency for a busy core. Default 0:
	// sleep at once (in the kernel, woken by the appending process).
	SpinWait time.Duration
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
	recs    []Record
	rr      int // partition Poll starts with, rotated for fairness
	closed  bool
	spin    time.Duration

	// Sleeping: each reader's partition.meta mapping, its append-sequence
	// word and the value seen before the last read; cancel wakes a sleep
	// when Poll's ctx ends.
	metas  []*metaMap
	words  []*atomic.Uint32
	expect []uint32
	cancel atomic.Uint32
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
	c := &Consumer{log: l, topic: t, spin: o.SpinWait}
	seen := map[int]bool{}
	for _, id := range parts {
		if id < 0 || id >= len(t.parts) || seen[id] {
			c.Close()
			return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions (or listed twice)", ErrInvalidArgument, id, topic, len(t.parts))
		}
		seen[id] = true
		r := newPartReader(t.parts[id], o.MaxPollBytes)
		c.readers = append(c.readers, r)
		m, err := openMeta(t.parts[id].dir)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.metas = append(c.metas, m)
		c.words = append(c.words, m.seq())
		if err := r.start(o.Start); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.expect = make([]uint32, len(c.words))
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
//
// Poll sleeps in the kernel until a producer in any process appends to one
// of its partitions. When it meets bytes past the committed data that no
// live writer is writing (a writer died mid-frame), it takes the writer
// lock and repairs them; damage inside committed data is returned as a
// *CorruptError.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
		for i, w := range c.words {
			c.expect[i] = w.Load()
		}
		recs, err := c.TryPoll()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timeout, err := c.unstick()
		if err != nil {
			return nil, err
		}
		c.sleep(ctx, timeout)
	}
}

// stuckRecheck bounds a sleep while a reader waits on a frame that a live
// writer is writing: if that writer dies, no append will wake the reader.
const stuckRecheck = 10 * time.Millisecond

// unstick handles readers that stopped before the end of their file. A
// writer holding the lock is still writing: sleep, briefly. Otherwise the
// bytes are a dead writer's (repair cuts them) or damage (reported).
func (c *Consumer) unstick() (time.Duration, error) {
	var timeout time.Duration
	for _, r := range c.readers {
		if r.stuck == nil {
			continue
		}
		timeout = stuckRecheck
		held, err := r.writerActive()
		if err != nil || held {
			continue
		}
		if err := r.p.repair(); err != nil {
			return 0, err
		}
		if err := r.checkDamage(); err != nil {
			return 0, err
		}
	}
	return timeout, nil
}

// sleep waits until a partition's append sequence moves, ctx ends, or
// timeout passes (0: no timeout).
func (c *Consumer) sleep(ctx context.Context, timeout time.Duration) {
	if c.spin > 0 && c.spinFor(c.spin) {
		return
	}
	for _, m := range c.metas {
		m.sleepers().Add(1)
	}
	priv := c.cancel.Load()
	stop := context.AfterFunc(ctx, func() {
		c.cancel.Add(1)
		wakePrivate(&c.cancel)
	})
	waitWords(c.words, c.expect, &c.cancel, priv, timeout)
	stop()
	for _, m := range c.metas {
		m.sleepers().Add(^uint32(0))
	}
}

// spinFor watches the append sequences for up to d; it reports whether
// one moved.
func (c *Consumer) spinFor(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		for i, w := range c.words {
			if w.Load() != c.expect[i] {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
}

// TryPoll is Poll without the wait: it returns no records when none are
// available.
func (c *Consumer) TryPoll() ([]Record, error) {
	if c.closed || c.log.closed.Load() {
		return nil, ErrClosed
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
		r.close()
	}
	c.readers = nil
	var errs []error
	for _, m := range c.metas {
		errs = append(errs, m.close())
	}
	c.metas, c.words = nil, nil
	return errors.Join(errs...)
}
