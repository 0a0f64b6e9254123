package runnel

import (
	"context"
	"runtime"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// batch is one frame in the making: records encoded as they are sent, then
// written by the partition's writer goroutine in one append.
type batch struct {
	fb   *frame.Builder
	cbs  []batchCallback
	done chan struct{} // closed once base and err are final
	base int64
	err  error

	// waiters counts the records whose senders block in Send: after this
	// batch, about that many come back at once.
	waiters int
}

type batchCallback struct {
	idx int
	fn  func(Position, error)
}

func newBatch(fb *frame.Builder) *batch {
	if fb == nil {
		fb = new(frame.Builder)
	}
	fb.Reset()
	return &batch{fb: fb, done: make(chan struct{})}
}

// add encodes one record into the partition's pending batch, waiting while
// the batch is full and a write is in flight. It returns the batch and the
// record's index in it.
//
// ctx (nil for none) ends the wait for room; the record is then not queued.
func (p *partition) add(ctx context.Context, ts int64, rec *Record, size int, done func(Position, error), waiting bool) (*batch, int, error) {
	if err := p.reserve(ctx, size); err != nil {
		return nil, 0, err
	}
	b := p.pending
	idx := b.fb.Count()
	b.fb.Add(ts, rec.Key, rec.Value, frameHeaders(rec.Headers))
	p.queued(b, idx, done, waiting)
	return b, idx, nil
}

// reserve waits until size more bytes fit in the pending batch, or the
// batch is empty, and returns holding p.mu with p.pending ready for them.
// It returns without the lock when the partition closed or ctx (nil for
// none) ended first.
func (p *partition) reserve(ctx context.Context, size int) error {
	p.mu.Lock()
	// Frames stay within half a segment (a single larger record still
	// gets a frame of its own), so small segments stay small.
	limit := min(p.log.opts.MaxBatchBytes, int(p.batchCap.Load()))
	full := func() bool { return p.pending != nil && p.pending.fb.Count() > 0 && p.pending.fb.Len()+size > limit }
	var stop func() bool
	for !p.closed && full() {
		if ctx != nil && stop == nil {
			stop = context.AfterFunc(ctx, func() {
				p.mu.Lock()
				p.space.Broadcast()
				p.mu.Unlock()
			})
		}
		if ctx != nil && ctx.Err() != nil {
			break
		}
		p.space.Wait()
	}
	if stop != nil {
		defer stop()
	}
	if p.closed {
		p.mu.Unlock()
		return p.errClosed()
	}
	if ctx != nil && ctx.Err() != nil && full() {
		p.mu.Unlock()
		return ctx.Err()
	}
	if !p.started {
		p.started = true
		p.loopDone = make(chan struct{})
		p.pending = newBatch(nil)
		go p.writeLoop()
	}
	return nil
}

// queued finishes an add: the records from index idx of batch b are in,
// done (if set) is to be called for the first of them, and waiting says a
// sender blocks on them. It releases p.mu, which reserve took.
func (p *partition) queued(b *batch, idx int, done func(Position, error), waiting bool) {
	if done != nil {
		b.cbs = append(b.cbs, batchCallback{idx, done})
	}
	if waiting {
		b.waiters++
	}
	if idx == 0 {
		p.work.Signal()
	}
	p.mu.Unlock()
}

// lastQueued returns the newest batch that holds records not yet
// acknowledged, or nil. The caller holds p.mu.
func (p *partition) lastQueued() *batch {
	if p.pending != nil && p.pending.fb.Count() > 0 {
		return p.pending
	}
	return p.inflight
}

// writeLoop is the partition's writer goroutine: it takes the pending batch
// as soon as the previous write finished and appends it. It exits once the
// partition is closed and nothing is pending.
func (p *partition) writeLoop() {
	defer close(p.loopDone)
	p.mu.Lock()
	regroup := 0 // senders released by the last write, expected back
	for {
		for !p.closed && p.pending.fb.Count() == 0 {
			p.work.Wait()
		}
		p.awaitRegroup(regroup)
		if p.pending.fb.Count() == 0 {
			p.mu.Unlock()
			return
		}
		b := p.pending
		p.inflight = b
		p.pending = newBatch(p.spare)
		p.spare = nil
		p.space.Broadcast()
		p.mu.Unlock()

		b.base, b.err = p.appendBatch(b.fb)
		regroup = b.waiters
		b.finish(p.id)

		p.mu.Lock()
		p.spare, b.fb = b.fb, nil
		if p.inflight == b {
			p.inflight = nil
		}
	}
}

// regroupWait bounds how long the writer lets the senders it just released
// come back before it writes without them: in Durable mode a fraction of
// one fdatasync, spent so that the next one is shared by all of them; in
// the other modes a few pwrites' worth.
func (p *partition) regroupWait() time.Duration {
	if p.log.opts.Durability == Durable {
		return 50 * time.Microsecond
	}
	return 10 * time.Microsecond
}

// awaitRegroup is group commit's other half. When a write releases n
// blocked senders, they send again within microseconds; taking the pending
// batch at once would write one of them and make the rest wait a whole
// write (and fdatasync) more. So wait, briefly, until about n records are
// pending. The caller holds p.mu.
func (p *partition) awaitRegroup(n int) {
	if n <= 1 {
		return
	}
	deadline := time.Now().Add(p.regroupWait())
	for !p.closed && p.pending.fb.Count() < n && time.Now().Before(deadline) {
		p.mu.Unlock()
		runtime.Gosched()
		p.mu.Lock()
	}
}

// finish publishes the batch's outcome to callbacks, then to Send and
// Flush waiters: once Flush returns, every callback of its records ran.
func (b *batch) finish(partition int) {
	for _, c := range b.cbs {
		if b.err != nil {
			c.fn(Position{}, b.err)
		} else {
			c.fn(Position{Partition: partition, Offset: b.base + int64(c.idx)}, nil)
		}
	}
	b.cbs = nil
	close(b.done)
}
