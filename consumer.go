package runnel

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/tracefmt"
)

// Consumer reads records from a topic's partitions. One goroutine polls
// it (as with Kafka's consumer): Poll, TryPoll, Records, Seek, Pause,
// Resume, Paused, Position, Partitions and Close are for that goroutine
// (OnAssigned and OnRevoked run on it). Commit, CommitOffsets,
// MarkRecords, CommitMarked and DeletedBelow may be called from any
// goroutine, also while Poll runs: a pool of workers commits what it
// finished.
//
// Only committed records whose checksum matches are delivered, in offset
// order per partition. Records alias the consumer's buffers: see Record.
type Consumer struct {
	log   *Log
	topic *topic
	opts  ConsumerOptions // validated, every default filled in

	// The partitions read. Only the polling goroutine changes them, under
	// mu, so it reads them without; other goroutines read them under mu.
	parts []*consumedPart
	byID  []*consumedPart // by partition number; nil where not read

	recs  []Record // Poll's result, reused
	rr    int      // partition Poll starts with, rotated for fairness
	moves uint64   // Seeks so far: Records notices one made inside its loop
	// unread says the partitions may hold what the last look at them
	// (fetch) did not see, besides records appended since, which their
	// sequences tell: it found records or an error, a reader waits on a
	// writer, or partitions were taken, given up or moved since.
	unread bool
	// lookedAt is when the last look began: see relookEvery.
	lookedAt time.Time

	// Sleeping: each read (not paused) partition's partition.meta
	// mapping, the words a sleeping Poll waits on (each one's append
	// sequence, then in a group the group's word, or the topic's published
	// partition count for a consumer that follows growth) and the value
	// each had before the last read; cancel wakes a sleep when Poll's ctx
	// ends or the Log closes.
	metas  []*metaMap
	words  []*atomic.Uint32
	expect []uint32
	cancel atomic.Uint32
	// hint is the topic's published partition count, watched by a
	// Consumer of every partition outside a group (consumer_grow.go); nil
	// for others, or where it cannot be mapped.
	hint *partsHint

	// mu guards each part's progress and, in a group, the membership's
	// ownership and commit state, so that commits and marks may come from
	// any goroutine.
	mu      sync.Mutex
	closing bool           // Close has begun
	closed  atomic.Bool    // set under mu
	syncers sync.WaitGroup // commits syncing outside mu; Close waits for them

	inRevoked atomic.Bool // OnRevoked runs, inside a Poll (or Close) using the files

	g *groupState // nil unless the consumer is a group member
}

// consumedPart is one partition a Consumer reads.
type consumedPart struct {
	id   int
	r    *partReader
	meta *metaMap
	// err is sticky until a Seek: the reader has no position (an
	// out-of-range start, or a rewind that failed).
	err     error
	movedAt uint64 // Consumer.moves at its last Seek
	// paused: not read until Resume (consumer_pause.go). Set under
	// Consumer.mu, for Paused on other goroutines.
	paused bool

	prog progress // guarded by Consumer.mu
}

// Consumer returns a consumer of topic positioned as opts say. A group
// member's join may wait for another process's admin call on the topic or
// the group; ConsumerContext bounds that wait.
func (l *Log) Consumer(topic string, opts *ConsumerOptions) (*Consumer, error) {
	return l.ConsumerContext(context.Background(), topic, opts)
}

// ConsumerContext is Consumer, waiting for another process's admin call
// (a first member creating the group's offsets file waits for the topic's
// AlterTopic or DeleteTopic; a joiner that finds every member slot taken,
// for the group's DeleteGroup or DeleteGroupOffsets) only until ctx ends;
// then it returns an error wrapping ctx.Err() and joins nothing.
func (l *Log) ConsumerContext(ctx context.Context, topic string, opts *ConsumerOptions) (*Consumer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	c := &Consumer{log: l, topic: t, opts: o, byID: make([]*consumedPart, len(t.parts()))}
	l.addConsumer(c) // so that Log.Close wakes its Poll
	if o.Group != "" {
		if err := c.joinGroup(ctx); err != nil {
			l.removeConsumer(c)
			return nil, l.orGone(t, err)
		}
		return c, nil
	}
	ids := o.Partitions
	if ids == nil {
		c.hint = l.watchGrowth(t) // followGrowth learns of growth elsewhere at once
		for i := range t.parts() {
			ids = append(ids, i)
		}
	}
	for _, id := range ids {
		if _, err := l.partitionOf(t, id); err != nil || id < len(c.byID) && c.byID[id] != nil {
			c.Close()
			return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions (or listed twice)", ErrInvalidArgument, id, topic, len(t.parts()))
		}
		part, err := c.addPart(id)
		if err == nil {
			err = c.position(part, o.Start, true)
		}
		if err != nil {
			c.Close()
			return nil, l.orGone(t, err)
		}
	}
	return c, nil
}

