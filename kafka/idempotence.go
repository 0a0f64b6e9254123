package kafka

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Idempotent produce, as Kafka's brokers do it: each producer id (from
// InitProducerId) numbers its batches per partition with consecutive
// sequence numbers, and the server remembers, per producer and partition,
// the last few batches it stored. A batch that repeats one of them is a
// retry: it is acknowledged with the original offsets and not stored
// again. A batch that skips ahead is refused (OUT_OF_ORDER_SEQUENCE_NUMBER)
// so that nothing is stored out of order.
//
// Kafka checks a batch's sequence at append time, under the partition's
// log lock, so a batch is stored only after its predecessor was: when the
// predecessor's append fails, the batch behind it (clients keep up to five
// in flight) finds a gap and is refused. Here sequences are checked before
// a batch is handed to the core, whose next frame may well be stored after
// one that failed (a full disk, say, cut and retried): the batch behind
// was stored with its predecessor missing, the client's retry of the
// predecessor was then refused, and franz-go, which fails every record in
// flight behind a batch that failed for good, reported records failed that
// the log held. So a batch whose predecessor is still being stored is
// handed to the core only once that one is committed (before its
// fdatasync, so a Durable Log's syncs still overlap; in the meantime the
// connection reads on), and if that one fails instead, it is refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka refuses it. Clients take that
// answer, for a batch behind one that failed, as a cue to send it again
// after the failed one (franz-go ignores it, librdkafka bumps its epoch),
// or fail it with it.
//
// Epochs are per producer and partition, as Kafka's brokers keep them: a
// batch of a newer epoch moves only its partition on (and must start at
// sequence 0 there if the producer wrote there before), and a batch of an
// older epoch is fenced (INVALID_PRODUCER_EPOCH) only where a newer one
// arrived. Clients rely on that: after a client moves to a newer epoch
// (Kafka's Java producer does so by itself), franz-go sends a batch whose
// outcome it does not know again under the epoch and sequence it first
// had, on a partition that has not seen the newer epoch, and renumbers
// it if that is refused, which would store it twice.
//
// The state lives in the server's memory, and each batch is noted in its
// partition's producer journal (producer_journal.go) before its commit,
// so that a server killed at any point after the commit has noted it; a
// retry of a batch that a stopped server noted is answered from the
// journal only if the log holds the noted records. From the journal a
// server started after another stopped loads that server's producers of a
// partition when it first gets an idempotent batch for it, and again, for
// servers stopped since, when a producer it does not know there sends a
// batch. A producer the journal does not know has its first batch per
// partition taken as is (as Kafka does for a producer it has no state
// for).
//
// A topic deleted and made again under its name starts with no state
// (topicPartition). The server notices a deletion by another process
// only when it uses the topic's files: the append of a new batch fails,
// but an answer from the state alone (a retry's offsets, a refusal) does
// not touch them, so before giving one the server checks that the name
// still has the ID its state is kept under (storeBatch).

// seqWindow is how many batches are remembered per producer and
// partition: Kafka's, and the most a client keeps in flight.
const seqWindow = 5

// producerIdleExpiry drops the state of a producer id not used for this
// long (Kafka's producer.id.expiration.ms).
const producerIdleExpiry = 24 * time.Hour

// maxProducers bounds the producers the server keeps state for: past it,
// the least recently used are forgotten, as if idle past the expiry, so
// that clients making up producer ids cannot grow the server's memory
// without bound. (A variable: tests lower it.)
var maxProducers = 1 << 17

type producerStates struct {
	mu sync.Mutex
	m  map[int64]*producerState
}

type producerState struct {
	lastUsed time.Time
	parts    map[topicPartition]*seqState
}

// topicPartition keys the state. It holds the topic's ID as well as its
// name: a topic deleted and made again under the name is another topic,
// with no producer state, as in Kafka, where the state goes with the
// partition's log. Keyed by the name alone, a retry of a batch stored in
// the deleted topic, or a batch that repeats its sequences (franz-go
// numbers from 0 again once the topic is purged from it), was answered
// with offsets the new topic never gave it, and its records were lost.
type topicPartition struct {
	topic     string
	topicID   string
	partition int32
}

// seqState is one producer's epoch and recent batches (oldest first) on
// one partition.
type seqState struct {
	epoch   int16
	batches []*seqBatch
	// newEpoch: the producer's epoch here moved on since its batches
	// here, so its next batch must start at sequence 0, as Kafka has it:
	// one that does not is out of order (its predecessors at the new
	// epoch were not stored).
	newEpoch bool
}

