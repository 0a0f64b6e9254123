package kafka

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/runnel-log/runnel"
)

// Reading a produced RecordBatch: checked, decompressed, and its records
// decoded one at a time, each handed on while its bytes are still those
// of the request (or of the decompression buffer). The produce path
// encodes each straight into a runnel.RecordBatch, the frame it will be
// stored as; nothing holds the batch as a slice of records in between.

// batchInfo is what the produce path needs from a batch header.
type batchInfo struct {
	producerID    int64
	producerEpoch int16
	firstSeq      int32
	count         int32
	transactional bool
	// recordsHash: an idempotent batch's records as the log is to hold
	// them (recordDigest), set by readFrame for its journal entry.
	recordsHash uint64
}

// batchRecord is a record as readBatch hands it on: its fields as the
// batch holds them, and its time in Unix nanoseconds (checked to be one a
// runnel timestamp holds), ready for runnel.RecordBatch.AddAt.
type batchRecord struct {
	key, value []byte
	headers    []runnel.Header
	time       int64
}

// batchScratch is memory the produce path reuses from one batch to the
// next, on a connection's reader: the decompression buffer, a record's
// header table, and the frame being built.
type batchScratch struct {
	decoded []byte
	headers []runnel.Header
	frame   runnel.RecordBatch
	digest  recordDigest
}

// maxScratch bounds the memory a connection keeps between batches.
const maxScratch = 4 << 20

// readBatch checks that b holds exactly one well-formed RecordBatch v2,
// decompresses its records (into at most maxDecoded bytes) and calls add
// with each record in order: the record and the byte slices in it alias
// b, the decompression buffer or scratch, and are valid only during the
// call (header keys are strings of their own). A record with the
// log-append-time attribute gets now; one of another time outside the
// years 1678 to 2262 refuses the batch with a *badTimestamps, which names
// every such record (add is not called again once one is met). readBatch
// stops at the first error of add, and returns it.
func readBatch(b []byte, maxDecoded int, now time.Time, scratch *batchScratch, add func(*batchRecord) error) (batchInfo, error) {
	var info batchInfo
	// The framing is checked in the order Kafka's broker reads it: a
	// record set without one whole batch (empty, or cut short) is
	// INVALID_RECORD, a length or magic that no batch of any version has
	// is damage, and a whole batch shorter than a v2 header is too.
	if len(b) <= batchMagicOff {
		return info, fmt.Errorf("%w: %d bytes, no record batch", errInvalidRecord, len(b))
	}
	length := int64(int32(binary.BigEndian.Uint32(b[batchLengthOff:])))
	magic := int8(b[batchMagicOff])
	switch {
	case length < minBatchLength:
		return info, fmt.Errorf("%w: batch length %d", errCorruptBatch, length)
	case magic < 0 || magic > 2:
		return info, fmt.Errorf("%w: magic %d", errCorruptBatch, magic)
	case length != int64(len(b))-12:
		return info, fmt.Errorf("%w: batch length %d, request carries %d bytes (one batch per partition)", errInvalidRecord, length, len(b)-12)
	case magic != 2: // an old Kafka's message set
		return info, fmt.Errorf("%w: magic %d (only RecordBatch v2 is accepted)", errInvalidRecord, magic)
	case len(b) < batchHeaderSize:
		return info, fmt.Errorf("%w: %d bytes, shorter than a batch header", errCorruptBatch, len(b))
	}
	if crc32.Checksum(b[batchAttrOff:], crc32c) != binary.BigEndian.Uint32(b[batchCRCOff:]) {
		return info, fmt.Errorf("%w: CRC mismatch", errCorruptBatch)
	}
	attrs := int16(binary.BigEndian.Uint16(b[batchAttrOff:]))
	if attrs&attrControl != 0 {
		return info, fmt.Errorf("%w: clients may not send control batches", errInvalidRecord)
	}
	info.producerID = int64(binary.BigEndian.Uint64(b[batchProducerIDOff:]))
	info.producerEpoch = int16(binary.BigEndian.Uint16(b[batchEpochOff:]))
	info.firstSeq = int32(binary.BigEndian.Uint32(b[batchFirstSeqOff:]))
	info.count = int32(binary.BigEndian.Uint32(b[batchCountOff:]))
	info.transactional = attrs&attrTransactional != 0
	lastDelta := int32(binary.BigEndian.Uint32(b[batchLastDeltaOff:]))
	if info.count <= 0 || lastDelta != info.count-1 {
		return info, fmt.Errorf("%w: %d records, last offset delta %d", errInvalidRecord, info.count, lastDelta)
	}
	if info.producerID >= 0 && info.firstSeq < 0 {
		return info, fmt.Errorf("%w: producer id %d with sequence %d", errInvalidRecord, info.producerID, info.firstSeq)
	}
	firstTime := int64(binary.BigEndian.Uint64(b[batchFirstTimeOff:]))
	logAppend := attrs&attrLogAppendTime != 0

	if scratch == nil {
		scratch = &batchScratch{}
	}
	c := codec(attrs & attrCompression)
	body, err := decompress(c, b[batchHeaderSize:], maxDecoded, scratch.decoded)
	if err != nil {
		return info, err
	}
	// An uncompressed body is b itself, the request's memory, which the
	// connection reads its next request into: kept as the decompression
	// buffer, a compressed batch there would be decoded over itself.
	if c != codecNone && cap(body) > cap(scratch.decoded) && cap(body) <= maxScratch {
		scratch.decoded = body[:0]
	}
	// Every record takes at least 7 bytes.
	if int64(info.count) > int64(len(body))/7 {
		return info, fmt.Errorf("%w: %d records in %d bytes", errInvalidRecord, info.count, len(body))
	}
	r := recordReader{b: body}
	var rec batchRecord
	var late *badTimestamps
	appendTime := now.UnixNano()
	for i := range info.count {
		millis, err := r.next(&rec, i, firstTime, &scratch.headers)
		if err != nil {
			return info, fmt.Errorf("%w: record %d: %v", errInvalidRecord, i, err)
		}
		switch {
		case logAppend:
			rec.time = appendTime
		case millis < minMillis || millis > maxMillis:
			if late == nil {
				late = &badTimestamps{}
			}
			late.records = append(late.records, badTimestamp{i, millis})
			continue
		default:
			rec.time = millis * int64(time.Millisecond)
		}
		if late != nil {
			continue // refused: the rest is only checked
		}
		if err := add(&rec); err != nil {
			return info, err
		}
	}
	if cap(scratch.headers) > maxScratch/64 {
		scratch.headers = nil
	}
	if len(r.b) != 0 {
		return info, fmt.Errorf("%w: %d bytes after the last record", errInvalidRecord, len(r.b))
	}
	if late != nil {
		return info, late
	}
	return info, nil
}

