package runnel

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// SendBatch appends recs to one partition as a single frame and waits for
// the acknowledgement (see Durability and ProducerOptions.Acks). The
// records get consecutive offsets from the returned base, and are
// committed atomically: after a crash at any instant either all of them
// are stored or none is. Each record's Partition field is ignored; a zero
// Time means the moment of the call.
//
// Each record must encode within Options.MaxRecordBytes, and the records
// together within one frame (MaxFrameBytes), or SendBatch returns
// ErrTooLarge and stores nothing; Options.MaxBatchBytes does not limit a
// batch. If ctx ends first SendBatch returns ctx.Err(); the records may
// still be appended.
func (p *Producer) SendBatch(ctx context.Context, partition int, recs []Record) (base int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	part, b, idx, lead, err := p.queueBatch(ctx, partition, recs, p.sender(nil, true))
	if err != nil {
		return 0, err
	}
	base, err = p.await(ctx, part, b, lead)
	if err != nil {
		return 0, err
	}
	return base + int64(idx), nil
}

// queueBatch validates recs and adds them to the partition's pending
// frame, together, waiting while that frame is full and a write is in
// flight (ctx, nil for none, ends that wait); s says who sends them. It
// returns the partition, the batch, the first record's index, and whether
// the caller leads the batch's write (see partition.queued).
func (p *Producer) queueBatch(ctx context.Context, partition int, recs []Record, s sender) (*partition, *batch, int, bool, error) {
	part, err := p.batchPartition(partition, len(recs))
	if err != nil {
		return nil, nil, 0, false, err
	}
	total := 0
	for i := range recs {
		r := &recs[i]
		size, err := p.checkRecord(r, i)
		if err != nil {
			return nil, nil, 0, false, err
		}
		total += size + maxDeltaGrowth
	}
	if err := checkFrameSize(frame.HeaderSize+total, len(recs)); err != nil {
		return nil, nil, 0, false, err
	}
	if err := part.reserve(ctx, total); err != nil {
		return nil, nil, 0, false, err
	}
	b := part.pending
	idx := b.fb.Count()
	var now callTime
	for i := range recs {
		r := &recs[i]
		b.fb.Add(now.of(r.Time), r.Key, r.Value, frameHeaders(r.Headers))
	}
	return part, b, idx, part.queued(b, idx, s), nil
}

// maxDeltaGrowth is how many bytes a record may take in a frame beyond
// its frame.RecordSize, which counts a one-byte timestamp delta: the
// delta up to 9 more, and so its length prefix possibly one more.
const maxDeltaGrowth = 10

// batchPartition checks what every batch send checks first: the producer
// is open, the partition exists and the batch has n > 0 records.
func (p *Producer) batchPartition(partition, n int) (*partition, error) {
	if err := p.checkOpen(); err != nil {
		return nil, err
	}
	part, err := p.log.partitionOf(p.topic, partition)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	return part, nil
}

// checkRecord applies the limits on one record, the i-th of its batch
// (-1 for a record sent alone), and returns its frame.RecordSize.
func (p *Producer) checkRecord(r *Record, i int) (int, error) {
	if err := checkFields(r, i); err != nil {
		return 0, err
	}
	size := frame.RecordSize(r.Key, r.Value, frameHeaders(r.Headers))
	if size > p.log.opts.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %s is %d bytes encoded, limit %d", ErrTooLarge, which(i), size, p.log.opts.MaxRecordBytes)
	}
	return size, nil
}

// checkFields refuses a record, the i-th of its batch, that a frame cannot
// hold whatever its size: more headers than the format holds, or a time
// outside the years a timestamp holds.
func checkFields(r *Record, i int) error {
	if err := checkHeaderCount(len(r.Headers), i); err != nil {
		return err
	}
	if !r.Time.IsZero() && (r.Time.Before(earliestTime) || r.Time.After(latestTime)) {
		return fmt.Errorf("%w: %s has time %s, outside the years 1678 to 2262 that a record's timestamp holds", ErrInvalidArgument, which(i), r.Time.Format(time.RFC3339Nano))
	}
	return nil
}

// checkHeaderCount refuses the i-th record of a batch if its n headers
// are more than the format holds.
func checkHeaderCount(n, i int) error {
	if n > frame.MaxHeaders {
		return fmt.Errorf("%w: %s has %d headers, limit %d", ErrTooLarge, which(i), n, frame.MaxHeaders)
	}
	return nil
}

// checkFrameSize refuses a batch of n records whose frame, size bytes,
// would be over the frame cap.
func checkFrameSize(size, n int) error {
	if size > MaxFrameBytes {
		return fmt.Errorf("%w: batch of %d records is up to %d bytes encoded, over the %d bytes of one frame (MaxFrameBytes)", ErrTooLarge, n, size, MaxFrameBytes)
	}
	return nil
}

// which names record i of a batch, or a record sent alone (-1).
func which(i int) string {
	if i < 0 {
		return "record"
	}
	return fmt.Sprintf("record %d", i)
}
