package runnel

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/runnel-log/runnel/internal/frame"
)

// The write stage of a partition: records are encoded into the pending
// batch as they are sent, and whoever holds the write token appends it as
// one frame. A sender that finds no write in flight takes the token and
// appends its own frame (leader-style: no hand-off to another goroutine and
// back); otherwise its record waits in the pending batch, which the
// partition's writer goroutine appends as soon as the write in flight ends
// (natural batching). The token is released once the frame is committed, so
// in Durable mode the next frame is written while the last one's fdatasync
// is still running (commit.go).

// batch is one frame in the making, then in flight.
type batch struct {
	fb       *frame.Builder
	cbs      []batchCallback
	onCommit int // how many of cbs acknowledge at commit (AckCommitted): more than none is what counts
	notes    []batchNote

	committed signal // fired once base, end and err are final
	synced    signal // fired once syncErr is final (Durable mode)
	durable   bool   // the Log is Durable: Send and Flush wait for synced
	base      int64
	end       logPos // where the frame ends: the tail after it
	err       error  // the append's outcome
	syncErr   error  // the fdatasync's outcome, Durable mode

	// waiters counts the records whose senders block in Send: after this
	// batch, about that many come back at once.
	waiters int

	// In Durable mode, from being taken for writing until settled: the
	// partition whose unsynced backlog counts the batch, and its bytes.
	owner   *partition
	backlog int64

	// pinned: a Flush took the batch to wait on, so it is never reused
	// (recycle). Guarded by the partition's mu.
	pinned bool
}

// batchNote is called with the offset of the batch's record idx before
// the frame is written (SendRecordBatchAsyncNoted).
type batchNote struct {
	idx int
	fn  func(base int64)
}

// batchCallback calls fn once for each of the n records from index idx
// (a batch's callback, called for its first record alone, has n 1).
type batchCallback struct {
	idx      int
	n        int
	fn       func(Position, error)
	onCommit bool // the producer acknowledges at commit (AckCommitted)
}

// addCallback has fn called for record idx of b. A record that follows
// the last one with the same callback extends its run instead of taking
// an entry of its own: a SendAsync stream, one callback for every record,
// stored 24 bytes a record into a recycled slice that the writer
// goroutine had cleared, often on the other core, so the sender missed
// the cache line by line; a run takes one entry a frame.
func (b *batch) addCallback(idx int, fn func(Position, error), onCommit bool) {
	if k := len(b.cbs) - 1; k >= 0 {
		if c := &b.cbs[k]; c.idx+c.n == idx && c.onCommit == onCommit && sameFunc(c.fn, fn) {
			c.n++
			return
		}
	}
	b.cbs = append(b.cbs, batchCallback{idx, 1, fn, onCommit})
	if onCommit {
		b.onCommit++
	}
}

// sameFunc says whether a and b are the same func value: the same closure,
// which a func value points to (comparing the pointers is what == would do
// if Go allowed it on funcs). Different closures of the same code differ.
func sameFunc(a, b func(Position, error)) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

func (p *partition) newBatch(fb *frame.Builder) *batch {
	if fb == nil {
		fb = new(frame.Builder)
	}
	fb.Reset()
	b := p.spareBatch
	if b != nil {
		p.spareBatch = nil
		*b = batch{}
	} else {
		b = new(batch)
	}
	b.fb, b.durable = fb, p.log.opts.Durability == Durable
	// A stream of SendAsync records carries a callback each: growing a
	// fresh slice for every batch of thousands was most of what a record
	// allocated. The slice of a settled batch is taken over instead, or
	// one sized for the largest batch yet. The caller holds p.mu.
	if cbs, ok := spareCallbacks.Get().(*[]batchCallback); ok {
		b.cbs = *cbs
	} else if p.cbsHint > 0 {
		b.cbs = make([]batchCallback, 0, p.cbsHint)
	}
	return b
}

// done is the signal that b is acknowledged: synced in Durable mode,
// committed in the others.
func (b *batch) done() *signal {
	if b.durable {
		return &b.synced
	}
	return &b.committed
}

