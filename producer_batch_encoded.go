package runnel

import (
	"context"
	"fmt"

	"github.com/runnel-log/runnel/internal/frame"
)

// RecordBatch is a batch of records encoded for one frame as they are
// added, for SendRecordBatch and SendRecordBatchAsync. It is SendBatch's
// argument for a caller that decodes records from another format (a
// network protocol, a file): each record goes straight from the caller's
// bytes into the frame's encoding, with no []Record in between, and a
// sent batch usually becomes the partition's next frame as it is, without
// being encoded again.
//
// The zero value is an empty batch, ready to use. A RecordBatch is not
// safe for concurrent use; reuse one for batch after batch to reuse its
// memory.
type RecordBatch struct {
	fb *frame.Builder

	// The largest record, which the Log's MaxRecordBytes is checked
	// against when the batch is sent.
	largest, largestAt int
}

// Add encodes rec at the end of the batch: its Key, Value, Headers and
// Time (a zero Time means now); Partition and Offset are ignored. rec's
// bytes are copied, so they may be reused as soon as Add returns. A record
// with more headers than the format holds (4,096) gets ErrTooLarge, one
// whose Time is outside the years a timestamp holds (see Record.Time)
// ErrInvalidArgument; either leaves the batch as it was.
func (b *RecordBatch) Add(rec Record) error {
	if err := checkFields(&rec, b.Len()); err != nil {
		return err
	}
	b.add(timestamp(rec.Time), rec.Key, rec.Value, rec.Headers)
	return nil
}

// AddAt is Add for a decoder that holds a record's fields apart, as a
// Kafka server does: it encodes the record timed unixNano (Unix
// nanoseconds, which hold only times a timestamp can) with key, value and
// headers, copied as Add copies them. It spares the Record and time.Time
// that Add takes, a tenth of a Kafka server's CPU per record. A record
// with more headers than the format holds (4,096) gets ErrTooLarge and
// leaves the batch as it was.
func (b *RecordBatch) AddAt(unixNano int64, key, value []byte, headers []Header) error {
	if err := checkHeaderCount(len(headers), b.Len()); err != nil {
		return err
	}
	b.add(unixNano, key, value, headers)
	return nil
}

// add encodes a checked record at the end of the batch.
func (b *RecordBatch) add(ts int64, key, value []byte, headers []Header) {
	if b.fb == nil {
		b.fb = new(frame.Builder)
	}
	if size := b.fb.Add(ts, key, value, frameHeaders(headers)); size > b.largest {
		b.largest, b.largestAt = size, b.Len()-1
	}
}

// Len is the number of records in the batch; a nil batch has none.
func (b *RecordBatch) Len() int {
	if b == nil || b.fb == nil {
		return 0
	}
	return b.fb.Count()
}

// Size is the size of the frame the batch makes: the records as encoded
// and the frame's header. A batch is sent only if Size is at most
// MaxFrameBytes.
func (b *RecordBatch) Size() int {
	if b.fb == nil {
		return frame.HeaderSize
	}
	return b.fb.Len()
}

// Reset empties the batch, keeping its memory.
func (b *RecordBatch) Reset() {
	if b == nil {
		return
	}
	if b.fb != nil {
		b.fb.Reset()
	}
	b.largest, b.largestAt = 0, 0
}

// MaxFrameBytes bounds one frame on disk, and so one batch: SendBatch,
// SendBatchAsync, SendRecordBatch and SendRecordBatchAsync store a batch
// as a single frame, and refuse one that would encode larger with
// ErrTooLarge. Options.MaxBatchBytes does not bound them; it only bounds
// how many records sent separately are gathered into one frame.
const MaxFrameBytes = frame.MaxSize

// SendRecordBatch is SendBatch for a RecordBatch: it appends b's records
// to one partition as a single frame, at consecutive offsets from the
// returned base, atomically, and waits for the acknowledgement. b is
// empty when SendRecordBatch returns, whatever the outcome, and may be
// reused. An empty (or nil) b is refused with ErrInvalidArgument.
//
// It fails with ErrTooLarge, storing nothing, when a record of b encodes
// larger than Options.MaxRecordBytes or b's Size is over MaxFrameBytes.
// If ctx ends first it returns ctx.Err(); the records may still be
// appended.
func (p *Producer) SendRecordBatch(ctx context.Context, partition int, b *RecordBatch) (base int64, err error) {
	if err := ctx.Err(); err != nil {
		b.Reset()
		return 0, err
	}
	part, pb, idx, lead, err := p.queueRecordBatch(ctx, partition, b, p.sender(nil, true), nil, nil)
	if err != nil {
		return 0, err
	}
	base, err = p.await(ctx, part, pb, lead)
	if err != nil {
		return 0, err
	}
	return base + int64(idx), nil
}

