package runnel

import (
	"context"
	"fmt"

	"github.com/runnel-log/runnel/internal/frame"
)

// SendBatch appends recs to one partition as a single frame and waits for
// the acknowledgement (see Durability and ProducerOptions.Acks). The
// records get consecutive offsets from the returned base, and are
// committed atomically: after a crash at any instant either all of them
// are stored or none is. Each record's Partition field is ignored; a zero
// Time means the moment of the call.
//
// The records together must encode within the larger of
// Options.MaxBatchBytes and Options.MaxRecordBytes, or SendBatch returns
// ErrTooLarge and stores nothing. If ctx ends first SendBatch returns
// ctx.Err(); the records may still be appended.
func (p *Producer) SendBatch(ctx context.Context, partition int, recs []Record) (base int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	part, b, idx, lead, err := p.queueBatch(ctx, partition, recs, p.sender(nil, true))
	if err != nil {
		return 0, err
	}
	if err := p.await(ctx, part, b, lead); err != nil {
		return 0, err
	}
	return b.base + int64(idx), nil
}

// queueBatch validates recs and adds them to the partition's pending
// frame, together, waiting while that frame is full and a write is in
// flight (ctx, nil for none, ends that wait); s says who sends them. It
// returns the partition, the batch, the first record's index, and whether
// the caller leads the batch's write (see partition.queued).
func (p *Producer) queueBatch(ctx context.Context, partition int, recs []Record, s sender) (*partition, *batch, int, bool, error) {
	if err := p.checkOpen(); err != nil {
		return nil, nil, 0, false, err
	}
	n := len(p.topic.parts)
	if partition < 0 || partition >= n {
		return nil, nil, 0, false, fmt.Errorf("%w: partition %d of topic %s with %d partitions", ErrInvalidArgument, partition, p.topic.name, n)
	}
	if len(recs) == 0 {
		return nil, nil, 0, false, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	limit := max(p.log.opts.MaxBatchBytes, p.log.opts.MaxRecordBytes)
	total := 0
	for i := range recs {
		r := &recs[i]
		if len(r.Headers) > frame.MaxHeaders {
			return nil, nil, 0, false, fmt.Errorf("%w: record %d has %d headers, limit %d", ErrTooLarge, i, len(r.Headers), frame.MaxHeaders)
		}
		size := frame.RecordSize(r.Key, r.Value, frameHeaders(r.Headers))
		if size > p.log.opts.MaxRecordBytes {
			return nil, nil, 0, false, fmt.Errorf("%w: record %d is %d bytes encoded, limit %d", ErrTooLarge, i, size, p.log.opts.MaxRecordBytes)
		}
		// A record's timestamp delta can take up to 10 bytes more than
		// RecordSize counts.
		total += size + 10
	}
	if total > limit {
		return nil, nil, 0, false, fmt.Errorf("%w: batch of %d records is up to %d bytes encoded, limit %d (Options.MaxBatchBytes)", ErrTooLarge, len(recs), total, limit)
	}
	part := p.topic.parts[partition]
	if err := part.reserve(ctx, total); err != nil {
		return nil, nil, 0, false, err
	}
	b := part.pending
	idx := b.fb.Count()
	for i := range recs {
		r := &recs[i]
		b.fb.Add(timestamp(r.Time), r.Key, r.Value, frameHeaders(r.Headers))
	}
	return part, b, idx, part.queued(b, idx, s), nil
}
