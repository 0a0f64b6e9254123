package frame

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Header is one record header. A nil Value and an empty one are distinct.
type Header struct {
	Key   string
	Value []byte
}

// Record is a decoded record. Key, Value and header values alias the frame
// buffer they were decoded from.
type Record struct {
	Timestamp int64 // unix nanoseconds
	Key       []byte
	Value     []byte
	Headers   []Header
}

// MaxHeaders caps the headers of one record, so that decoding a record can
// never allocate more than a few megabytes for its header table.
const MaxHeaders = 1 << 12

// minRecordSize is the smallest encoded record: a one-byte length, then
// one byte each for timestamp delta, key length, value length and header
// count. ParseMeta uses it to reject impossible record counts.
const minRecordSize = 5

// Builder encodes records into one frame. The zero value is ready to use;
// reuse it across frames to reuse its buffer.
type Builder struct {
	buf   []byte
	pad   int // zero bytes the last Finish appended; Add and Finish drop them
	count int
	first int64
	max   int64
	warm  int // the buffer's spare capacity is cleared up to here (warmUp)
}

// Reset empties the builder, keeping its buffer.
func (b *Builder) Reset() {
	b.buf = append(b.buf[:0], make([]byte, HeaderSize)...)
	b.pad = 0
	b.count = 0
	b.first, b.max = 0, 0 // an empty frame must not keep the last one's times
	b.warm = 0
}

// unpad drops the padding of a previous Finish, so that records added after
// it continue the frame instead of following zero bytes that would decode
// as a corrupt record.
func (b *Builder) unpad() {
	b.buf = b.buf[:len(b.buf)-b.pad]
	b.pad = 0
}

// Len is the frame length so far, header included.
func (b *Builder) Len() int {
	if b.buf == nil {
		return HeaderSize
	}
	return len(b.buf) - b.pad
}

// MaxTime is the largest timestamp added since Reset.
func (b *Builder) MaxTime() int64 { return b.max }

// Count is the number of records added since Reset.
func (b *Builder) Count() int { return b.count }

// RecordSize is the encoded size of a record, which a caller checks against
// its limits before Add.
func RecordSize(key, value []byte, headers []Header) int {
	body := bodySize(0, key, value, headers)
	return uvarintLen(uint64(body)) + body
}

func bodySize(tsDelta int64, key, value []byte, headers []Header) int {
	n := varintLen(tsDelta) + bytesSize(key) + bytesSize(value) + uvarintLen(uint64(len(headers)))
	for _, h := range headers {
		n += uvarintLen(uint64(len(h.Key))) + len(h.Key) + bytesSize(h.Value)
	}
	return n
}

// Add appends one record with timestamp ts (unix nanoseconds) and returns
// its RecordSize, which callers check against their limits.
func (b *Builder) Add(ts int64, key, value []byte, headers []Header) int {
	size := RecordSize(key, value, headers)
	b.AddSized(size, ts, key, value, headers)
	return size
}

// AddSized is Add for a caller that has the record's RecordSize already,
// size, from checking it against its limits: a SendAsync stream of small
// records computed it twice, a tenth of the encoding's instructions. A
// size that is not the record's RecordSize panics.
func (b *Builder) AddSized(size int, ts int64, key, value []byte, headers []Header) {
	if b.buf == nil {
		b.Reset()
	}
	b.unpad()
	if b.count == 0 {
		b.first, b.max = ts, ts
	}
	b.max = max(b.max, ts)
	delta := ts - b.first
	// The body as RecordSize counts it has a one-byte delta.
	body := bodyOfSize(size) - 1 + varintLen(delta)
	buf := binary.AppendUvarint(b.buf, uint64(body))
	start := len(buf)
	buf = binary.AppendVarint(buf, delta)
	buf = appendBytes(buf, key)
	buf = appendBytes(buf, value)
	buf = binary.AppendUvarint(buf, uint64(len(headers)))
	for _, h := range headers {
		buf = binary.AppendUvarint(buf, uint64(len(h.Key)))
		buf = append(buf, h.Key...)
		buf = appendBytes(buf, h.Value)
	}
	if len(buf)-start != body {
		panic(fmt.Sprintf("frame: AddSized of a record whose body is %d bytes given size %d", len(buf)-start, size))
	}
	b.buf = buf
	b.count++
	if len(buf) >= warmAhead && len(buf)+warmAhead > b.warm && b.warm < cap(buf) {
		b.warmUp()
	}
}

