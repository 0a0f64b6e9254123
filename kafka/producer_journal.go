package kafka

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
)

// The producer journal: what a restarted server needs to know of the
// idempotent batches stored before, so that a client's retry of a batch
// stored before the server stopped or died is answered with its offsets
// instead of being stored again, and a producer's sequence numbers and
// epoch carry on. Kafka keeps this in the batches themselves; runnel's
// frames keep no producer ids, so the server keeps it beside the log, in
// kafka/producers/<topic>/<partition>/: an entry for each idempotent
// batch, saying where it goes and holding a hash of its records (times
// included), appended before the batch is committed: under the
// partition's writer lock, once the core has fixed its offsets and before
// it writes the frame (runnel's SendRecordBatchAsyncNoted). A server that
// dies at any point after the commit has written the entry. The files
// are in producer_journal_file.go.
//
// So an entry can name a batch the log does not hold: the server died
// between the entry and the commit, or the frame's write failed, or a
// power loss took the frame and not the entry; the offsets may since hold
// other records, stored by any process. A retry answered from an entry a
// stopped server wrote is answered with its offsets only once the log is
// read there and its records hash as the entry says
// (idempotence_verify.go); otherwise it is stored anew. Records stored
// there by another producer with the same keys, values, headers and times
// to the nanosecond (Kafka's are milliseconds) would pass; nothing in the
// log tells them apart (a frame does not keep who produced it).
//
// What it does not cover, each stored twice on the client's retry (or,
// where the server knows the producer at a newer epoch, refused as out of
// order, which a client answers by bumping its epoch): a batch whose entry
// a power loss took while its frame had reached the disk (the journal has
// no fdatasync of its own); and the retries of a stopped server's
// producer that go to a running server which knew the producer on that
// partition from before, or whose file another server took over first
// (see producer_journal_file.go). Guessing from the records alone which
// frame was a retried batch's, without an entry, would risk answering a
// batch never stored as stored, which loses it; a duplicate is the lesser
// harm.
//
// Servers before entryStoring wrote an entry of another kind,
// entryStored, once the batch was committed, without a hash: a server
// still reads those, and answers a retry from one once the log holds the
// retry's keys, values and headers there. Those servers skip an
// entryStoring entry (logging it as damaged).

const (
	producersDir = "producers"

	entrySize = 48
	// journalCompactAt is the size past which the journal is rewritten
	// with only what is still needed: each producer's last seqWindow
	// batches, for producers used within producerIdleExpiry.
	journalCompactAt = 1 << 20
)

type entryKind uint8

const (
	entryHeader entryKind = iota + 1 // the topic's id, first in the file
	// entryStored: where a batch was stored, written once it was
	// committed, by servers before entryStoring; still read.
	entryStored
	// entryStoring: where a batch is stored and a hash of its records,
	// written before its commit.
	entryStoring
)

// journalEntry is one 48-byte record of the journal, little endian. A
// header or a stored entry:
//
//	0  kind u8, 1 reserved, 2 epoch i16, 4 first sequence i32,
//	8  producer id i64, 16 last sequence i32, 20 record count u32,
//	24 base offset i64, 32 time (unix ns) i64,
//	40 xxHash64 of bytes 0-39.
//
// A header entry holds the topic's id, 16 bytes, at 8, and its time. A
// storing entry, whose last sequence follows from its first and count:
//
//	0  kind u8, 1 reserved, 2 epoch i16, 4 first sequence i32,
//	8  producer id i64, 16 record count u32, 20 base offset i64,
//	28 time (unix ns) i64, 36 records' hash u64 (recordDigest),
//	44 the low 32 bits of the xxHash64 of bytes 0-43.
type journalEntry struct {
	kind        entryKind
	epoch       int16
	first, last int32
	pid         int64
	count       int32
	base        int64
	time        int64
	topicID     [16]byte
	hash        uint64 // of the batch's records, in a storing entry
}

func (e *journalEntry) encode(b []byte) {
	clear(b[:entrySize])
	b[0] = byte(e.kind)
	le := binary.LittleEndian
	le.PutUint16(b[2:], uint16(e.epoch))
	le.PutUint32(b[4:], uint32(e.first))
	switch e.kind {
	case entryStoring:
		le.PutUint64(b[8:], uint64(e.pid))
		le.PutUint32(b[16:], uint32(e.count))
		le.PutUint64(b[20:], uint64(e.base))
		le.PutUint64(b[28:], uint64(e.time))
		le.PutUint64(b[36:], e.hash)
		le.PutUint32(b[44:], uint32(xxhash.Sum64(b[:44])))
		return
	case entryHeader:
		copy(b[8:24], e.topicID[:])
	default:
		le.PutUint64(b[8:], uint64(e.pid))
		le.PutUint32(b[16:], uint32(e.last))
		le.PutUint32(b[20:], uint32(e.count))
	}
	le.PutUint64(b[24:], uint64(e.base))
	le.PutUint64(b[32:], uint64(e.time))
	le.PutUint64(b[40:], xxhash.Sum64(b[:40]))
}