// addPart starts reading partition id (not positioned yet).
func (c *Consumer) addPart(id int) (*consumedPart, error) {
	// A member may take a partition long after it joined: the topic may
	// be gone, or be another by now (openShared checks).
	p, err := c.log.partitionOf(c.topic, id)
	if err != nil {
		return nil, err
	}
	m, err := p.openShared()
	if err != nil {
		return nil, err
	}
	m.detach() // a descriptor only once it sleeps
	recorded, err := readLogStart(p.dir)
	if err != nil {
		m.close()
		return nil, err
	}
	// After a reboot the word starts from what the disk held: bring it
	// to the file's value before reading by it.
	m.raiseLogStart(recorded)
	r := newPartReader(p, c.opts.MaxPollBytes)
	r.seq = m.seq()
	r.startWord = m.logStart()
	r.knownStart.Store(recorded)
	if m.private {
		// No other process's store reaches a private copy: the reader
		// reads the file before each read instead (a private mapping is
		// polled anyway).
		r.startWord, r.startInFile = nil, true
	}
	r.stopAtGaps = c.opts.StopAtGaps
	// A reader that retention overtakes mid-read resets to the new start
	// when the policy says so, instead of failing.
	r.resetOutOfRange = c.opts.OutOfRange == OutOfRangeEarliest
	part := &consumedPart{id: id, r: r, meta: m}
	part.prog.reset(noPosition)
	c.mu.Lock()
	c.parts = append(c.parts, part)
	c.growByID(id + 1) // the topic may have grown
	c.byID[id] = part
	c.mu.Unlock()
	c.rebuildWords()
	return part, nil
}

// growByID makes room in c.byID for partitions up to n, which the topic
// has now, so that every partition number below n indexes it, as below
// the count the consumer began with. The caller holds c.mu.
func (c *Consumer) growByID(n int) {
	if n > len(c.byID) {
		c.byID = append(c.byID, make([]*consumedPart, n-len(c.byID))...)
	}
}

// removePart stops reading partition id.
func (c *Consumer) removePart(id int) error {
	part := c.byID[id]
	if part == nil {
		return nil
	}
	c.mu.Lock()
	c.parts = slices.DeleteFunc(c.parts, func(q *consumedPart) bool { return q == part })
	c.byID[id] = nil
	c.mu.Unlock()
	part.r.close()
	err := part.meta.close()
	c.rebuildWords()
	return err
}

// position moves part to sp and starts its progress over there. With
// policy, an offset that is not stored is handled as
// ConsumerOptions.OutOfRange says (a start, not an explicit Seek). An
// error stays with the partition, for Poll to return, until a Seek.
func (c *Consumer) position(part *consumedPart, sp StartPosition, policy bool) error {
	r := part.r
	r.byTime = false
	c.unread = true
	err := r.start(sp)
	if policy && errors.Is(err, ErrOutOfRange) {
		switch c.opts.OutOfRange {
		case OutOfRangeEarliest:
			err = r.start(Earliest)
		case OutOfRangeLatest:
			err = r.start(Latest)
		}
	}
	part.err = err
	c.mu.Lock()
	if err != nil || r.byTime {
		// No position yet: nothing of this partition can be committed.
		part.prog.reset(noPosition)
	} else {
		part.prog.reset(r.next)
	}
	c.mu.Unlock()
	return err
}

