package runnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"
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

func (sp StartPosition) String() string {
	switch sp.kind {
	case startLatest:
		return "latest"
	case startOffset:
		return fmt.Sprintf("offset %d", sp.offset)
	case startTime:
		return "time " + sp.time.Format(time.RFC3339Nano)
	}
	return "earliest"
}

// ConsumerOptions configure a Consumer. A nil *ConsumerOptions means the
// defaults.
type ConsumerOptions struct {
	// Partitions to read. Default: all of the topic's partitions. Must be
	// nil with Group: the group assigns partitions.
	Partitions []int

	// Start is where each partition is read from. Default Earliest. In a
	// group, it applies to partitions that have no committed offset.
	Start StartPosition

	// MaxPollBytes bounds how many bytes Poll reads from one partition in
	// one call. Default 1 MiB; at least 4 KiB. A frame larger than this is
	// still read whole.
	MaxPollBytes int

	// SpinWait makes Poll spin for up to this long, watching for appends,
	// before it sleeps: lower wake-up latency for a busy core. Default 0:
	// sleep at once (in the kernel, woken by the appending process).
	SpinWait time.Duration

	// Group makes the consumer a member of this consumer group: the
	// group's live members, in this process and others, share the topic's
	// partitions, each read by one member at a time, and the group's
	// committed offsets (groups/<Group>/<topic>.offsets) say where a
	// member that takes a partition over starts. Default "": no group.
	// See Commit, OnAssigned and OnRevoked.
	Group string

	// MemberName labels this member in DescribeGroup (at most 39 bytes
	// are kept). Default "<hostname>/<pid>".
	MemberName string

	// DisableAutoCommit stops the member from committing by itself.
	// Default false: every AutoCommitInterval, before a partition is
	// released, and at Close, Poll commits the position after the records
	// it returned, so what the application was given counts as processed
	// once it polls again (at-least-once delivery, as in Kafka). With
	// auto-commit off, the application commits with Commit or
	// CommitOffsets, and OnRevoked is its last chance to do so for a
	// partition the member gives up.
	DisableAutoCommit bool

	// AutoCommitInterval is the period of automatic commits. Default 5s.
	AutoCommitInterval time.Duration

	// OutOfRange says what happens when a partition's committed offset
	// (or Start, for one without a commit) is no longer stored. Default
	// OutOfRangeFail.
	OutOfRange OutOfRange

	// GroupCheckInterval is how often Poll checks, while it waits, whether
	// a member died (its partitions need a new owner). It bounds the time
	// a dead member's partitions stay unread. Joins, clean leaves and
	// releases wake the other members at once. Default 10ms.
	GroupCheckInterval time.Duration

	// OnAssigned, if set, is called inside Poll, on the polling goroutine,
	// with the partitions the member has just taken, in increasing order,
	// after their read positions were set.
	OnAssigned func(c *Consumer, partitions []int)

	// OnRevoked, if set, is called inside Poll (and Close) with the
	// partitions the member is about to give up, after the automatic
	// commit, while it still owns them: it may still Commit or
	// CommitOffsets them.
	OnRevoked func(c *Consumer, partitions []int)
}

const (
	defaultMaxPollBytes       = 1 << 20
	defaultAutoCommitInterval = 5 * time.Second
	defaultGroupCheckInterval = 10 * time.Millisecond
)

// Consumer reads records from a topic's partitions. It is not safe for
// concurrent use: one goroutine polls it (as with Kafka's consumer).
//
// Only committed records whose checksum matches are delivered, in offset
// order per partition. Records alias the consumer's buffers: see Record.
type Consumer struct {
	log     *Log
	topic   *topic
	readers []*partReader
	rerr    []error // by reader: a sticky error that Seek clears (groups)
	recs    []Record
	rr      int // partition Poll starts with, rotated for fairness
	closed  bool
	spin    time.Duration
	maxPoll int
	start   StartPosition

	// Sleeping: each reader's partition.meta mapping, its append-sequence
	// word (then, in a group, the group's word) and the value seen before
	// the last read; cancel wakes a sleep when Poll's ctx ends.
	metas  []*metaMap
	words  []*atomic.Uint32
	expect []uint32
	cancel atomic.Uint32

	g *groupState // nil unless the consumer is a group member
}

