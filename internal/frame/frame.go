// Package frame encodes and decodes runnel's on-disk frames: one producer
// batch per frame, a fixed 48-byte header followed by compactly encoded
// records. The byte layout is documented in docs/FORMAT.md; this package is
// its only implementation.
//
// Decoding never trusts a length it has not checked against the bytes it
// was given, never allocates in proportion to a length read from a file, and
// never panics on any input (see FuzzDecode).
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Header layout. Every multi-byte field is little endian.
const (
	offLength    = 0  // u32: header + records, before padding
	offVersion   = 4  // u8
	OffState     = 5  // u8: the commit marker, outside the checksum
	offKind      = 6  // u8
	offReserved  = 7  // u8, zero
	offChecksum  = 8  // u64: xxhash64 of the frame with state and checksum zeroed
	offBase      = 16 // i64: offset of the first record (seal: next segment's base)
	offCount     = 24 // u32: records in the frame
	offReserved2 = 28 // u32, zero
	offFirstTime = 32 // i64: unix nanoseconds of the first record
	offMaxTime   = 40 // i64: largest record timestamp in the frame

	// HeaderSize is the size of a frame header; records follow it.
	HeaderSize = 48
	// Align is the alignment of every frame in a segment file.
	Align = 8
	// Version is the frame format this package writes and reads.
	Version = 1
	// MaxSize bounds a frame's length. A larger length read from a file is
	// corruption, never an allocation.
	MaxSize = 32 << 20
)

// Commit-marker values of the state byte.
const (
	StateWritten   = 0 // written, not yet committed: never delivered
	StateCommitted = 1 // committed: visible to readers once the checksum matches
)

// Frame kinds.
const (
	KindRecords = 0 // a producer batch
	KindSeal    = 1 // the segment ends here; the next one starts at Base
	// KindGap marks offsets Base … Base+Count−1 as lost: a salvage
	// replaced the unreadable bytes that held them with this frame, so
	// that the records after it keep their offsets. Its checksum covers
	// the header only; the bytes after the header, up to Length, are
	// filler that nobody reads.
	KindGap = 2
)

// ErrMalformed reports bytes that are not a valid frame. Callers wrap it with
// the file and position they read it from.
var ErrMalformed = errors.New("malformed frame")

// Meta is a decoded frame header.
type Meta struct {
	Length    uint32 // header + records, before padding
	State     uint8
	Kind      uint8
	Checksum  uint64
	Base      int64
	Count     uint32
	FirstTime int64
	MaxTime   int64
}

// Size is the number of bytes the frame occupies on disk, padding included.
func (m Meta) Size() int64 { return AlignUp(int64(m.Length)) }

// Checked is the number of bytes from the frame's start that its checksum
// covers, and so that Verify needs: Length, or the header of a gap.
func (m Meta) Checked() int64 {
	if m.Kind == KindGap {
		return HeaderSize
	}
	return int64(m.Length)
}

// Committed reports whether the frame's commit marker is set.
func (m Meta) Committed() bool { return m.State == StateCommitted }

// End is the offset after the frame's last record (for a seal, its Base).
func (m Meta) End() int64 { return m.Base + int64(m.Count) }

// AlignUp rounds n up to the frame alignment.
func AlignUp(n int64) int64 { return (n + Align - 1) &^ (Align - 1) }

// IsZeroHeader reports whether b starts with an all-zero length field: the
// space past the last frame of a segment.
func IsZeroHeader(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b[offLength:]) == 0
}