// rebuildWords lists the words a sleeping Poll waits on: each read
// partition's append sequence (a paused one's appends wake no one), then
// the group's word.
func (c *Consumer) rebuildWords() {
	c.metas, c.words = c.metas[:0], c.words[:0]
	for _, part := range c.parts {
		if part.paused {
			continue
		}
		c.metas = append(c.metas, part.meta)
		c.words = append(c.words, part.meta.seq())
	}
	if c.g != nil {
		c.words = append(c.words, c.g.m.off.gen())
	} else if c.hint != nil {
		c.words = append(c.words, c.hint.word)
	}
	c.expect = slices.Grow(c.expect[:0], len(c.words))[:len(c.words)]
	c.unread = true // the expected values are no longer the words'
}

// Poll waits until at least one record is available, then returns the
// records available now: at most MaxPollRecords, and about MaxPollBytes
// per partition. It returns ctx.Err() when ctx ends first. The returned
// slice and the bytes its records point to stay valid until the next Poll
// or Close. Every record returned counts as handed to the application
// (see Commit). Poll returns records or an error, never both: a
// partition's error met after other records were read is returned by the
// next Poll, as Kafka's consumer defers it.
//
// Poll sleeps in the kernel until a producer in any process appends to one
// of its partitions, and reads them again at least once a second anyway:
// a writer killed between committing a record and announcing it wakes no
// one. It waits only at the end of the data: when it meets
// bytes past the committed data that no live writer is writing (a writer
// died mid-frame), it takes the writer lock, waiting for it at most until
// ctx ends, and repairs them, and damage (a bad frame or a zeroed page
// before committed data, a sealed segment cut short or missing, committed
// records gone) is returned as a *CorruptError naming the file, byte and
// offsets. A partition of a directory this process may only read is
// watched by polling.
//
// In a group, Poll is also where the member takes and gives up partitions
// (calling OnAssigned and OnRevoked), commits automatically, and applies
// forced resets; while it waits it checks the group every
// GroupCheckInterval.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	recs, err := c.fetch(ctx)
	c.handOver(recs)
	tracePoint(tracefmt.PollReturn)
	return recs, err
}

// TryPoll is Poll without the wait: it returns no records when none are
// available, and, like Poll, a *CorruptError at damage.
func (c *Consumer) TryPoll() ([]Record, error) {
	recs, err := c.fetch(nil)
	c.handOver(recs)
	return recs, err
}