// groupState is a Consumer's side of its group membership.
type groupState struct {
	m              *member
	autoCommit     bool
	commitInterval time.Duration
	checkInterval  time.Duration
	outOfRange     OutOfRange
	onAssigned     func(*Consumer, []int)
	onRevoked      func(*Consumer, []int)
	durability     Durability
	syncInterval   time.Duration

	seenGen    uint32 // the group word at the last check
	seenReset  uint32 // the reset epoch whose requests were applied
	lastCheck  time.Time
	lastCommit time.Time
	lastSync   time.Time
	dirty      bool // Periodic: commits written since the last sync
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
	switch {
	case o.MaxPollBytes < 0:
		return nil, fmt.Errorf("%w: negative MaxPollBytes", ErrInvalidArgument)
	case o.AutoCommitInterval < 0 || o.GroupCheckInterval < 0:
		return nil, fmt.Errorf("%w: negative interval", ErrInvalidArgument)
	case o.OutOfRange < OutOfRangeFail || o.OutOfRange > OutOfRangeLatest:
		return nil, fmt.Errorf("%w: OutOfRange %d", ErrInvalidArgument, int(o.OutOfRange))
	}
	c := &Consumer{log: l, topic: t, spin: o.SpinWait, maxPoll: o.MaxPollBytes, start: o.Start}
	l.addConsumer(c) // so that Log.Close wakes its Poll
	if o.Group != "" {
		gc, err := c.joinGroup(o)
		if err != nil {
			l.removeConsumer(c)
		}
		return gc, err
	}
	parts := o.Partitions
	if parts == nil {
		for i := range t.parts {
			parts = append(parts, i)
		}
	}
	seen := map[int]bool{}
	for _, id := range parts {
		if id < 0 || id >= len(t.parts) || seen[id] {
			c.Close()
			return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions (or listed twice)", ErrInvalidArgument, id, topic, len(t.parts))
		}
		seen[id] = true
		r, err := c.addReader(id)
		if err != nil {
			c.Close()
			return nil, err
		}
		if err := r.start(o.Start); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// joinGroup makes c a member of o.Group. It takes no partitions yet: the
// first Poll does.
func (c *Consumer) joinGroup(o ConsumerOptions) (*Consumer, error) {
	if o.Partitions != nil {
		return nil, fmt.Errorf("%w: Partitions must be nil with Group (the group assigns them)", ErrInvalidArgument)
	}
	if err := validateName("group", o.Group); err != nil {
		return nil, err
	}
	name := o.MemberName
	if name == "" {
		name = defaultMemberName()
	}
	m, err := joinGroup(c.log, c.topic, o.Group, name)
	if err != nil {
		return nil, err
	}
	c.g = &groupState{
		m:              m,
		autoCommit:     !o.DisableAutoCommit,
		commitInterval: cmp.Or(o.AutoCommitInterval, defaultAutoCommitInterval),
		checkInterval:  cmp.Or(o.GroupCheckInterval, defaultGroupCheckInterval),
		outOfRange:     o.OutOfRange,
		onAssigned:     o.OnAssigned,
		onRevoked:      o.OnRevoked,
		durability:     c.log.opts.Durability,
		syncInterval:   c.log.opts.SyncInterval,
		seenGen:        m.off.gen().Load(),
		seenReset:      m.off.resetEpoch().Load(),
		lastCommit:     time.Now(),
		lastSync:       time.Now(),
	}
	c.rebuildWords()
	return c, nil
}

// addReader starts reading partition id (not positioned yet).
func (c *Consumer) addReader(id int) (*partReader, error) {
	p := c.topic.parts[id]
	m, err := openMeta(p.dir)
	if err != nil {
		return nil, err
	}
	r := newPartReader(p, c.maxPoll)
	// A reader that retention overtakes mid-read resets to the new start
	// when the policy says so, instead of failing.
	r.resetOutOfRange = c.g != nil && c.g.outOfRange == OutOfRangeEarliest
	c.readers = append(c.readers, r)
	c.rerr = append(c.rerr, nil)
	c.metas = append(c.metas, m)
	c.rebuildWords()
	return r, nil
}

// removeReader stops reading partition id.
func (c *Consumer) removeReader(id int) error {
	i := slices.IndexFunc(c.readers, func(r *partReader) bool { return r.p.id == id })
	if i < 0 {
		return nil
	}
	c.readers[i].close()
	err := c.metas[i].close()
	c.readers = slices.Delete(c.readers, i, i+1)
	c.rerr = slices.Delete(c.rerr, i, i+1)
	c.metas = slices.Delete(c.metas, i, i+1)
	c.rebuildWords()
	return err
}

// rebuildWords lists the words a sleeping Poll waits on: each reader's
// append sequence, then the group's word.
func (c *Consumer) rebuildWords() {
	c.words = c.words[:0]
	for _, m := range c.metas {
		c.words = append(c.words, m.seq())
	}
	if c.g != nil {
		c.words = append(c.words, c.g.m.off.gen())
	}
	c.expect = slices.Grow(c.expect[:0], len(c.words))[:len(c.words)]
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
//
// In a group, Poll is also where the member takes and gives up partitions
// (calling OnAssigned and OnRevoked), commits automatically, and applies
// forced resets; while it waits it checks the group every
// GroupCheckInterval.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
		if err := c.groupTick(); err != nil {
			return nil, err
		}
		n := len(c.readers)
		for i := range n {
			c.expect[i] = c.words[i].Load()
		}
		if c.g != nil {
			// What the last check saw, not the word now: a change in
			// between must end the sleep at once.
			c.expect[n] = c.g.seenGen
		}
		recs, err := c.poll()
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
		if c.g != nil {
			next := max(c.g.checkInterval-time.Since(c.g.lastCheck), 50*time.Microsecond)
			if timeout == 0 || next < timeout {
				timeout = next
			}
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
	for i, r := range c.readers {
		if r.stuck == nil || c.rerr[i] != nil {
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

// sleep waits until a partition's append sequence (or the group's word)
// moves, ctx ends, or timeout passes (0: no timeout).
func (c *Consumer) sleep(ctx context.Context, timeout time.Duration) {
	if c.spin > 0 && c.spinFor(c.spin) {
		return
	}
	for _, m := range c.metas {
		m.sleepers().Add(1)
	}
	priv := c.cancel.Load()
	// Log.Close sets closed before it bumps cancel: either this sees it
	// closed, or the wait sees cancel moved.
	if c.log.closed.Load() {
		priv++ // the wait returns at once
	}
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
	if err := c.groupTick(); err != nil {
		return nil, err
	}
	return c.poll()
}

func (c *Consumer) poll() ([]Record, error) {
	if c.closed || c.log.closed.Load() {
		return nil, ErrClosed
	}
	c.recs = c.recs[:0]
	for _, err := range c.rerr {
		if err != nil {
			return nil, err
		}
	}
	for i, m := range c.metas {
		if m.deleted() {
			return nil, fmt.Errorf("%w: %s (partition %d) was deleted", ErrTopicNotFound, c.topic.name, c.readers[i].p.id)
		}
	}
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
// iteration step. When the loop stops early, the records fetched but not
// yielded are not lost: each partition's position goes back to the first
// of them (so a commit does not cover them either).
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			recs, err := c.Poll(ctx)
			for i, r := range recs {
				if !yield(r, nil) {
					c.rewind(recs[i+1:])
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

// rewind moves each partition's position back to its first record in
// rest, records that Poll returned but the application did not take. An
// error stays with the partition's reader, for the next Poll to return.
func (c *Consumer) rewind(rest []Record) {
	if c.closed {
		return
	}
	var done []int
	for _, rec := range rest {
		if slices.Contains(done, rec.Partition) {
			continue
		}
		done = append(done, rec.Partition)
		if i := c.readerIndex(rec.Partition); i >= 0 {
			r := c.readers[i]
			r.byTime = false
			if err := r.seek(rec.Offset); err != nil {
				c.rerr[i] = err
			}
		}
	}
}

// Seek moves partition's read position to the start position sp. In a
// group the partition must be owned by this member; Seek also clears the
// error of a partition whose committed offset was out of range.
func (c *Consumer) Seek(partition int, sp StartPosition) error {
	if c.closed {
		return ErrClosed
	}
	i := c.readerIndex(partition)
	if i < 0 {
		if c.g != nil {
			return c.g.m.notOwned(partition)
		}
		return fmt.Errorf("%w: partition %d is not read by this consumer", ErrInvalidArgument, partition)
	}
	r := c.readers[i]
	r.byTime = false
	if err := r.start(sp); err != nil {
		return err
	}
	c.rerr[i] = nil
	return nil
}

// Position returns the next offset the consumer will deliver from
// partition, or -1 if it does not read it.
func (c *Consumer) Position(partition int) int64 {
	if i := c.readerIndex(partition); i >= 0 {
		return c.readers[i].next
	}
	return -1
}

// Partitions lists the partitions the consumer reads: in a group, those
// the member owns now.
func (c *Consumer) Partitions() []int {
	ids := make([]int, len(c.readers))
	for i, r := range c.readers {
		ids[i] = r.p.id
	}
	slices.Sort(ids)
	return ids
}

func (c *Consumer) readerIndex(partition int) int {
	for i, r := range c.readers {
		if r.p.id == partition {
			return i
		}
	}
	return -1
}

// Close releases the consumer's files. A group member first gives up its
// partitions as in a rebalance (automatic commit, then OnRevoked) and
// leaves the group, so the others take its partitions over at once and,
// with auto-commit, without reading any record twice. Close is
// idempotent.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.log.removeConsumer(c)
	var errs []error
	if c.g != nil {
		if owned := c.g.m.ownedList(); len(owned) > 0 {
			errs = append(errs, c.revoke(owned))
		}
		if c.g.dirty {
			errs = append(errs, c.g.m.off.sync())
		}
		errs = append(errs, c.g.m.leave())
	}
	c.closed = true
	for _, r := range c.readers {
		r.close()
	}
	c.readers = nil
	for _, m := range c.metas {
		errs = append(errs, m.close())
	}
	c.metas, c.words = nil, nil
	return errors.Join(errs...)
}

// groupTick is a group member's work inside Poll: forced resets, the
// membership check (take or give up partitions), automatic commits and,
// in Periodic mode, the sync of commits.
func (c *Consumer) groupTick() error {
	g := c.g
	if g == nil {
		return nil
	}
	if c.closed || c.log.closed.Load() {
		return ErrClosed
	}
	off := g.m.off
	if e := off.resetEpoch().Load(); e != g.seenReset {
		g.seenReset = e
		if err := c.applyResets(g.m.ownedList()); err != nil {
			return err
		}
	}
	now := time.Now()
	if gen := off.gen().Load(); gen != g.seenGen || now.Sub(g.lastCheck) >= g.checkInterval {
		g.seenGen, g.lastCheck = gen, now
		if err := c.rebalance(); err != nil {
			return err
		}
	}
	if g.autoCommit && now.Sub(g.lastCommit) >= g.commitInterval {
		g.lastCommit = now
		if err := c.commitPositions(nil); err != nil {
			return err
		}
	}
	if g.dirty && now.Sub(g.lastSync) >= g.syncInterval {
		if err := off.sync(); err != nil {
			return err
		}
		g.dirty, g.lastSync = false, now
	}
	return nil
}

// rebalance moves the member toward its quota: it gives up partitions it
// has too many of, or takes free ones.
func (c *Consumer) rebalance() error {
	m := c.g.m
	live, rank, err := m.census()
	if err != nil {
		return err
	}
	q := quota(m.nparts, live, rank)
	switch {
	case m.count > q:
		// Give up the highest-numbered: members of lower rank start their
		// search low, so this tends to keep everyone's partitions apart.
		owned := m.ownedList()
		return c.revoke(owned[q:])
	case m.count < q:
		got, err := m.acquire(q-m.count, rank*m.nparts/live)
		if len(got) > 0 {
			err = errors.Join(err, c.assign(got))
		}
		return err
	}
	return nil
}

// assign starts reading partitions the member has just taken, from their
// committed offsets (or Start), applies reset requests left for them, and
// tells the application.
func (c *Consumer) assign(ps []int) error {
	g := c.g
	var errs []error
	for _, p := range ps {
		r, err := c.addReader(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st := g.m.commits[p]
		sp := c.start
		if st.offset != noCommit {
			sp = AtOffset(st.offset)
		}
		c.position(len(c.readers)-1, r, sp, st.offset != noCommit)
	}
	errs = append(errs, c.applyResets(ps))
	if g.onAssigned != nil {
		g.onAssigned(c, ps)
	}
	return errors.Join(errs...)
}

// position moves reader i to sp, applying the OutOfRange policy; an
// error it cannot resolve stays with the reader (Poll returns it) until
// Seek.
func (c *Consumer) position(i int, r *partReader, sp StartPosition, committed bool) {
	g := c.g
	err := r.start(sp)
	if errors.Is(err, ErrOutOfRange) {
		switch g.outOfRange {
		case OutOfRangeEarliest:
			err = r.start(Earliest)
		case OutOfRangeLatest:
			err = r.start(Latest)
		}
	}
	if err != nil {
		what := "start position " + sp.String()
		if committed {
			what = fmt.Sprintf("committed offset %d", sp.offset)
		}
		err = fmt.Errorf("runnel: group %s, topic %s, partition %d: %s: %w (Seek the partition to go on)", g.m.group, g.m.topic, r.p.id, what, err)
	}
	c.rerr[i] = err
}

// applyResets moves owned partitions of ps that have a pending forced
// reset request to the requested offset, and commits it as their owner.
func (c *Consumer) applyResets(ps []int) error {
	g := c.g
	var wrote bool
	var errs []error
	now := time.Now().UnixNano()
	for _, p := range ps {
		i := c.readerIndex(p)
		if i < 0 || !g.m.owned[p] {
			continue
		}
		req, err := g.m.off.readRequest(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st := &g.m.commits[p]
		if req.seq <= st.applied {
			continue
		}
		r := c.readers[i]
		r.byTime = false
		c.position(i, r, AtOffset(req.offset), true)
		st.applied = req.seq
		if err := g.m.off.writeCommit(p, st, req.offset, now); err != nil {
			errs = append(errs, err)
			continue
		}
		wrote = true
	}
	if wrote {
		// A reset is rare and its sender waits for it: always durable.
		errs = append(errs, g.m.off.sync())
	}
	return errors.Join(errs...)
}

// revoke gives partitions up: automatic commit, OnRevoked, release, and a
// wake-up for the other members.
func (c *Consumer) revoke(ps []int) error {
	g := c.g
	var errs []error
	if g.autoCommit {
		errs = append(errs, c.commitPositions(ps))
	}
	if g.onRevoked != nil {
		g.onRevoked(c, ps)
	}
	for _, p := range ps {
		errs = append(errs, c.removeReader(p))
		errs = append(errs, g.m.release(p))
	}
	g.m.off.bump(g.m.off.gen())
	return errors.Join(errs...)
}

// Commit records, for every partition this group member owns, the
// position after the records Poll has returned as the group's committed
// offset (the next offset to read), in the offsets file: durable as the
// Log's Durability says. Partitions whose position did not move since
// their last commit are skipped. ctx is checked before anything is
// written; a commit is never left half-done.
func (c *Consumer) Commit(ctx context.Context) error {
	if err := c.checkGroup(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commitPositions(nil)
}

// CommitOffsets commits the given offsets (partition → next offset to
// read) as the group's committed offsets. Every partition must be owned by
// this member, or nothing is written and the error wraps ErrNotOwner.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[int]int64) error {
	if err := c.checkGroup(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m := c.g.m
	for p, off := range offsets {
		if p < 0 || p >= m.nparts || !m.owned[p] {
			return m.notOwned(p)
		}
		if off < 0 {
			return fmt.Errorf("%w: offset %d for partition %d", ErrInvalidArgument, off, p)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	for p, off := range offsets {
		if err := m.off.writeCommit(p, &m.commits[p], off, now); err != nil {
			return err
		}
	}
	return c.committed()
}

func (c *Consumer) checkGroup() error {
	if c.closed {
		return ErrClosed
	}
	if c.g == nil {
		return fmt.Errorf("%w: the consumer is not a group member (ConsumerOptions.Group)", ErrInvalidArgument)
	}
	return nil
}

// commitPositions commits the read positions of the owned partitions in
// ps (nil: all) that moved since their last commit. It allocates nothing.
func (c *Consumer) commitPositions(ps []int) error {
	m := c.g.m
	now := time.Now().UnixNano()
	var wrote bool
	for i, r := range c.readers {
		p := r.p.id
		// A reader in error has no position, and one still skipping to
		// its start time has not reached it: neither is committed.
		if c.rerr[i] != nil || r.byTime || !m.owned[p] || (ps != nil && !slices.Contains(ps, p)) {
			continue
		}
		st := &m.commits[p]
		if st.offset == r.next {
			continue
		}
		if err := m.off.writeCommit(p, st, r.next, now); err != nil {
			return err
		}
		wrote = true
	}
	if !wrote {
		return nil
	}
	return c.committed()
}

// committed makes written commits as durable as the Log's Durability asks.
func (c *Consumer) committed() error {
	g := c.g
	switch g.durability {
	case Durable:
		return g.m.off.sync()
	case Periodic:
		g.dirty = true
	}
	return nil
}
