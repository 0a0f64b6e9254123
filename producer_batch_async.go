package runnel

// SendBatchAsync is SendBatch without the wait: it adds recs to the
// partition's pending frame and returns, waiting only while that frame is
// full and a write is in flight (the producer's backpressure, as in
// SendAsync). done, if not nil, is called with the first record's offset
// (the others follow consecutively) or the error once the batch is
// acknowledged or has failed: on an internal goroutine, in send order per
// partition, so it must not block, nor call what SendAsync's done may
// not. A batch rejected before queueing (too large, bad partition,
// closed) gets its error through done before SendBatchAsync returns.
//
// Batches sent one after another to a partition are stored in that
// order, which is what lets a caller pipeline them: the next batch is
// queued while the previous one is still being written and synced.
func (p *Producer) SendBatchAsync(partition int, recs []Record, done func(base int64, err error)) {
	var cb func(Position, error)
	if done != nil {
		cb = func(pos Position, err error) { done(pos.Offset, err) }
	}
	if _, _, _, _, err := p.queueBatch(nil, partition, recs, p.sender(cb, false)); err != nil && done != nil {
		done(0, err)
	}
}