// fetch is Poll (TryPoll with a nil ctx) without handing the records over.
//
// It reads the partitions only when they may hold what its last look did
// not see (unread, or an append moved a partition's sequence since):
// otherwise a group member's wake-up for its group check, or a consumer
// polled again and again with nothing appended (TryPoll in a loop, Poll
// with a short deadline), would read every partition each time, and list
// the directory of every empty one. It looks anyway once relookEvery has
// passed since the last look, and a Poll waits no longer than that.
func (c *Consumer) fetch(ctx context.Context) ([]Record, error) {
	defer c.pollReturns(c.pollBegins()) // MaxPollInterval: consumer_maxpoll.go
	for {
		if err := c.groupTick(ctx); err != nil {
			return nil, c.log.orGone(c.topic, err)
		}
		n := len(c.metas)
		if c.g != nil {
			// What the last check saw, not the word now: a change in
			// between must end the sleep at once.
			c.expect[n] = c.g.seenGen
		}
		var timeout time.Duration
		if c.unread || c.appended() || time.Since(c.lookedAt) >= relookEvery {
			recs, recheck, err := c.look(ctx)
			tracePoint(tracefmt.LookDone)
			if err != nil && c.shut() {
				// Whatever the read met on the files Close took away.
				return nil, ErrClosed
			}
			if err != nil || len(recs) > 0 || ctx == nil {
				return recs, err
			}
			timeout = recheck
		} else if c.shut() {
			return nil, ErrClosed
		} else if ctx == nil {
			return nil, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Not past the next look due: what a writer killed before its
		// publish committed wakes no one (relookEvery).
		if relook := max(relookEvery-time.Since(c.lookedAt), time.Millisecond); timeout == 0 || relook < timeout {
			timeout = relook
		}
		if c.g != nil {
			if next := c.g.nextCheck(c.opts.GroupCheckInterval); timeout == 0 || next < timeout {
				timeout = next
			}
		}
		c.sleep(ctx, timeout)
	}
}

// look reads the partitions, and when they have nothing judges the
// readers that stopped short (unstick: a nil ctx is a TryPoll's), which
// may call for another look after recheck. It leaves unread set unless
// the partitions have nothing more until an append.
func (c *Consumer) look(ctx context.Context) (recs []Record, recheck time.Duration, err error) {
	c.lookedAt = time.Now()
	for i := range c.lookWords() {
		c.expect[i] = c.words[i].Load()
	}
	c.unread = true // more may be there: a record limit, a window, an error
	if recs, err = c.poll(); err != nil || len(recs) > 0 {
		return recs, 0, err
	}
	if ctx == nil {
		ctx = context.Background()
	} else if ctx.Err() != nil {
		return nil, 0, nil // fetch returns ctx's error
	}
	if recheck, err = c.unstick(ctx); err != nil {
		return nil, 0, c.orDeleted(err)
	}
	c.unread = recheck > 0
	return nil, recheck, nil
}

// relookEvery bounds how long a consumer, polled again and again or
// asleep in one Poll, goes without reading its partitions when no
// sequence moved. A writer killed between its commit byte and its publish
// bumps no sequence and wakes no one: its committed frame would wait for
// the next append, which may never come, and a frame it left unfinished
// for a look to repair. Once a second costs an idle member checking its
// group 100 times a second 1% of a look each time.
const relookEvery = time.Second

// appended reports whether a partition's append sequence, or the topic's
// published partition count, moved since the last look.
func (c *Consumer) appended() bool {
	for i := range c.lookWords() {
		if c.words[i].Load() != c.expect[i] {
			return true
		}
	}
	return false
}

// lookWords is how many of c.words a look reads: the partitions' append
// sequences and the published partition count, but not the group's word,
// which the group check reads.
func (c *Consumer) lookWords() int {
	if c.hint != nil {
		return len(c.metas) + 1
	}
	return len(c.metas)
}

// shut reports whether the consumer or its Log is closed (abandoned
// with its Log, for a group member): its calls return ErrClosed.
func (c *Consumer) shut() bool { return c.closed.Load() || c.log.closed.Load() }

// testHookLook, if set, runs as Poll reads its partitions.
var testHookLook func()

// poll reads what is available now, up to MaxPollRecords, starting with
// the next partition in turn.
func (c *Consumer) poll() ([]Record, error) {
	if c.shut() {
		return nil, ErrClosed
	}
	if testHookLook != nil {
		testHookLook()
	}
	c.recs = c.recs[:0]
	// A deleted topic first: a reader's error may come from the delete.
	if err := c.checkDeleted(); err != nil {
		return nil, err
	}
	if err := c.followGrowth(); err != nil {
		return nil, err
	}
	for _, part := range c.parts {
		if part.err != nil && !part.paused {
			return nil, part.err
		}
	}
	n := len(c.parts)
	for i := 0; i < n && len(c.recs) < c.opts.MaxPollRecords; i++ {
		next := (c.rr + i) % n
		if part := c.parts[next]; part.paused {
			// Not read until resumed, maybe never (the Kafka server's
			// members): holding its segment open would keep the space
			// of one retention removes meanwhile.
			part.r.letGo()
			continue
		}
		if err := c.fillCounted(c.parts[next].r, c.opts.MaxPollRecords-len(c.recs)); err != nil {
			if gone := c.deletedErr(err); gone != nil {
				return nil, gone
			}
			if len(c.recs) > 0 {
				// The records alone: an application that drops a batch
				// that comes with an error, as Go code does, would have
				// them committed unprocessed (auto-commit, Close). The
				// next look starts with this partition, and meets the
				// error again.
				c.rr = next
				return c.recs, nil
			}
			return c.recs, err
		}
	}
	c.rr++
	return c.recs, nil
}

// handOver records that recs, a whole batch, were handed to the
// application.
func (c *Consumer) handOver(recs []Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	for i := range recs {
		if part := c.byID[recs[i].Partition]; part != nil {
			part.prog.hand(recs[i].Offset)
		}
	}
	c.settle()
}

// settle brings each partition's progress up to its reader once every
// record fetched was handed over (or put back): records the reader passed
// without returning them — older than a start time, removed by retention
// — count as skipped. The caller holds c.mu.
func (c *Consumer) settle() {
	for _, part := range c.parts {
		if part.err == nil && !part.r.byTime {
			part.prog.skipTo(part.r.next)
		}
	}
}

// checkDeleted fails with ErrTopicNotFound once the topic was deleted,
// and with a *CorruptError at a partition marked deleted by damage
// (strayMark). deletedErr returns the deleted topic's error that explains
// err, met reading the partitions' files, or nil when the topic is still
// there. A delete sets each partition's flag before it moves the files
// away, so a file that vanished under the read says which happened;
// orGone tells a topic whose flag went unseen (its directory already
// replaced).
func (c *Consumer) deletedErr(err error) error {
	if derr := c.checkDeleted(); errors.Is(derr, ErrTopicNotFound) {
		return derr
	}
	if gone := c.log.orGone(c.topic, err); errors.Is(gone, ErrTopicNotFound) {
		return gone
	}
	return nil
}

// orDeleted is err, or the deleted topic's error that explains it.
func (c *Consumer) orDeleted(err error) error {
	if err == nil {
		return nil
	}
	if gone := c.deletedErr(err); gone != nil {
		return gone
	}
	return err
}

func (c *Consumer) checkDeleted() error {
	for _, part := range c.parts {
		if part.meta.deleted() {
			// Unless no DeleteTopic set the word: damage, reported at
			// each poll until Repair clears it.
			if err := c.log.strayMark(c.topic, part.id); err != nil {
				return err
			}
			c.log.finishDeadDelete(c.topic)
			return fmt.Errorf("%w: %s (partition %d) was deleted", ErrTopicNotFound, c.topic.name, part.id)
		}
	}
	return nil
}

// Records iterates over records as they arrive, waiting for new ones,
// until ctx ends, the consumer closes or an error occurs; the error (or
// ctx.Err()) is the last pair yielded. Each record is valid only during its
// iteration step, and counts as handed to the application once it is
// yielded: a Commit inside the loop covers the records yielded so far,
// never those fetched behind them. When the loop stops early, the records
// fetched but not yielded are not lost: each partition's position goes
// back to the first of them. A Seek or Pause inside the loop takes effect
// at once, and so does a group member's expiry (MaxPollInterval): the
// rest of the batch, from partitions that are other members' by then, is
// not handed over, and the next step joins the group again.
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			recs, err := c.fetch(ctx)
			moves := c.moves
		batch:
			for i, r := range recs {
				if c.moves != moves {
					c.rewind(recs[i:], moves)
					break
				}
				switch c.hand(r) {
				case handClosed:
					yield(Record{}, ErrClosed)
					return
				case handExpired:
					// Its partitions are other members' now: the next
					// fetch joins again and reads them from the group's
					// commits, as Poll's batch after an expiry.
					break batch
				}
				if !yield(r, nil) {
					c.rewind(recs[i+1:], moves)
					return
				}
			}
			c.mu.Lock()
			if !c.closed.Load() {
				c.settle()
			}
			c.mu.Unlock()
			if err != nil {
				yield(Record{}, err)
				return
			}
		}
	}
}