// decodeEntry reads one entry; ok is false for bytes that are not one (a
// torn or damaged write).
func decodeEntry(b []byte) (e journalEntry, ok bool) {
	le := binary.LittleEndian
	e.kind = entryKind(b[0])
	switch e.kind {
	case entryHeader, entryStored:
		if le.Uint64(b[40:]) != xxhash.Sum64(b[:40]) {
			return e, false
		}
	case entryStoring:
		if le.Uint32(b[44:]) != uint32(xxhash.Sum64(b[:44])) {
			return e, false
		}
	default:
		return e, false
	}
	e.epoch = int16(le.Uint16(b[2:]))
	e.first = int32(le.Uint32(b[4:]))
	switch e.kind {
	case entryHeader:
		copy(e.topicID[:], b[8:24])
	case entryStoring:
		e.pid = int64(le.Uint64(b[8:]))
		e.count = int32(le.Uint32(b[16:]))
		e.base = int64(le.Uint64(b[20:]))
		e.time = int64(le.Uint64(b[28:]))
		e.hash = le.Uint64(b[36:])
		if e.count <= 0 || e.first < 0 {
			return e, false
		}
		e.last = lastSeq(e.first, e.count)
		return e, e.base >= 0 && e.pid >= 0
	default:
		e.pid = int64(le.Uint64(b[8:]))
		e.last = int32(le.Uint32(b[16:]))
		e.count = int32(le.Uint32(b[20:]))
	}
	e.base = int64(le.Uint64(b[24:]))
	e.time = int64(le.Uint64(b[32:]))
	if e.kind == entryStored && (e.base < 0 || e.count <= 0 || e.pid < 0) {
		return e, false
	}
	return e, true
}

// compactEntries keeps what a restarted server needs: for each producer
// used since producerIdleExpiry before now, the last seqWindow batches of
// its current epoch, in the order they were written. Past maxKeptEntries
// the producers used longest ago are dropped too, so that a journal stays
// within what a server reads (maxJournalBytes).
func compactEntries(entries []journalEntry, now time.Time) []journalEntry {
	states := foldEntries(entries) // which sorts entries into write order
	var live []*foldedProducer
	kept := 0
	for _, st := range states {
		if now.Sub(time.Unix(0, st.lastUsed)) <= producerIdleExpiry {
			live = append(live, st)
			kept += len(st.batches)
		}
	}
	slices.SortFunc(live, func(a, b *foldedProducer) int { return cmp.Compare(a.lastUsed, b.lastUsed) })
	for _, st := range live {
		if kept <= maxKeptEntries {
			break
		}
		kept -= len(st.batches)
		st.batches = nil
	}
	var out []journalEntry
	for _, e := range entries {
		st := states[e.pid]
		if st == nil || now.Sub(time.Unix(0, st.lastUsed)) > producerIdleExpiry {
			continue
		}
		if slices.Contains(st.batches, e) {
			out = append(out, e)
			st.batches = slices.DeleteFunc(st.batches, func(b journalEntry) bool { return b == e })
		}
	}
	return out
}

// maxKeptEntries bounds a compacted journal to half of what a server
// reads, so that doubling before the next compaction stays readable.
const maxKeptEntries = maxJournalBytes/2/entrySize - 1 // and the header

// inWriteOrder sorts entries in the order they were written, by their
// time, then offset: entries of several servers' files come in any order
// otherwise. Not by offset alone: after a power loss a batch may be
// stored at the offset of one whose frame was lost and whose entry was
// not, and the later entry is the one that counts.
func inWriteOrder(entries []journalEntry) []journalEntry {
	slices.SortStableFunc(entries, func(a, b journalEntry) int {
		return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.base, b.base))
	})
	return entries
}

// foldedProducer is one producer's state as a journal tells it.
type foldedProducer struct {
	epoch    int16
	lastUsed int64          // unix ns
	batches  []journalEntry // oldest first, at most seqWindow
}

// foldEntries replays a journal: each producer's epoch and last batches.
// It sorts entries in place into the order they were written.
// An entry of an epoch older than one before it is a zombie's, fenced when
// it was stored too late to be refused; it is left out.
func foldEntries(entries []journalEntry) map[int64]*foldedProducer {
	states := map[int64]*foldedProducer{}
	for _, e := range inWriteOrder(entries) {
		st := states[e.pid]
		if st == nil {
			st = &foldedProducer{epoch: e.epoch}
			states[e.pid] = st
		}
		switch {
		case e.epoch < st.epoch:
			// Nor does a zombie's write keep the producer in use: a
			// journal compacted without this entry must say the same.
			continue
		case e.epoch > st.epoch:
			st.epoch, st.batches = e.epoch, nil
		}
		st.lastUsed = max(st.lastUsed, e.time)
		// The same batch twice: an entry two servers both took over from
		// a stopped one, or a batch stored again after its fdatasync
		// failed (its entry is written at commit); the last is the one.
		st.batches = slices.DeleteFunc(st.batches, func(b journalEntry) bool { return b.first == e.first && b.last == e.last })
		st.batches = append(st.batches, e)
		if n := len(st.batches); n > seqWindow {
			st.batches = append(st.batches[:0], st.batches[n-seqWindow:]...)
		}
	}
	return states
}

// topicIDBytes is a topic ID (32 hexadecimal digits) as a header holds it;
// zero for a topic without one (made before runnel recorded IDs).
func topicIDBytes(id string) (b [16]byte) {
	if raw, err := hex.DecodeString(id); err == nil && len(raw) == len(b) {
		copy(b[:], raw)
	}
	return b
}