// bodyOfSize is the body length of a record whose RecordSize is size: size
// less the length of the body's length, L, for which uvarintLen(size-L)
// is L. uvarintLen(size-L) does not grow with L, so the first L from 1 up
// that fits is the only one.
func bodyOfSize(size int) int {
	l := 1
	for uvarintLen(uint64(size-l)) != l {
		l++
	}
	return size - l
}

// A growing frame clears its buffer's spare capacity warmStep bytes at a
// time, once the records come within warmAhead bytes of the cleared part
// (and only once the frame is past warmAhead: a frame of a record or two
// gains nothing). A reused buffer of a stream is a MiB that the last
// frame's pwrite read, often on the other core, so its lines are not in
// the sender's cache: each record's stores missed line by line, and the
// sender stalled on them at its next locked instruction, the partition
// mutex's Unlock, which took 45% of a SendAsync stream's sender CPU
// (BenchmarkStream, -cpuprofile). A clear in bulk takes those lines far
// cheaper: the Unlock fell to 14% and the clear costs 5%, and the stream
// went from 237-261 to 186-209 ns a record (docs/PERFORMANCE.md).
const warmAhead, warmStep = 2 << 10, 4 << 10

// warmUp clears the next warmStep bytes past the frame's end, or past
// what was cleared already, within the buffer's capacity.
func (b *Builder) warmUp() {
	spare := b.buf[:cap(b.buf)]
	from := max(b.warm, len(b.buf))
	to := min(len(spare), from+warmStep)
	clear(spare[from:to])
	b.warm = to
}

// Append adds the records of src, another builder's frame, after b's,
// keeping their timestamps: each record's timestamp delta is re-based on
// b's first timestamp, the rest of it copied as it is. src is unchanged.
func (b *Builder) Append(src *Builder) {
	if src.count == 0 {
		return
	}
	if b.buf == nil {
		b.Reset()
	}
	b.unpad()
	recs := src.buf[HeaderSize : len(src.buf)-src.pad]
	if b.count == 0 {
		b.first, b.max = src.first, src.max
	}
	if shift := src.first - b.first; shift == 0 {
		b.buf = append(b.buf, recs...)
	} else {
		// src's records are its own encoding: Add wrote every length
		// and delta, so they parse. Deltas wrap as Add's do, and the
		// decoder's first + delta wraps back to the same timestamp.
		b.buf = slices.Grow(b.buf, len(recs)+src.count*binary.MaxVarintLen64)
		for len(recs) > 0 {
			n, k := binary.Uvarint(recs)
			body := recs[k : k+int(n)]
			recs = recs[k+int(n):]
			delta, dk := binary.Varint(body)
			rest := body[dk:]
			delta += shift
			b.buf = binary.AppendUvarint(b.buf, uint64(varintLen(delta)+len(rest)))
			b.buf = binary.AppendVarint(b.buf, delta)
			b.buf = append(b.buf, rest...)
		}
	}
	b.max = max(b.max, src.max)
	b.count += src.count
}

// Finish completes the frame with base as the offset of its first record and
// returns it, padded to Align, with its state byte StateWritten. The result
// aliases the builder's buffer and is valid until the next Add or Reset.
// Add after Finish continues the same frame.
func (b *Builder) Finish(base int64) []byte {
	if b.buf == nil {
		b.Reset()
	}
	b.unpad()
	length := len(b.buf)
	for len(b.buf)%Align != 0 {
		b.buf = append(b.buf, 0)
	}
	b.pad = len(b.buf) - length
	h := b.buf
	binary.LittleEndian.PutUint32(h[offLength:], uint32(length))
	h[offVersion] = Version
	h[OffState] = StateWritten
	h[offKind] = KindRecords
	h[offReserved] = 0
	binary.LittleEndian.PutUint64(h[offBase:], uint64(base))
	binary.LittleEndian.PutUint32(h[offCount:], uint32(b.count))
	binary.LittleEndian.PutUint32(h[offReserved2:], 0)
	binary.LittleEndian.PutUint64(h[offFirstTime:], uint64(b.first))
	binary.LittleEndian.PutUint64(h[offMaxTime:], uint64(b.max))
	binary.LittleEndian.PutUint64(h[offChecksum:], checksum(h[:length]))
	return b.buf
}