// What hand did with a record.
const (
	handed      = iota
	handClosed  // the consumer closed
	handExpired // the member left its group for not polling (MaxPollInterval) since the fetch
)

// hand records that rec is being handed to the application, unless the
// consumer closed or its member expired.
func (c *Consumer) hand(rec Record) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return handClosed
	}
	if c.g != nil && c.g.clock.expired {
		return handExpired
	}
	if part := c.byID[rec.Partition]; part != nil {
		part.prog.hand(rec.Offset)
	}
	return handed
}

// rewind moves each partition's position back to its first record in
// rest, records that were fetched but not handed to the application,
// unless a Seek since the fetch (moves) moved it already. An error stays
// with the partition, for the next Poll to return.
func (c *Consumer) rewind(rest []Record, moves uint64) {
	if c.closed.Load() {
		return
	}
	var done []int
	for _, rec := range rest {
		if slices.Contains(done, rec.Partition) {
			continue
		}
		done = append(done, rec.Partition)
		if part := c.byID[rec.Partition]; part != nil && part.movedAt <= moves {
			part.r.byTime = false
			if err := part.r.seek(rec.Offset); err != nil {
				part.err = err
			}
		}
	}
}

// Seek moves partition's read position to the start position sp. In a
// group the partition must be owned by this member. Seek clears the error
// of a partition whose start was out of range; marks of the partition's
// records not yet committed are dropped.
func (c *Consumer) Seek(partition int, sp StartPosition) error {
	part, err := c.readPart(partition)
	if err != nil {
		return err
	}
	c.moves++
	part.movedAt = c.moves
	return c.position(part, sp, false)
}