// add encodes one record into the partition's pending batch, waiting while
// the batch is full and a write is in flight. It returns the batch and the
// record's index in it; lead says the caller took the write token and must
// write the batch (p.write).
//
// ctx (nil for none) ends the wait for room; the record is then not queued.
func (p *partition) add(ctx context.Context, rec *Record, size int, s sender) (b *batch, idx int, lead bool, err error) {
	if err := p.reserve(ctx, size); err != nil {
		return nil, 0, false, err
	}
	b = p.pending
	idx = b.fb.Count()
	b.fb.AddSized(size, timestamp(rec.Time), rec.Key, rec.Value, frameHeaders(rec.Headers))
	return b, idx, p.queued(b, idx, s), nil
}

// timestamp returns t in Unix nanoseconds, or, for the zero Time, now.
func timestamp(t time.Time) int64 {
	var c callTime
	return c.of(t)
}

// callTime is the moment of one call that sends records, which every
// record sent without a Time gets. The clock is read once, for the first
// such record: SendBatch read it for each of its records, where the call
// promises them one moment, the call's.
type callTime struct {
	ns   int64
	read bool
}

// of returns t in Unix nanoseconds, or, for the zero Time, the call's
// moment.
func (c *callTime) of(t time.Time) int64 {
	if !t.IsZero() {
		return t.UnixNano()
	}
	if !c.read {
		c.ns, c.read = wallNow(), true
	}
	return c.ns
}

// wallNow is time.Now().UnixNano() with one clock read instead of two
// (time.Now reads the wall and the monotonic clock): the wall time of a
// recent base, plus the monotonic time since. Where reading a clock is
// slow (a virtual machine's kvm-clock, about 100ns), time.Now was a third
// of SendAsync's cost. The base is renewed every second, so the wall
// clock's steps and slews reach record timestamps within a second.
func wallNow() int64 {
	b := clockBase.Load()
	if b != nil {
		if d := time.Since(b.at); d < time.Second {
			return b.wall + int64(d)
		}
	}
	now := time.Now()
	clockBase.Store(&wallBase{at: now, wall: now.UnixNano()})
	return now.UnixNano()
}

type wallBase struct {
	at   time.Time // with its monotonic reading
	wall int64
}

var clockBase atomic.Pointer[wallBase]

// sender describes who sent records: the callback for the first of them
// (nil for none), whether a goroutine blocks waiting for them, and when it
// wants them acknowledged.
type sender struct {
	done     func(Position, error)
	waiting  bool
	onCommit bool
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
		err := p.closeErr
		p.mu.Unlock()
		return err
	}
	if ctx != nil && ctx.Err() != nil && full() {
		p.mu.Unlock()
		return ctx.Err()
	}
	if p.pending == nil {
		p.pending = p.newBatch(nil)
	}
	return nil
}

// queued finishes an add: the records from index idx of batch b are in,
// sent by s. It releases p.mu, which reserve took, and reports whether the
// caller took the write token to append b itself: it does when it will
// wait for the batch anyway, no write is in flight and no other sender
// waits. A waiting sender must call p.senders.Add(-1) once acknowledged.
func (p *partition) queued(b *batch, idx int, s sender) (lead bool) {
	if s.done != nil {
		b.addCallback(idx, s.done, s.onCommit)
	}
	if s.waiting {
		b.waiters++
		// Lead only alone: among concurrent senders, leading would
		// write one record per frame; the writer goroutine batches them.
		if p.senders.Add(1) == 1 && !p.writing {
			p.takePending()
			p.mu.Unlock()
			return true
		}
	}
	p.startWriter()
	if idx == 0 {
		p.work.Signal()
	}
	p.mu.Unlock()
	return false
}

// startWriter starts the partition's writer goroutine unless it runs: with
// the first record that a sender leaves to it, so that a partition only
// ever written by lone senders never has one. The caller holds p.mu.
func (p *partition) startWriter() {
	if !p.started {
		p.started = true
		p.loopDone = make(chan struct{})
		go p.writeLoop()
	}
}

// takePending takes the write token and the pending batch, leaving a new
// empty one. The caller holds p.mu.
func (p *partition) takePending() *batch {
	b := p.pending
	p.writing = true
	p.last = b
	p.cbsHint = max(p.cbsHint, len(b.cbs))
	if p.log.opts.Durability == Durable {
		b.owner, b.backlog = p, int64(b.fb.Len())
		p.unsynced += b.backlog
	}
	p.pending = p.newBatch(p.spare)
	p.spare = nil
	p.space.Broadcast()
	return b
}