// badTimestamps refuses a batch for the times of its records outside the
// years 1678 to 2262 a runnel timestamp holds: every such record, as
// Kafka's broker lists each record its timestamp checks refuse (the
// record errors of its answer). It is errInvalidTimestamp.
type badTimestamps struct{ records []badTimestamp }

// badTimestamp is a record of a batch by its index, and its time in Unix
// milliseconds.
type badTimestamp struct {
	index  int32
	millis int64
}

func (b badTimestamp) String() string {
	return fmt.Sprintf("record %d at %d ms, outside the years 1678 to 2262 a runnel timestamp holds", b.index, b.millis)
}

func (e *badTimestamps) Error() string {
	msg := fmt.Sprintf("%v: %v", errInvalidTimestamp, e.records[0])
	if n := len(e.records) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more records)", n)
	}
	return msg
}

func (e *badTimestamps) Unwrap() error { return errInvalidTimestamp }

// The Unix milliseconds whose nanoseconds an int64 holds: the years 1678 to
// 2262, runnel's timestamps.
const minMillis, maxMillis = math.MinInt64 / int64(time.Millisecond), math.MaxInt64 / int64(time.Millisecond)

// recordReader decodes the records of a batch's body. Kafka's varints are
// zigzag-encoded; varint decodes one in a loop small enough to be inlined,
// with no call (a record has six). Once anything is out of bounds, bad is
// set and every later read returns zero values.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) varint() int64 {
	var x uint64
	for i, c := range r.b {
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflows 64 bits
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.b = r.b[i+1:]
			return int64(x>>1) ^ -int64(x&1)
		}
	}
	r.fail()
	return 0
}

// bytes reads a varint-length-prefixed byte string: length -1 is nil, 0
// is empty but not nil (runnel keeps the two apart).
func (r *recordReader) bytes() []byte {
	n := r.varint()
	switch {
	case n == -1 || r.bad:
		return nil
	case n < -1 || n > int64(len(r.b)):
		r.fail()
		return nil
	case n == 0:
		return []byte{}
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *recordReader) fail() { r.b, r.bad = nil, true }

// next decodes the record at offset delta i of a batch whose first
// timestamp is firstTime into rec, but for its time, whose Unix
// milliseconds it returns; its headers go into *headers, reused.
func (r *recordReader) next(rec *batchRecord, i int32, firstTime int64, headers *[]runnel.Header) (int64, error) {
	length := r.varint()
	if r.bad || length < 1 || length > int64(len(r.b)) {
		return 0, fmt.Errorf("record length %d, %d bytes left", length, len(r.b))
	}
	body := recordReader{b: r.b[1:length]} // after the attributes byte, unused
	r.b = r.b[length:]
	tsDelta := body.varint()
	if delta := body.varint(); delta != int64(i) && !body.bad {
		return 0, fmt.Errorf("offset delta %d", delta)
	}
	rec.key = body.bytes()
	rec.value = body.bytes()
	nh := body.varint()
	// A header takes at least two bytes: its key's and value's lengths.
	if body.bad || nh < 0 || nh > int64(len(body.b)/2) {
		return 0, fmt.Errorf("truncated, or %d headers", nh)
	}
	rec.headers = nil
	if nh > 0 {
		hs := (*headers)[:0]
		for range nh {
			key := body.bytes()
			hs = append(hs, runnel.Header{Key: string(key), Value: body.bytes()})
		}
		*headers = hs
		rec.headers = hs
	}
	if body.bad {
		return 0, fmt.Errorf("truncated")
	}
	if len(body.b) != 0 {
		return 0, fmt.Errorf("%d stray bytes", len(body.b))
	}
	return firstTime + tsDelta, nil
}