// SendRecordBatchAsync is SendBatchAsync for a RecordBatch: it queues b's
// records as one frame and returns, waiting only while the partition's
// pending frame is full and a write is in flight. done, if not nil, is
// called as SendBatchAsync's is: with the first record's offset or the
// error, once the batch is acknowledged or has failed, or before
// SendRecordBatchAsync returns for a batch refused at once (see
// SendRecordBatch). b is empty when it returns and may be reused.
func (p *Producer) SendRecordBatchAsync(partition int, b *RecordBatch, done func(base int64, err error)) {
	var cb func(Position, error)
	if done != nil {
		cb = func(pos Position, err error) { done(pos.Offset, err) }
	}
	if _, _, _, _, err := p.queueRecordBatch(nil, partition, b, p.sender(cb, false), nil, nil); err != nil && done != nil {
		done(0, err)
	}
}

// SendRecordBatchAsyncCommit is SendRecordBatchAsync that also calls
// committed, with the first record's offset, as soon as the batch is
// committed: visible to every process, and in a Durable Log before the
// fdatasync its acknowledgement waits for (so before done). It is not
// called for a batch that fails. It runs on the partition's writer, which
// it holds up: it must be quick and must not send. A Kafka server uses it
// to let a producer's next batch follow this one.
func (p *Producer) SendRecordBatchAsyncCommit(partition int, b *RecordBatch, committed func(base int64), done func(base int64, err error)) {
	p.SendRecordBatchAsyncNoted(partition, b, nil, committed, done)
}

// SendRecordBatchAsyncNoted is SendRecordBatchAsyncCommit that also calls
// note (unless nil), with the first record's offset, before the batch is
// committed: under the partition's writer lock, once the frame's offsets
// are fixed and before any byte of it is written. Whatever note records
// is so in place before any process can see the batch, and before a
// process that dies can have committed it; but a process that dies after
// note, or a write that fails, leaves the batch uncommitted, and the next
// append stores other records at those offsets. note is not called for a
// batch whose append fails before its frame is written (refused, or a
// segment roll that failed). It holds up the writer lock, which
// other processes may wait for: it must be quick and must not send. A
// Kafka server uses it to journal where a producer's batch goes, so that
// after a crash a retry of a batch that was committed is known as one.
func (p *Producer) SendRecordBatchAsyncNoted(partition int, b *RecordBatch, note func(base int64), committed func(base int64), done func(base int64, err error)) {
	var cb func(Position, error)
	if done != nil {
		cb = func(pos Position, err error) { done(pos.Offset, err) }
	}
	var onCommit func(Position, error)
	if committed != nil {
		onCommit = func(pos Position, err error) {
			if err == nil {
				committed(pos.Offset)
			}
		}
	}
	if _, _, _, _, err := p.queueRecordBatch(nil, partition, b, p.sender(cb, false), onCommit, note); err != nil && done != nil {
		done(0, err)
	}
}

// queueRecordBatch is queueBatch for a RecordBatch, which it leaves
// empty. Into an empty pending frame the batch's own frame is taken as
// it is (the builders are swapped, so rb keeps memory to reuse);
// otherwise its records are appended to the pending frame's.
func (p *Producer) queueRecordBatch(ctx context.Context, partition int, rb *RecordBatch, s sender, committed func(Position, error), note func(base int64)) (*partition, *batch, int, bool, error) {
	defer rb.Reset()
	part, err := p.batchPartition(partition, rb.Len())
	if err != nil {
		return nil, nil, 0, false, err
	}
	if rb.largest > p.log.opts.MaxRecordBytes {
		return nil, nil, 0, false, fmt.Errorf("%w: record %d is %d bytes encoded, limit %d", ErrTooLarge, rb.largestAt, rb.largest, p.log.opts.MaxRecordBytes)
	}
	if err := checkFrameSize(rb.Size(), rb.Len()); err != nil {
		return nil, nil, 0, false, err
	}
	// Appended to a pending frame, each record's timestamp delta may
	// grow: room for the worst, so that the frame stays within its cap.
	if err := part.reserve(ctx, rb.Size()-frame.HeaderSize+maxDeltaGrowth*rb.Len()); err != nil {
		return nil, nil, 0, false, err
	}
	b := part.pending
	idx := b.fb.Count()
	if idx == 0 {
		b.fb, rb.fb = rb.fb, b.fb
	} else {
		b.fb.Append(rb.fb)
	}
	if committed != nil {
		b.addCallback(idx, committed, true)
	}
	if note != nil {
		b.notes = append(b.notes, batchNote{idx, note})
	}
	return part, b, idx, part.queued(b, idx, s), nil
}