// recycle takes back batch b, which a lone sender led and wrote itself
// and has read the outcome of (Producer.await), for the next pending
// batch, when nothing else can still use it: no other sender waits on it,
// no callback or note of it is left, no Flush took it, and no sync stage
// has it (Durable mode). One Send at a time then allocates no batch: the
// allocation and the garbage collection it caused were a sixth of a lone
// buffered Send's CPU (docs/PERFORMANCE.md, Zeros for the mapping).
func (p *partition) recycle(b *batch) {
	p.mu.Lock()
	if p.last == b && !b.pinned && !b.durable && b.waiters == 1 && b.err == nil && len(b.cbs) == 0 && len(b.notes) == 0 {
		p.last = nil // acknowledged: nothing for a Flush to wait for
		p.spareBatch = b
	}
	p.mu.Unlock()
}

// lastQueued returns the newest batch that may hold records not yet
// acknowledged, or nil. The caller holds p.mu.
func (p *partition) lastQueued() *batch {
	if p.pending != nil && p.pending.fb.Count() > 0 {
		return p.pending
	}
	return p.last
}

// writeLoop is the partition's writer goroutine: it appends the pending
// batch whenever no write is in flight, and a batch a leader handed over.
// It exits once the partition is closed, nothing is pending and no write
// is in flight.
func (p *partition) writeLoop() {
	defer close(p.loopDone)
	p.mu.Lock()
	regroup := 0 // senders released by the last write, expected back
	for {
		for !p.closed && p.handed == nil && (p.writing || p.pending.fb.Count() == 0 || p.syncBehind()) {
			p.work.Wait()
		}
		if b := p.handed; b != nil {
			// A leader's batch, with the write token: it goes first,
			// since the pending records were sent after it.
			p.handed = nil
			p.mu.Unlock()
			regroup = b.waiters
			p.write(b)
			p.mu.Lock()
			continue
		}
		if p.pending.fb.Count() == 0 && !p.writing {
			p.mu.Unlock()
			return
		}
		if p.writing { // closed, with a leader still writing
			p.work.Wait()
			continue
		}
		p.writing = true
		p.awaitRegroup(regroup)
		b := p.takePending()
		p.mu.Unlock()
		regroup = b.waiters
		p.write(b)
		p.mu.Lock()
	}
}

// lead appends batch b for the sender that leads it (it holds the write
// token and waits for b's acknowledgement on ctx). The sender must be able
// to give up when ctx ends, so lead never waits for the writer lock: if
// another process (or this Log's maintenance) has it, it hands b to the
// writer goroutine, which waits for the lock instead, and returns. inline
// says the sender waits for b's durability, so it runs the sync rounds
// itself (commit.go), for as long as ctx lasts.
func (p *partition) lead(ctx context.Context, b *batch, inline bool) (wrote bool) {
	base, end, err := p.appendBatch(b.fb, b.notes, false)
	if errors.Is(err, errWriterBusy) {
		p.mu.Lock()
		p.handed = b
		p.startWriter()
		p.work.Broadcast()
		p.mu.Unlock()
		return false
	}
	if p.committed(b, base, end, err, inline) {
		p.runSyncs(ctx, b)
	}
	return true
}

// write appends batch b for the writer goroutine, which holds its write
// token, waiting for the writer lock as long as it takes.
func (p *partition) write(b *batch) {
	base, end, err := p.appendBatch(b.fb, b.notes, true)
	p.committed(b, base, end, err, false)
}