type seqBatch struct {
	first, last int32
	done        chan struct{} // closed when base and code are final
	base        int64
	code        int16
	// loaded: from the producer journal, and not yet found in the log.
	// An entry is written before the commit, and without an fdatasync:
	// after a crash or a power loss it may name a batch the log does not
	// hold.
	loaded bool
	// entry is the journal entry a loaded batch comes from.
	entry journalEntry

	// decided is closed when state leaves seqPending: the batch is
	// committed to the log (its successor may be handed on), or failed
	// without being stored (its successors must fail too).
	decided chan struct{}
	state   atomic.Int32
	// ss holds the batch (it may have left ss.batches since).
	ss *seqState
	// prev is the producer's batch before this one on the partition,
	// when that one was still being stored as this one was begun: the
	// caller hands this one to the core only once prev is stored. Set by
	// begin, for the caller, which clears it.
	prev *seqBatch
}

const (
	seqPending int32 = iota
	seqStored
	seqFailed
)

// decide moves b out of seqPending, to state, unless it left already;
// it reports whether it moved.
func (b *seqBatch) decide(state int32) bool {
	if !b.state.CompareAndSwap(seqPending, state) {
		return false
	}
	close(b.decided)
	return true
}

// stored marks b committed to the log. It runs on the partition's
// writer, and takes no lock.
func (b *seqBatch) stored() { b.decide(seqStored) }

func (ps *producerStates) init() { ps.m = map[int64]*producerState{} }

// producer returns id's state, made afresh if the server has none or the
// producer was idle past the expiry; the caller sets its lastUsed. The
// caller holds ps.mu.
func (ps *producerStates) producer(id int64, now time.Time) *producerState {
	st := ps.m[id]
	if st != nil && !st.expired(now) {
		return st
	}
	if st == nil && len(ps.m) >= maxProducers {
		ps.evict(now)
	}
	st = &producerState{parts: map[topicPartition]*seqState{}}
	ps.m[id] = st
	return st
}

func (st *producerState) expired(now time.Time) bool {
	return now.Sub(st.lastUsed) > producerIdleExpiry
}

// evict forgets the producers idle past the expiry and, if the server is
// still at its bound, the least recently used, down to seven eighths of
// it: one sort for every eighth of the bound in producers new to the
// server. The caller holds ps.mu.
func (ps *producerStates) evict(now time.Time) {
	type use struct {
		pid int64
		at  time.Time
	}
	uses := make([]use, 0, len(ps.m))
	for pid, st := range ps.m {
		if st.expired(now) {
			delete(ps.m, pid)
		} else {
			uses = append(uses, use{pid, st.lastUsed})
		}
	}
	if len(uses) < maxProducers {
		return
	}
	slices.SortFunc(uses, func(a, b use) int { return a.at.Compare(b.at) })
	for _, u := range uses[:len(uses)-maxProducers*7/8] {
		delete(ps.m, u.pid)
	}
}

// load adds what a partition's journal says to the state: each producer
// used within producerIdleExpiry, unless this server already has state
// for it on that partition, gets its epoch and last stored batches there,
// answered as retries like the ones stored here.
func (ps *producerStates) load(tp topicPartition, folded map[int64]*foldedProducer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	for pid, f := range folded {
		if now.Sub(time.Unix(0, f.lastUsed)) > producerIdleExpiry {
			continue
		}
		st := ps.producer(pid, now)
		if st.parts[tp] != nil {
			continue
		}
		if used := time.Unix(0, f.lastUsed); used.After(st.lastUsed) {
			st.lastUsed = used
		}
		ss := &seqState{epoch: f.epoch}
		for _, e := range f.batches {
			b := &seqBatch{first: e.first, last: e.last, base: e.base, done: closedDone, decided: closedDone, loaded: true, entry: e, ss: ss}
			b.state.Store(seqStored)
			ss.batches = append(ss.batches, b)
		}
		st.parts[tp] = ss
	}
}

// unconfirmed reports whether b is a loaded batch not yet found in the
// log.
func (ps *producerStates) unconfirmed(b *seqBatch) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return b.loaded
}

// confirm marks a loaded batch as found in the log. It reports false if
// the batch was forgotten meanwhile (another retry of it did not find it,
// and stored it anew): the records found may be that new store's, which
// the caller must wait for as a duplicate of it.
func (ps *producerStates) confirm(id int64, tp topicPartition, b *seqBatch) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := ps.m[id]
	if st == nil || st.parts[tp] == nil || !slices.Contains(st.parts[tp].batches, b) {
		return false
	}
	b.loaded = false
	return true
}

// forgetFrom drops b, a loaded batch the log does not hold, and the
// producer's later loaded batches on tp: a log loses only its newest
// frames, so those are not held either, and the producer's retries of
// them are stored anew. Batches this server stored stay.
func (ps *producerStates) forgetFrom(id int64, tp topicPartition, b *seqBatch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := ps.m[id]
	if st == nil || st.parts[tp] == nil {
		return
	}
	ss := st.parts[tp]
	i := slices.Index(ss.batches, b)
	if i < 0 {
		return
	}
	keep := ss.batches[:i]
	for _, o := range ss.batches[i+1:] {
		if !o.loaded {
			keep = append(keep, o)
		}
	}
	ss.batches = keep
}