// Records iterates over the records of one verified frame.
type Records struct {
	b     []byte // the records area, unread part
	left  uint32
	first int64
	err   error
}

// NewRecords iterates over the records of frame, whose header is m. Call it
// only after Verify succeeded.
func NewRecords(frame []byte, m Meta) Records {
	if int64(len(frame)) < int64(m.Length) || m.Length < HeaderSize {
		return Records{err: fmt.Errorf("%w: frame shorter than its length", ErrMalformed)}
	}
	return Records{b: frame[HeaderSize:m.Length], left: m.Count, first: m.FirstTime}
}

// Next decodes the next record into r. It returns false at the end of the
// frame or on malformed bytes (see Err).
func (it *Records) Next(r *Record) bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if len(it.b) != 0 {
			it.err = fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(it.b))
		}
		return false
	}
	n, k := binary.Uvarint(it.b)
	if k <= 0 || n > uint64(len(it.b)-k) {
		it.err = fmt.Errorf("%w: record length", ErrMalformed)
		return false
	}
	body := it.b[k : k+int(n)]
	it.b = it.b[k+int(n):]
	it.left--
	if err := decodeBody(body, it.first, r); err != nil {
		it.err = err
		return false
	}
	return true
}

// Skip passes over the next record without decoding it, checking only its
// length. It returns false at the end of the frame or on a malformed
// length (see Err); a record passed over is not otherwise checked.
func (it *Records) Skip() bool {
	if it.err != nil || it.left == 0 {
		return false
	}
	n, k := binary.Uvarint(it.b)
	if k <= 0 || n > uint64(len(it.b)-k) {
		it.err = fmt.Errorf("%w: record length", ErrMalformed)
		return false
	}
	it.b = it.b[k+int(n):]
	it.left--
	return true
}

// Err returns the error that stopped Next, if any.
func (it *Records) Err() error { return it.err }

func decodeBody(b []byte, first int64, r *Record) error {
	delta, k := binary.Varint(b)
	if k <= 0 {
		return fmt.Errorf("%w: record timestamp", ErrMalformed)
	}
	r.Timestamp = first + delta
	b = b[k:]
	var ok bool
	if r.Key, b, ok = readBytes(b); !ok {
		return fmt.Errorf("%w: record key", ErrMalformed)
	}
	if r.Value, b, ok = readBytes(b); !ok {
		return fmt.Errorf("%w: record value", ErrMalformed)
	}
	nh, k := binary.Uvarint(b)
	// Each header takes at least two bytes, so a count larger than half
	// the remaining bytes is corruption, not an allocation size.
	if k <= 0 || nh > uint64(len(b)-k)/2 || nh > MaxHeaders {
		return fmt.Errorf("%w: header count", ErrMalformed)
	}
	b = b[k:]
	r.Headers = nil
	if nh > 0 {
		r.Headers = make([]Header, nh)
	}
	for i := range r.Headers {
		kl, k := binary.Uvarint(b)
		if k <= 0 || kl > uint64(len(b)-k) {
			return fmt.Errorf("%w: header key", ErrMalformed)
		}
		r.Headers[i].Key = string(b[k : k+int(kl)])
		b = b[k+int(kl):]
		if r.Headers[i].Value, b, ok = readBytes(b); !ok {
			return fmt.Errorf("%w: header value", ErrMalformed)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d stray bytes in record", ErrMalformed, len(b))
	}
	return nil
}

// appendBytes writes a length-prefixed byte string; length -1 means nil.
func appendBytes(dst, p []byte) []byte {
	if p == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(p)))
	return append(dst, p...)
}

func bytesSize(p []byte) int {
	if p == nil {
		return 1
	}
	return varintLen(int64(len(p))) + len(p)
}

func readBytes(b []byte) (p, rest []byte, ok bool) {
	n, k := binary.Varint(b)
	switch {
	case k <= 0 || n < -1 || n > int64(len(b)-k) || n > math.MaxInt32:
		return nil, b, false
	case n == -1:
		return nil, b[k:], true
	}
	end := k + int(n)
	return b[k:end:end], b[end:], true
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}