// committed hands the outcome of batch b's append on: to the senders that
// wanted the commit, and in Durable mode to the sync stage, before the
// write token is released (so that Close, which waits for the token, finds
// b there). It returns true if the caller, a sender that waits for b's
// durability anyway (inline), must run the sync rounds (runSyncs).
func (p *partition) committed(b *batch, base int64, end logPos, err error, inline bool) (runSyncs bool) {
	b.base, b.end, b.err = base, end, err
	fb := b.fb
	b.fb = nil
	b.commit(p.id)
	run := p.log.opts.Durability == Durable && p.awaitDurable(b, inline)
	p.mu.Lock()
	p.writing = false
	if !p.poisoned.Load() {
		// After a failure that may leave the kernel reading the
		// builder's bytes, it must never be reused.
		p.spare = fb
	}
	if !b.durable {
		// Every callback ran. (In Durable mode the sync stage settles b,
		// maybe already, and recycles the slice then.)
		b.recycleCallbacks()
	}
	if p.closed || p.pending.fb.Count() > 0 {
		p.work.Broadcast()
	}
	p.mu.Unlock()
	return run
}

// syncBehind says that the frames taken for writing and not yet made
// durable (Durable mode) add up to four times MaxBatchBytes, so the writer
// waits for the sync stage before it takes the pending batch. Without the
// bound, a stream outran its fdatasyncs: each one covered all that was
// written during the last, grew longer for it, and the records waiting for
// it (with their callbacks) reached tens of MiB of heap. Bounded, a full
// pending batch makes the sender wait (reserve), as a slow write does. The
// caller holds p.mu.
func (p *partition) syncBehind() bool {
	return p.unsynced >= 4*int64(p.log.opts.MaxBatchBytes)
}

// synced takes a settled batch's bytes off the unsynced backlog, and wakes
// the writer if that ends its wait (syncBehind). Only then: the writer
// sleeps on p.work whenever nothing is pending, and a broadcast at every
// settle woke it for nothing once per fdatasync, a thread wake-up that
// held up the settling sender's return by 12-15 µs on two cores (four
// processes of one durable sender each: docs/PERFORMANCE.md).
func (p *partition) synced(n int64) {
	p.mu.Lock()
	behind := p.syncBehind()
	p.unsynced -= n
	if behind && !p.syncBehind() {
		p.work.Broadcast()
	}
	p.mu.Unlock()
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
// write more. So wait, briefly, until about n records are pending. The
// caller holds p.mu and the write token, so no sender leads meanwhile.
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

// commit publishes the append's outcome to the callbacks of records
// acknowledged at commit, then to the senders waiting for the commit. In
// modes other than Durable that is the acknowledgement of every record.
func (b *batch) commit(partition int) {
	durable := b.durable
	if !durable || b.onCommit > 0 {
		// (In Durable mode, without AckCommitted callbacks, a pass
		// over every record's callback would only move it in place.)
		b.cbs = b.callBack(partition, b.err, durable)
	}
	b.committed.fire()
}

// settle publishes the fdatasync's outcome (Durable mode) to the remaining
// callbacks, then to Send and Flush waiters: once Flush returns, every
// callback of its records ran.
func (b *batch) settle(partition int) {
	err := b.err
	if err == nil {
		err = b.syncErr
	}
	b.cbs = b.callBack(partition, err, false)
	b.synced.fire()
	if b.owner != nil {
		b.owner.synced(b.backlog)
	}
}

// spareCallbacks holds the callback slices of settled batches. A pool
// rather than one spare per partition: in Durable mode several batches
// wait for one fdatasync and are settled together.
var spareCallbacks sync.Pool

// recycleCallbacks gives the callback slice of batch b, whose callbacks
// all ran (callBack cleared them), to a later batch.
func (b *batch) recycleCallbacks() {
	if cap(b.cbs) > 0 && len(b.cbs) == 0 {
		cbs := b.cbs
		spareCallbacks.Put(&cbs)
	}
	b.cbs = nil
}

// callBack calls the callbacks with err (or their positions), except, with
// keepDurable, those waiting for durability, which it returns.
func (b *batch) callBack(partition int, err error, keepDurable bool) []batchCallback {
	rest := b.cbs[:0]
	for _, c := range b.cbs {
		switch {
		case keepDurable && !c.onCommit:
			rest = append(rest, c)
		case err != nil:
			for range c.n {
				c.fn(Position{}, err)
			}
		default:
			for i := range c.n {
				c.fn(Position{Partition: partition, Offset: b.base + int64(c.idx+i)}, nil)
			}
		}
	}
	clear(b.cbs[len(rest):])
	return rest
}
