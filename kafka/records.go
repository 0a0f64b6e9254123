package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
)

// Kafka's RecordBatch (magic 2) on the wire, and its translation to and
// from runnel records. A produced batch becomes one runnel frame (one
// SendBatch), so its records get consecutive offsets and are stored
// atomically, as Kafka stores a batch.

// batchHeaderSize is the fixed part of a RecordBatch, up to its records.
const batchHeaderSize = 61

// Offsets of batch header fields.
const (
	batchLengthOff     = 8  // int32: bytes after this field
	batchMagicOff      = 16 // int8: 2
	batchCRCOff        = 17 // uint32: CRC-32C of everything from attributes on
	batchAttrOff       = 21 // int16
	batchLastDeltaOff  = 23 // int32
	batchFirstTimeOff  = 27 // int64, milliseconds
	batchMaxTimeOff    = 35 // int64
	batchProducerIDOff = 43 // int64
	batchEpochOff      = 51 // int16
	batchFirstSeqOff   = 53 // int32
	batchCountOff      = 57 // int32
)

// Batch attributes.
const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// errCorruptBatch is the cause of every decoding error of a produced
// batch: the client gets CORRUPT_MESSAGE.
var errCorruptBatch = errors.New("corrupt record batch")

// batchInfo is what the produce path needs from a batch header.
type batchInfo struct {
	producerID    int64
	producerEpoch int16
	firstSeq      int32
	count         int32
	transactional bool
}

// batchScratch is memory parseBatch reuses from one batch to the next:
// the records and the decompressed bytes they point into.
type batchScratch struct {
	recs    []runnel.Record
	decoded []byte
}

// parseBatch checks that b holds exactly one well-formed RecordBatch v2 and
// returns its header and its records, decompressed (within maxDecoded
// bytes). Record byte slices alias b or the decompression buffer; with
// scratch (nil for none) the records and that buffer are scratch's, valid
// until its next use.
func parseBatch(b []byte, maxDecoded int, now time.Time, scratch *batchScratch) (batchInfo, []runnel.Record, error) {
	var info batchInfo
	if len(b) < batchHeaderSize {
		return info, nil, fmt.Errorf("%w: %d bytes, shorter than a batch header", errCorruptBatch, len(b))
	}
	length := int64(int32(binary.BigEndian.Uint32(b[batchLengthOff:])))
	if length != int64(len(b))-12 {
		return info, nil, fmt.Errorf("%w: batch length %d, request carries %d bytes (one batch per partition)", errCorruptBatch, length, len(b)-12)
	}
	if b[batchMagicOff] != 2 {
		return info, nil, fmt.Errorf("%w: magic %d (only RecordBatch v2 is accepted)", errCorruptBatch, b[batchMagicOff])
	}
	if crc32.Checksum(b[batchAttrOff:], crc32c) != binary.BigEndian.Uint32(b[batchCRCOff:]) {
		return info, nil, fmt.Errorf("%w: CRC mismatch", errCorruptBatch)
	}
	attrs := int16(binary.BigEndian.Uint16(b[batchAttrOff:]))
	if attrs&attrControl != 0 {
		return info, nil, fmt.Errorf("%w: clients may not send control batches", errCorruptBatch)
	}
	info.producerID = int64(binary.BigEndian.Uint64(b[batchProducerIDOff:]))
	info.producerEpoch = int16(binary.BigEndian.Uint16(b[batchEpochOff:]))
	info.firstSeq = int32(binary.BigEndian.Uint32(b[batchFirstSeqOff:]))
	info.count = int32(binary.BigEndian.Uint32(b[batchCountOff:]))
	info.transactional = attrs&attrTransactional != 0
	lastDelta := int32(binary.BigEndian.Uint32(b[batchLastDeltaOff:]))
	if info.count <= 0 || lastDelta != info.count-1 {
		return info, nil, fmt.Errorf("%w: %d records, last offset delta %d", errCorruptBatch, info.count, lastDelta)
	}
	firstTime := int64(binary.BigEndian.Uint64(b[batchFirstTimeOff:]))
	logAppend := attrs&attrLogAppendTime != 0

	if scratch == nil {
		scratch = &batchScratch{}
	}
	body, err := decompress(codec(attrs&attrCompression), b[batchHeaderSize:], maxDecoded, scratch.decoded)
	if err != nil {
		return info, nil, err
	}
	if cap(body) > cap(scratch.decoded) && cap(body) <= maxScratch {
		scratch.decoded = body[:0]
	}
	// Every record takes at least 7 bytes, so the count cannot ask for
	// more entries than the body could hold.
	if int64(info.count) > int64(len(body))/7+1 {
		return info, nil, fmt.Errorf("%w: %d records in %d bytes", errCorruptBatch, info.count, len(body))
	}
	recs := slices.Grow(scratch.recs[:0], int(info.count))[:info.count]
	if cap(recs) <= maxScratch/64 {
		scratch.recs = recs
	}
	r := kbin.Reader{Src: body}
	for i := range recs {
		if err := readRecord(&r, &recs[i], int32(i), firstTime); err != nil {
			return info, nil, fmt.Errorf("%w: record %d: %v", errCorruptBatch, i, err)
		}
		if logAppend {
			recs[i].Time = now
		}
	}
	if len(r.Src) != 0 {
		return info, nil, fmt.Errorf("%w: %d bytes after the last record", errCorruptBatch, len(r.Src))
	}
	return info, recs, nil
}