// ParseMeta decodes and validates the header at the start of b. It checks
// everything that can be checked without the rest of the frame; Verify checks
// the checksum.
func ParseMeta(b []byte) (Meta, error) {
	if len(b) < HeaderSize {
		return Meta{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrMalformed, HeaderSize, len(b))
	}
	m := Meta{
		Length:    binary.LittleEndian.Uint32(b[offLength:]),
		State:     b[OffState],
		Kind:      b[offKind],
		Checksum:  binary.LittleEndian.Uint64(b[offChecksum:]),
		Base:      int64(binary.LittleEndian.Uint64(b[offBase:])),
		Count:     binary.LittleEndian.Uint32(b[offCount:]),
		FirstTime: int64(binary.LittleEndian.Uint64(b[offFirstTime:])),
		MaxTime:   int64(binary.LittleEndian.Uint64(b[offMaxTime:])),
	}
	switch {
	case b[offVersion] != Version:
		return m, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[offVersion], Version)
	case m.Length < HeaderSize || m.Length > MaxSize:
		return m, fmt.Errorf("%w: length %d outside [%d, %d]", ErrMalformed, m.Length, HeaderSize, MaxSize)
	case m.State > StateCommitted:
		return m, fmt.Errorf("%w: state byte %d", ErrMalformed, m.State)
	case m.Kind > KindGap:
		return m, fmt.Errorf("%w: kind %d", ErrMalformed, m.Kind)
	case b[offReserved] != 0 || binary.LittleEndian.Uint32(b[offReserved2:]) != 0:
		return m, fmt.Errorf("%w: reserved bytes set", ErrMalformed)
	case m.Base < 0 || m.Base > m.Base+int64(m.Count):
		return m, fmt.Errorf("%w: base offset %d", ErrMalformed, m.Base)
	case m.Kind == KindSeal && (m.Count != 0 || m.Length != HeaderSize):
		return m, fmt.Errorf("%w: seal with records", ErrMalformed)
	case m.Kind != KindRecords && (m.FirstTime != 0 || m.MaxTime != 0):
		return m, fmt.Errorf("%w: timestamps in a frame without records", ErrMalformed)
	case m.Kind == KindGap:
		// A gap's count is of lost offsets, not of records it holds.
	case int64(m.Count) > int64(m.Length-HeaderSize)/minRecordSize:
		return m, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrMalformed, m.Count, m.Length)
	}
	return m, nil
}

// Verify checks that b holds the frame described by m (the m.Checked()
// bytes its checksum covers) and that its checksum matches.
func Verify(b []byte, m Meta) error {
	n := m.Checked()
	if int64(len(b)) < n {
		return fmt.Errorf("%w: frame of %d bytes cut at %d", ErrMalformed, n, len(b))
	}
	if sum := checksum(b[:n]); sum != m.Checksum {
		return fmt.Errorf("%w: checksum %016x, want %016x", ErrMalformed, sum, m.Checksum)
	}
	return nil
}

// checksum hashes a whole frame as if its state byte and checksum field were
// zero, so that committing a frame never changes its checksum.
func checksum(b []byte) uint64 {
	// Hash the body in one pass, then the first header word (state
	// zeroed) together with that hash: two one-shot calls, no allocation.
	var tail [16]byte
	copy(tail[:offChecksum], b[:offChecksum])
	tail[OffState] = 0
	binary.LittleEndian.PutUint64(tail[offChecksum:], xxhash.Sum64(b[offBase:]))
	return xxhash.Sum64(tail[:])
}

// AppendGap appends the committed header of a gap frame that marks offsets
// base … base+count−1 as lost and spans length bytes (at least HeaderSize,
// at most MaxSize). The caller writes the length−HeaderSize filler bytes
// after it (zeros, by convention) and the padding.
func AppendGap(dst []byte, base int64, count uint32, length uint32) []byte {
	return appendBare(dst, KindGap, base, count, length)
}

// AppendSeal appends a committed seal frame saying that the next segment
// starts at offset next.
func AppendSeal(dst []byte, next int64) []byte {
	return appendBare(dst, KindSeal, next, 0, HeaderSize)
}

// appendBare appends the committed, checksummed header of a frame without
// records (a seal or a gap), whose checksum covers the header alone.
func appendBare(dst []byte, kind uint8, base int64, count, length uint32) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[offLength:], length)
	h[offVersion] = Version
	h[offKind] = kind
	binary.LittleEndian.PutUint64(h[offBase:], uint64(base))
	binary.LittleEndian.PutUint32(h[offCount:], count)
	binary.LittleEndian.PutUint64(h[offChecksum:], checksum(h))
	h[OffState] = StateCommitted
	return dst
}