// readPart is the consumer's partition, or the error of a call (Seek,
// Pause, Resume) naming one it does not read: in a group, ErrNotOwner.
func (c *Consumer) readPart(partition int) (*consumedPart, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if partition >= 0 && partition < len(c.byID) && c.byID[partition] != nil {
		return c.byID[partition], nil
	}
	if c.g != nil {
		return nil, c.g.m.notOwned(partition)
	}
	return nil, fmt.Errorf("%w: partition %d is not read by this consumer", ErrInvalidArgument, partition)
}

// Position returns the next offset the consumer will deliver from
// partition — after the last record handed to the application — or -1 if
// it does not read it.
func (c *Consumer) Position(partition int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partition < 0 || partition >= len(c.byID) || c.byID[partition] == nil {
		return -1
	}
	part := c.byID[partition]
	if part.prog.next != noPosition {
		return part.prog.next
	}
	return part.r.next // still looking for its start time
}

// DeletedBelow returns the offset below which DeleteRecords, in any
// process, deleted partition's records, as far as the consumer knows: from
// the moment the call returned (one atomic load; a read of the log-start
// file once the log start word moved past what the consumer knew, to
// check it, at every call while damage holds it ahead of the file, and
// for a partition.meta this process may only copy). Records the
// consumer returned below it were deleted since: code that keeps returned
// records to hand them on later (the Kafka server's read-ahead) drops
// them. It is 0 for a partition the consumer does not read or no call
// deleted records of, and does not count what retention removed.
func (c *Consumer) DeletedBelow(partition int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partition < 0 || partition >= len(c.byID) || c.byID[partition] == nil {
		return 0
	}
	r := c.byID[partition].r
	start, err := r.recordedStart()
	if err != nil {
		return r.knownStart.Load() // the next read reports the damage
	}
	return start
}

// Partitions lists the partitions the consumer reads: in a group, those
// the member owns now. Paused partitions are among them.
func (c *Consumer) Partitions() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.g != nil && c.g.clock.expired {
		return []int{} // other members' now (MaxPollInterval)
	}
	ids := make([]int, len(c.parts))
	for i, part := range c.parts {
		ids[i] = part.id
	}
	slices.Sort(ids)
	return ids
}

// Abandon closes a group member as its process's death would end its
// membership: it leaves the group with no commit and no OnRevoked, and
// its partitions keep their ConsumerOptions.Lease, so that the other
// members take them only once the lease has run. It is for a member
// whose partitions a reader outside runnel may still read: a Kafka
// server shutting down abandons its Kafka members, whose clients fetch
// on from the next server until their next heartbeat. Then it closes
// the consumer as Close does. Without Group it is Close.
//
// Called from OnRevoked, it keeps the lease on the partitions being
// revoked too (for a member whose outside reader may still read them),
// and leaves the Consumer's files to a later Close or Abandon: the Poll
// that called OnRevoked still uses them, and returns ErrClosed.
func (c *Consumer) Abandon() error {
	err := c.abandon(true)
	if c.inRevoked.Load() {
		return err
	}
	return errors.Join(err, c.Close())
}

// Close releases the consumer's files. A group member first gives up its
// partitions as in a rebalance (automatic commit, then OnRevoked) and
// leaves the group, so the others take its partitions over at once (also
// with a Lease) and, with auto-commit, without reading any record twice.
// Commits that other goroutines have under way finish first; later ones
// return ErrClosed. Close is idempotent.
//
// Close never waits for another process: it releases locks but takes
// none, and its commits are single writes (fdatasync'd in a Durable Log).
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	c.log.removeConsumer(c)
	var errs []error
	if c.g != nil {
		errs = append(errs, c.leaveGroup())
	} else {
		c.mu.Lock()
		c.closed.Store(true)
		c.mu.Unlock()
	}
	c.mu.Lock()
	parts := c.parts
	c.parts = nil
	clear(c.byID)
	c.mu.Unlock()
	for _, part := range parts {
		part.r.close()
		errs = append(errs, part.meta.close())
	}
	c.metas, c.words, c.hint = nil, nil, nil
	return errors.Join(errs...)
}