// maxScratch bounds the memory a connection keeps between batches.
const maxScratch = 4 << 20

// readRecord decodes one record of a batch whose first timestamp is
// firstTime; its offset delta must be i.
func readRecord(r *kbin.Reader, rec *runnel.Record, i int32, firstTime int64) error {
	length := r.Varint()
	if !r.Ok() || length < 0 || int(length) > len(r.Src) {
		return errors.New("bad length")
	}
	body := kbin.Reader{Src: r.Span(int(length))}
	*rec = runnel.Record{}
	body.Int8() // attributes: unused
	tsDelta := body.Varlong()
	if delta := body.Varint(); delta != i {
		if body.Ok() {
			return fmt.Errorf("offset delta %d", delta)
		}
	}
	rec.Key = varBytes(&body)
	rec.Value = varBytes(&body)
	nh := body.VarintArrayLen()
	if !body.Ok() || nh < 0 {
		return errors.New("truncated")
	}
	if nh > 0 {
		// VarintArrayLen checked nh against the bytes left.
		rec.Headers = make([]runnel.Header, nh)
		for j := range rec.Headers {
			h := &rec.Headers[j]
			h.Key = string(varBytes(&body))
			h.Value = varBytes(&body)
		}
	}
	if !body.Ok() {
		return errors.New("truncated")
	}
	if len(body.Src) != 0 {
		return fmt.Errorf("%d stray bytes", len(body.Src))
	}
	rec.Time = time.UnixMilli(firstTime + tsDelta)
	return nil
}

// varBytes reads a varint-length-prefixed byte string: length -1 is nil,
// 0 is empty but not nil (runnel keeps the two apart), and any other
// negative length spoils the reader.
func varBytes(r *kbin.Reader) []byte {
	l := r.Varint()
	switch {
	case l == -1:
		return nil
	case l == 0 && r.Ok():
		return []byte{}
	case l < 0:
		r.Span(-1)
		return nil
	}
	return r.Span(int(l))
}

// batchBuilder encodes consecutive records of one partition as one
// uncompressed RecordBatch v2 (CreateTime timestamps, no producer id),
// record by record.
type batchBuilder struct {
	buf        []byte
	count      int32
	first, max int64 // timestamps, milliseconds
}

// add appends rec, whose offset follows the previous record's.
func (b *batchBuilder) add(rec *runnel.Record) {
	ts := rec.Time.UnixMilli()
	if b.count == 0 {
		b.first, b.max = ts, ts
		dst := kbin.AppendInt64(b.buf[:0], rec.Offset)
		dst = kbin.AppendInt32(dst, 0) // length, set by finish
		dst = kbin.AppendInt32(dst, 0) // partition leader epoch: always 0
		dst = kbin.AppendInt8(dst, 2)
		dst = kbin.AppendInt32(dst, 0)  // CRC, set by finish
		dst = kbin.AppendInt16(dst, 0)  // attributes
		dst = kbin.AppendInt32(dst, 0)  // last offset delta, set by finish
		dst = kbin.AppendInt64(dst, ts) // first timestamp
		dst = kbin.AppendInt64(dst, 0)  // max timestamp, set by finish
		dst = kbin.AppendInt64(dst, -1) // producer id
		dst = kbin.AppendInt16(dst, -1) // producer epoch
		dst = kbin.AppendInt32(dst, -1) // first sequence
		dst = kbin.AppendInt32(dst, 0)  // record count, set by finish
		b.buf = dst
	}
	b.max = max(b.max, ts)
	delta := ts - b.first
	n := 1 + kbin.VarlongLen(delta) + kbin.VarintLen(b.count) +
		bytesLen(rec.Key) + bytesLen(rec.Value) + kbin.VarintLen(int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		n += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst := kbin.AppendVarint(b.buf, int32(n))
	dst = append(dst, 0)
	dst = kbin.AppendVarlong(dst, delta)
	dst = kbin.AppendVarint(dst, b.count)
	dst = kbin.AppendVarintBytes(dst, rec.Key)
	dst = kbin.AppendVarintBytes(dst, rec.Value)
	dst = kbin.AppendVarint(dst, int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		dst = kbin.AppendVarintString(dst, h.Key)
		dst = kbin.AppendVarintBytes(dst, h.Value)
	}
	b.buf = dst
	b.count++
}

// size is the batch's encoded size so far.
func (b *batchBuilder) size() int { return len(b.buf) }

// finish completes the header and returns the batch, or nil if no record
// was added.
func (b *batchBuilder) finish() []byte {
	if b.count == 0 {
		return nil
	}
	h := b.buf
	binary.BigEndian.PutUint32(h[batchLengthOff:], uint32(len(h)-12))
	binary.BigEndian.PutUint32(h[batchLastDeltaOff:], uint32(b.count-1))
	binary.BigEndian.PutUint64(h[batchMaxTimeOff:], uint64(b.max))
	binary.BigEndian.PutUint32(h[batchCountOff:], uint32(b.count))
	binary.BigEndian.PutUint32(h[batchCRCOff:], crc32.Checksum(h[batchAttrOff:], crc32c))
	return h
}

// bytesLen is the encoded size of a varint-length-prefixed byte string
// (nil is length -1).
func bytesLen(p []byte) int {
	if p == nil {
		return 1
	}
	return kbin.VarintLen(int32(len(p))) + len(p)
}
