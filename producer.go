package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/runnel-log/runnel/internal/tracefmt"
)

// Producer appends records to one topic. It is safe for concurrent use;
// all Producers of a Log share each partition's batch queue, so concurrent
// senders share frames and fdatasyncs (group commit).
//
// Records are encoded into the partition's pending frame by the sending
// goroutine. One writer goroutine per partition takes the pending frame
// whenever its previous write finished, so records sent while a write is in
// flight go out together in the next frame: batching without a linger.
type Producer struct {
	log    *Log
	topic  *topic
	part   Partitioner // nil: KeyHashPartitioner
	acks   Acks
	spread atomic.Uint64
	closed atomic.Bool
}

// ProducerOptions configure a Producer. A nil *ProducerOptions means the
// defaults.
type ProducerOptions struct {
	// Partitioner picks each record's partition. Default
	// KeyHashPartitioner.
	Partitioner Partitioner

	// Acks says when this producer's records are acknowledged: by Send's
	// return, SendAsync's callback and Flush. Default AckDurability.
	Acks Acks
}

// validate checks the options; nil is valid.
func (o *ProducerOptions) validate() error {
	if o == nil {
		return nil
	}
	if o.Acks != AckDurability && o.Acks != AckCommitted {
		return fmt.Errorf("%w: Acks %d", ErrInvalidArgument, int(o.Acks))
	}
	return nil
}

// Acks says when a Producer acknowledges a record.
type Acks int

const (
	// AckDurability acknowledges as the Log's Durability says: in a
	// Durable Log, once the record is committed and fdatasync'd.
	AckDurability Acks = iota
	// AckCommitted acknowledges once the record is committed: visible to
	// every process and safe from any process's crash, but, in a Durable
	// Log, before the fdatasync that makes it survive a power loss (which
	// still follows, shared with the other appends). Kafka's acks=1
	// against acks=all. In the other modes it is the same as
	// AckDurability.
	AckCommitted
)

// Partitioner chooses the partition of a record for a topic with n
// partitions. spread is a per-Producer counter for records with nothing
// else to go by, which starts at a random place.
type Partitioner func(r *Record, n int, spread uint64) int

// spreadStickiness is how many keyless records go to one partition before
// the next: long runs keep batches large, as Kafka's sticky partitioner does.
const spreadStickiness = 512

// KeyHashPartitioner sends a record with a key to partition
// xxhash64(key) mod n, so equal keys share a partition and stay in order,
// and spreads keyless records over all partitions in runs, the first at a
// random partition.
func KeyHashPartitioner(r *Record, n int, spread uint64) int {
	if r.Key != nil {
		return int(xxhash.Sum64(r.Key) % uint64(n))
	}
	return int(spread / spreadStickiness % uint64(n))
}

// ManualPartitioner sends each record to its Record.Partition.
func ManualPartitioner(r *Record, n int, spread uint64) int { return r.Partition }

// Producer returns a producer for topic. It fails with ErrTopicNotFound if
// the topic does not exist.
// It fails with ErrInvalidArgument for options outside their range.
func (l *Log) Producer(topic string, opts *ProducerOptions) (*Producer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	l.watchGrowth(t) // enqueue learns of another process's growth at once
	p := &Producer{log: l, topic: t}
	// Keyless records start their runs at a random partition, as Kafka's
	// sticky partitioner does: from partition 0, every short-lived
	// producer (a command run, a request's producer) would put its
	// keyless records in partition 0 and leave a group's other members
	// idle.
	p.spread.Store(uint64(rand.IntN(len(t.parts()))) * spreadStickiness)
	if opts != nil {
		p.part, p.acks = opts.Partitioner, opts.Acks
	}
	return p, nil
}

// Send appends rec and waits for its acknowledgement (see Durability and
// ProducerOptions.Acks). If ctx ends first Send returns ctx.Err(); the
// record may still be appended.
//
// When no write to the partition is in flight and the writer lock is not
// held elsewhere, the calling goroutine writes the record's frame itself;
// otherwise the partition's writer goroutine writes it, and waits for the
// writer lock, while Send waits on ctx.
func (p *Producer) Send(ctx context.Context, rec Record) (Position, error) {
	tracePoint(tracefmt.SendBegin)
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	part, b, idx, lead, err := p.enqueue(ctx, &rec, p.sender(nil, true))
	if err != nil {
		return Position{}, err
	}
	base, err := p.await(ctx, part, b, lead)
	tracePoint(tracefmt.SendReturn)
	if err != nil {
		return Position{}, err
	}
	return Position{Partition: part.id, Offset: base + int64(idx)}, nil
}

// sender describes this producer's records to the partition's batch.
func (p *Producer) sender(done func(Position, error), waiting bool) sender {
	return sender{done: done, waiting: waiting, onCommit: p.acks == AckCommitted}
}