// closedDone is the done of a batch whose outcome was known when it was
// loaded.
var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// dropTopic forgets every producer's state on the topic of that name and
// ID, which is gone: it would never be used again, only held until its
// producers expired.
func (ps *producerStates) dropTopic(name, id string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, st := range ps.m {
		for tp := range st.parts {
			if tp.topic == name && tp.topicID == id {
				delete(st.parts, tp)
			}
		}
	}
}

// knows reports whether the server has state for producer id on tp.
func (ps *producerStates) knows(id int64, tp topicPartition) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := ps.m[id]
	return st != nil && !st.expired(time.Now()) && st.parts[tp] != nil
}

// begin checks a batch's producer epoch and sequence numbers. It returns
// either an error code, or a retried batch to answer like (dup), or a new
// batch to store, which the caller must end with finish, and mark stored
// once committed. A new batch's prev, if set, is its predecessor, still
// being stored: the caller must wait for it to be decided, and hand the
// batch on only if it was stored.
func (ps *producerStates) begin(id int64, epoch int16, tp topicPartition, first, count int32) (b *seqBatch, dup bool, code int16) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	st := ps.producer(id, now)
	st.lastUsed = now
	last := lastSeq(first, count)
	ss := st.parts[tp]
	switch {
	case ss == nil:
		ss = &seqState{epoch: epoch}
	case epoch < ss.epoch:
		return nil, false, kerr.InvalidProducerEpoch.Code
	case epoch > ss.epoch:
		// A producer bumps its epoch to start its sequences over. The
		// partition moves on only if the batch is taken: a refused one
		// leaves the older epoch's retries welcome, as in Kafka.
		ss = &seqState{epoch: epoch, newEpoch: true}
	}
	for _, old := range ss.batches {
		if old.first == first && old.last == last {
			return old, true, 0
		}
	}
	if n := len(ss.batches); n > 0 {
		if want := nextSeq(ss.batches[n-1].last); first != want {
			return nil, false, kerr.OutOfOrderSequenceNumber.Code
		}
	} else if ss.newEpoch && first != 0 {
		return nil, false, kerr.OutOfOrderSequenceNumber.Code
	}
	st.parts[tp] = ss
	b = &seqBatch{first: first, last: last, done: make(chan struct{}), decided: make(chan struct{}), ss: ss}
	// A failed batch leaves the window at once (finish), so the last
	// one is stored or still pending.
	if n := len(ss.batches); n > 0 && ss.batches[n-1].state.Load() == seqPending {
		b.prev = ss.batches[n-1]
	}
	ss.batches = append(ss.batches, b)
	// Only stored batches leave the window: a pending one must stay
	// where a retry finds it, and where its failure finds those behind
	// it (finish). A client keeps at most seqWindow in flight.
	for len(ss.batches) > seqWindow && ss.batches[0].state.Load() == seqStored {
		ss.batches = ss.batches[1:]
	}
	return b, false, 0
}

// finish publishes a begun batch's outcome. A batch that failed is
// forgotten, so that the client's retry is stored (once) rather than
// answered with the failure; one stored ends a new epoch's start.
//
// A batch that failed without being stored fails the producer's batches
// begun after it on the partition too, at once: none of them was handed
// to the core (each waits for the one before), and the client's retry of
// the failed one, which may come before they are answered, must find the
// window as it was before them.
func (ps *producerStates) finish(b *seqBatch, base int64, code int16) {
	ps.mu.Lock()
	b.base, b.code = base, code
	ss := b.ss
	switch {
	case code == 0:
		b.decide(seqStored)
		ss.newEpoch = false
	case b.decide(seqFailed):
		// Every batch before it in the window is stored: it was handed
		// on only then. Every one after it is pending behind it.
		keep := ss.batches[:0]
		for _, o := range ss.batches {
			if o.state.Load() == seqStored {
				keep = append(keep, o)
			} else {
				o.decide(seqFailed)
			}
		}
		clear(ss.batches[len(keep):])
		ss.batches = keep
	default:
		// Committed, and failed after (its fdatasync), or failed with
		// its predecessor: forgotten alone.
		if i := slices.Index(ss.batches, b); i >= 0 {
			ss.batches = slices.Delete(ss.batches, i, i+1)
		}
	}
	ps.mu.Unlock()
	close(b.done)
}

const maxSeq = int32(^uint32(0) >> 1)

// lastSeq is the sequence number of the last of count records from
// first: sequences wrap to 0 after MaxInt32, as Kafka's do.
func lastSeq(first, count int32) int32 {
	l := int64(first) + int64(count) - 1
	if l > int64(maxSeq) {
		l -= int64(maxSeq) + 1
	}
	return int32(l)
}

// nextSeq is the sequence number after seq.
func nextSeq(seq int32) int32 {
	if seq == maxSeq {
		return 0
	}
	return seq + 1
}
