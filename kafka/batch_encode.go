package kafka

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
)

// batchBuilder encodes consecutive records of one partition as one
// uncompressed RecordBatch v2 (CreateTime timestamps, no producer id),
// record by record.
type batchBuilder struct {
	buf        []byte
	count      int32
	first, max int64 // timestamps, milliseconds
}

// add appends rec, whose offset follows the previous record's.
func (b *batchBuilder) add(rec *runnel.Record) { b.addSized(rec, recordBodyLen(rec)) }

// addSized is add of rec, whose recordBodyLen is body: a fetch measures
// each record before it takes it, and the measure is half the cost of
// encoding it again.
func (b *batchBuilder) addSized(rec *runnel.Record, body int) {
	ts := rec.Time.UnixMilli()
	if b.count == 0 {
		b.first, b.max = ts, ts
		b.buf = appendBatchHeader(b.buf[:0], rec.Offset, ts)
	}
	b.max = max(b.max, ts)
	delta := ts - b.first
	n := 1 + kbin.VarlongLen(delta) + kbin.VarintLen(b.count) + body
	dst := appendVarint(b.buf, int32(n))
	dst = append(dst, 0)
	dst = appendVarlong(dst, delta)
	dst = appendVarint(dst, b.count)
	dst = appendVarintBytes(dst, rec.Key)
	dst = appendVarintBytes(dst, rec.Value)
	dst = appendVarint(dst, int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		dst = appendVarint(dst, int32(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendVarintBytes(dst, h.Value)
	}
	b.buf = dst
	b.count++
}

// appendBatchHeader appends the fixed header of a batch whose first
// record is at offset and time first; finish fills in the rest.
func appendBatchHeader(dst []byte, offset, first int64) []byte {
	dst = kbin.AppendInt64(dst, offset)
	dst = kbin.AppendInt32(dst, 0)     // length, set by finish
	dst = kbin.AppendInt32(dst, 0)     // partition leader epoch: always 0
	dst = kbin.AppendInt8(dst, 2)      // magic
	dst = kbin.AppendInt32(dst, 0)     // CRC, set by finish
	dst = kbin.AppendInt16(dst, 0)     // attributes
	dst = kbin.AppendInt32(dst, 0)     // last offset delta, set by finish
	dst = kbin.AppendInt64(dst, first) // first timestamp
	dst = kbin.AppendInt64(dst, 0)     // max timestamp, set by finish
	dst = kbin.AppendInt64(dst, -1)    // producer id
	dst = kbin.AppendInt16(dst, -1)    // producer epoch
	dst = kbin.AppendInt32(dst, -1)    // first sequence
	return kbin.AppendInt32(dst, 0)    // record count, set by finish
}

// appendVarint and appendVarlong are kbin's AppendVarint and
// AppendVarlong through binary.AppendUvarint, which the compiler inlines:
// a fetch calls them five times for each record.
func appendVarint(dst []byte, i int32) []byte {
	return binary.AppendUvarint(dst, uint64(uint32(i)<<1^uint32(i>>31)))
}

func appendVarlong(dst []byte, i int64) []byte {
	return binary.AppendUvarint(dst, uint64(i)<<1^uint64(i>>63))
}

// appendVarintBytes is kbin.AppendVarintBytes through appendVarint.
func appendVarintBytes(dst, p []byte) []byte {
	if p == nil {
		return append(dst, 1) // length -1
	}
	return append(appendVarint(dst, int32(len(p))), p...)
}

// recordBodyLen is the encoded size of rec's key, value and headers in a
// batch: all of the record but its length, attributes and deltas.
func recordBodyLen(rec *runnel.Record) int {
	n := bytesLen(rec.Key) + bytesLen(rec.Value) + kbin.VarintLen(int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		n += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
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