// await writes batch b if the caller leads it, then waits for its
// acknowledgement as the producer's Acks say, and returns b's base offset.
// The caller must not use b after it: a batch its caller wrote itself
// may be reused (partition.recycle).
func (p *Producer) await(ctx context.Context, part *partition, b *batch, lead bool) (int64, error) {
	defer part.senders.Add(-1)
	wrote := lead && part.lead(ctx, b, p.acks == AckDurability)
	if err := awaitSignal(ctx, p.ackOf(b)); err != nil {
		return 0, err
	}
	if err := p.ackErr(b); err != nil {
		return 0, err
	}
	base := b.base
	if wrote {
		part.recycle(b)
	}
	return base, nil
}

// ackErr is the outcome of b's records for this producer, once ackOf(b)
// fired.
func (p *Producer) ackErr(b *batch) error {
	if b.err != nil {
		return b.err
	}
	if p.acks == AckDurability {
		return b.syncErr
	}
	return nil
}

// ackOf returns the signal that b is acknowledged for this producer.
func (p *Producer) ackOf(b *batch) *signal {
	if p.acks == AckCommitted {
		return &b.committed
	}
	return b.done()
}

// SendAsync queues rec and returns without waiting for the write (it
// waits only while the pending frame is full and a write is in flight:
// that is the producer's backpressure). done, if not nil, is called
// with the record's position or error once it is acknowledged or has
// failed: on an internal goroutine, in send order per partition, so it must
// not block. Nor may it call Send, Flush, or Close or CloseContext of the
// Producer or the Log: each waits for the write done is called from, and
// would never return (hand such work to another goroutine). A record
// rejected before queueing (too large, bad partition, closed) gets its
// error through done before SendAsync returns.
func (p *Producer) SendAsync(rec Record, done func(Position, error)) {
	if _, _, _, _, err := p.enqueue(nil, &rec, p.sender(done, false)); err != nil && done != nil {
		done(Position{}, err)
	}
}

// Flush waits until every record sent before it is acknowledged or failed.
// It returns ErrClosed if the Log closed before they were acknowledged;
// other failures are told to the records' senders alone.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	return p.flush(ctx)
}

func (p *Producer) flush(ctx context.Context) error {
	for _, part := range p.topic.parts() {
		part.mu.Lock()
		last := part.lastQueued()
		if last != nil {
			last.pinned = true // waited on here: never reused (recycle)
		}
		part.mu.Unlock()
		if last == nil {
			continue
		}
		if err := awaitSignal(ctx, p.ackOf(last)); err != nil {
			return err
		}
		// A Log closed before the records were acknowledged (a bounded
		// close gave up on another process's lock) says so here too, as
		// to their senders; other failures are their callbacks' to tell.
		if err := p.ackErr(last); errors.Is(err, ErrClosed) {
			return err
		}
	}
	return nil
}

// Close makes later sends fail with ErrClosed and waits until the records
// already sent are acknowledged or failed. It is idempotent. The Log stays
// open. Close waits as long as another process holds a partition's writer
// lock that a queued record needs; CloseContext bounds the wait.
func (p *Producer) Close() error { return p.CloseContext(context.Background()) }

// CloseContext is Close, waiting only until ctx ends; then it returns
// ctx.Err(). The records still queued are not withdrawn: they are written
// when the writer lock is free, or fail when the Log closes.
func (p *Producer) CloseContext(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.log.closed.Load() {
		return nil
	}
	return p.flush(ctx)
}

func (p *Producer) checkOpen() error {
	if p.closed.Load() || p.log.closed.Load() {
		return ErrClosed
	}
	return nil
}

// enqueue validates rec, picks its partition and adds it to that
// partition's pending batch; lead says the caller must write the batch.
func (p *Producer) enqueue(ctx context.Context, rec *Record, s sender) (part *partition, b *batch, idx int, lead bool, err error) {
	if err := p.checkOpen(); err != nil {
		return nil, nil, 0, false, err
	}
	// Keys spread over partitions added elsewhere at once (followHint,
	// inlined: this runs at every send).
	if h := p.topic.hintMoved(); h != nil {
		p.log.readGrownCount(p.topic, h)
	}
	parts := p.topic.parts()
	n := len(parts)
	var spread uint64
	if rec.Key == nil && (n > 1 || p.part != nil) {
		// Only a choice needs the counter: one shared atomic add per
		// record was a measurable part of a stream's cost.
		spread = p.spread.Add(1)
	}
	var i int
	if p.part == nil {
		i = KeyHashPartitioner(rec, n, spread)
	} else {
		// A copy for the unknown function, so that rec itself never
		// escapes to the heap on the default path.
		r := *rec
		i = p.part(&r, n, spread)
	}
	if i >= 0 && i < n {
		part = parts[i]
	} else if part, err = p.log.partitionOf(p.topic, i); err != nil { // maybe added by another process
		return nil, nil, 0, false, err
	}
	size, err := p.checkRecord(rec, -1)
	if err != nil {
		return nil, nil, 0, false, err
	}
	b, idx, lead, err = part.add(ctx, rec, size, s)
	return part, b, idx, lead, err
}
