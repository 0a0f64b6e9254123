package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/google/go-cmp/cmp"
)

// sameBytes compares byte slices with bytes.Equal, which is much faster
// than cmp's element-wise walk on megabyte values, while keeping nil and
// empty distinct.
var sameBytes = cmp.Comparer(func(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
})

// buildFrame encodes recs into one frame at base and returns a copy that
// no later Builder call can change.
func buildFrame(base int64, recs []Record) []byte {
	var b Builder
	for _, r := range recs {
		b.Add(r.Timestamp, r.Key, r.Value, r.Headers)
	}
	return bytes.Clone(b.Finish(base))
}

// decodeFrame parses, verifies and decodes the frame at the start of b,
// failing the test on any error.
func decodeFrame(t testing.TB, b []byte) (Meta, []Record) {
	t.Helper()
	m, err := ParseMeta(b)
	if err != nil {
		t.Fatalf("ParseMeta: %v", err)
	}
	if err := Verify(b, m); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var recs []Record
	it := NewRecords(b, m)
	var r Record
	for it.Next(&r) {
		recs = append(recs, r)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("decoding records: %v", err)
	}
	if len(recs) != int(m.Count) {
		t.Fatalf("decoded %d records, header says %d", len(recs), m.Count)
	}
	return m, recs
}

// sampleRecords is a small batch with every shape of field.
func sampleRecords() []Record {
	return []Record{
		{Timestamp: 1_700_000_000_000_000_000, Key: []byte("user-1"), Value: []byte(`{"op":"login"}`)},
		{Timestamp: 1_700_000_000_000_000_500, Key: nil, Value: []byte{}},
		{Timestamp: 1_699_999_999_999_999_000, Key: []byte{}, Value: nil, Headers: []Header{
			{Key: "trace", Value: []byte("abc")},
			{Key: "", Value: nil},
			{Key: "empty", Value: []byte{}},
		}},
	}
}

func TestFinishHeader(t *testing.T) {
	recs := sampleRecords()
	f := buildFrame(42, recs)
	m, got := decodeFrame(t, f)
	if diff := cmp.Diff(recs, got, sameBytes); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	want := Meta{
		Length:    m.Length, // checked below against the bytes
		State:     StateWritten,
		Kind:      KindRecords,
		Checksum:  checksum(f[:m.Length]),
		Base:      42,
		Count:     3,
		FirstTime: recs[0].Timestamp,
		MaxTime:   recs[1].Timestamp,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	if m.Size() != int64(len(f)) {
		t.Errorf("Size() = %d, frame is %d bytes", m.Size(), len(f))
	}
	if m.End() != 45 {
		t.Errorf("End() = %d, want 45", m.End())
	}
	if m.Committed() {
		t.Error("a finished frame reports committed before its state byte is set")
	}
}

func TestFinishAlignment(t *testing.T) {
	var b Builder
	// Dirty the buffer first so that padding taken from reused capacity
	// would show up as non-zero bytes.
	b.Add(0, bytes.Repeat([]byte{0xff}, 64), bytes.Repeat([]byte{0xff}, 64), nil)
	b.Finish(0)
	for n := 0; n <= 3*Align; n++ {
		b.Reset()
		b.Add(0, nil, bytes.Repeat([]byte{0xaa}, n), nil)
		f := b.Finish(0)
		m, err := ParseMeta(f)
		if err != nil {
			t.Fatalf("value of %d bytes: %v", n, err)
		}
		if len(f)%Align != 0 {
			t.Errorf("value of %d bytes: frame of %d bytes is not %d-aligned", n, len(f), Align)
		}
		if int64(len(f)) != AlignUp(int64(m.Length)) || len(f)-int(m.Length) >= Align {
			t.Errorf("value of %d bytes: length %d padded to %d", n, m.Length, len(f))
		}
		if pad := f[m.Length:]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("value of %d bytes: padding %x is not zero", n, pad)
		}
	}
}

func TestAlignUp(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{
		{0, 0}, {1, 8}, {7, 8}, {8, 8}, {9, 16}, {HeaderSize, HeaderSize}, {MaxSize - 1, MaxSize},
	} {
		if got := AlignUp(c.in); got != c.want {
			t.Errorf("AlignUp(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestParseMetaAccepts(t *testing.T) {
	valid := buildFrame(7, sampleRecords())
	tests := []struct {
		name   string
		mutate func(h []byte)
	}{
		{"as built", func([]byte) {}},
		{"committed", func(h []byte) { h[OffState] = StateCommitted }},
		{"length at MaxSize", func(h []byte) { binary.LittleEndian.PutUint32(h[offLength:], MaxSize) }},
		{"largest base", func(h []byte) {
			binary.LittleEndian.PutUint64(h[offBase:], math.MaxInt64-3)
		}},
		{"count that just fits", func(h []byte) {
			binary.LittleEndian.PutUint32(h[offLength:], HeaderSize+2*minRecordSize)
			binary.LittleEndian.PutUint32(h[offCount:], 2)
		}},
		{"no records", func(h []byte) {
			binary.LittleEndian.PutUint32(h[offLength:], HeaderSize)
			binary.LittleEndian.PutUint32(h[offCount:], 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bytes.Clone(valid[:HeaderSize])
			tt.mutate(h)
			if _, err := ParseMeta(h); err != nil {
				t.Errorf("ParseMeta: %v", err)
			}
		})
	}
}

func TestParseMetaRejects(t *testing.T) {
	valid := buildFrame(7, sampleRecords())
	seal := AppendSeal(nil, 100)
	gap := AppendGap(nil, 100, 7, 4096)
	put32 := func(off int, v uint32) func([]byte) {
		return func(h []byte) { binary.LittleEndian.PutUint32(h[off:], v) }
	}
	put64 := func(off int, v int64) func([]byte) {
		return func(h []byte) { binary.LittleEndian.PutUint64(h[off:], uint64(v)) }
	}
	setByte := func(off int, v byte) func([]byte) {
		return func(h []byte) { h[off] = v }
	}
	tests := []struct {
		name   string
		from   []byte
		mutate func(h []byte)
		want   string
	}{
		{"version 0", valid, setByte(offVersion, 0), "version 0"},
		{"version 2", valid, setByte(offVersion, 2), "version 2"},
		{"zero length", valid, put32(offLength, 0), "length 0 outside"},
		{"length below header", valid, put32(offLength, HeaderSize-1), "length 47 outside"},
		{"length above MaxSize", valid, put32(offLength, MaxSize+1), "outside"},
		{"length all ones", valid, put32(offLength, math.MaxUint32), "outside"},
		{"state 2", valid, setByte(OffState, 2), "state byte 2"},
		{"state 0xff", valid, setByte(OffState, 0xff), "state byte 255"},
		{"kind 3", valid, setByte(offKind, 3), "kind 3"},
		{"records frame as a gap keeps its times", valid, setByte(offKind, KindGap), "timestamps"},
		{"kind 0xff", valid, setByte(offKind, 0xff), "kind 255"},
		{"reserved byte", valid, setByte(offReserved, 1), "reserved"},
		{"second reserved word, low byte", valid, setByte(offReserved2, 1), "reserved"},
		{"second reserved word, high byte", valid, setByte(offReserved2+3, 0x80), "reserved"},
		{"negative base", valid, put64(offBase, -1), "base offset -1"},
		{"most negative base", valid, put64(offBase, math.MinInt64), "base offset"},
		{"base plus count overflows", valid, put64(offBase, math.MaxInt64-1), "base offset"},
		{"seal with a count", seal, put32(offCount, 1), "seal with records"},
		{"seal with a body", seal, put32(offLength, HeaderSize+8), "seal with records"},
		{"seal with a time", seal, put64(offMaxTime, 1), "timestamps"},
		{"gap with a time", gap, put64(offFirstTime, -1), "timestamps"},
		{"gap shorter than a header", gap, put32(offLength, HeaderSize-8), "outside"},
		{"impossible count", valid, func(h []byte) {
			binary.LittleEndian.PutUint32(h[offLength:], HeaderSize+2*minRecordSize+minRecordSize-1)
			binary.LittleEndian.PutUint32(h[offCount:], 3)
		}, "3 records cannot fit"},
		{"count all ones", valid, put32(offCount, math.MaxUint32), "cannot fit"},
		{"records in a header-only frame", valid, func(h []byte) {
			binary.LittleEndian.PutUint32(h[offLength:], HeaderSize)
			binary.LittleEndian.PutUint32(h[offCount:], 1)
		}, "1 records cannot fit in 48 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bytes.Clone(tt.from[:HeaderSize])
			tt.mutate(h)
			_, err := ParseMeta(h)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMeta error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMeta error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseMetaShort(t *testing.T) {
	f := buildFrame(0, sampleRecords())
	for n := range HeaderSize {
		if _, err := ParseMeta(f[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMeta of %d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
}

// TestVerifyBitFlips flips every bit of a small frame in turn. Each flip
// inside the frame's length, except in the state byte, must be caught by
// ParseMeta or Verify.
func TestVerifyBitFlips(t *testing.T) {
	f := buildFrame(3, []Record{
		{Timestamp: 10, Key: []byte("k"), Value: []byte("v1")},
		{Timestamp: 9, Key: nil, Value: []byte{}, Headers: []Header{{Key: "h", Value: []byte("x")}}},
	})
	m, _ := decodeFrame(t, f)
	if m.Size() == int64(m.Length) {
		t.Fatal("test frame needs padding to exercise flips past its length")
	}
	for i := range f {
		for bit := range 8 {
			g := bytes.Clone(f)
			g[i] ^= 1 << bit
			gm, err := ParseMeta(g)
			if err == nil {
				err = Verify(g, gm)
			}
			switch {
			case i == OffState:
				// 0 -> 1 is the commit and must verify; any other
				// value is rejected by ParseMeta.
				if (bit == 0) != (err == nil) {
					t.Errorf("state byte bit %d: err = %v", bit, err)
				}
			case i >= int(m.Length):
				// Padding lies outside the checksum: readers
				// never look at it.
				if err != nil {
					t.Errorf("padding byte %d bit %d: %v", i, bit, err)
				}
			case err == nil:
				t.Errorf("flip of byte %d bit %d went unnoticed", i, bit)
			case !errors.Is(err, ErrMalformed):
				t.Errorf("byte %d bit %d: err = %v, want ErrMalformed", i, bit, err)
			}
		}
	}
}

func TestCommitKeepsChecksum(t *testing.T) {
	f := buildFrame(0, sampleRecords())
	before, _ := decodeFrame(t, f)
	f[OffState] = StateCommitted
	after, _ := decodeFrame(t, f)
	if !after.Committed() {
		t.Error("frame with state 1 is not committed")
	}
	if after.Checksum != before.Checksum {
		t.Errorf("checksum changed on commit: %016x -> %016x", before.Checksum, after.Checksum)
	}
	before.State = StateCommitted
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("meta after commit (-want +got):\n%s", diff)
	}
}

func TestTruncated(t *testing.T) {
	f := buildFrame(0, sampleRecords())
	m, _ := decodeFrame(t, f)
	for n := HeaderSize; n < int(m.Length); n++ {
		cut := f[:n]
		gm, err := ParseMeta(cut)
		if err != nil {
			t.Fatalf("cut at %d: ParseMeta needs only the header, got %v", n, err)
		}
		if err := Verify(cut, gm); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "cut at") {
			t.Errorf("cut at %d: Verify err = %v, want a cut frame", n, err)
		}
		// A caller that skips Verify still gets an error, not a panic.
		it := NewRecords(cut, gm)
		var r Record
		if it.Next(&r) || !errors.Is(it.Err(), ErrMalformed) {
			t.Errorf("cut at %d: records decoded from a cut frame, err = %v", n, it.Err())
		}
	}
	// The padding is not needed to verify or decode.
	decodeFrame(t, f[:m.Length])
}

func TestAppendSeal(t *testing.T) {
	for _, next := range []int64{0, 1, 1 << 40, math.MaxInt64} {
		prefix := []byte("previous frames")
		b := AppendSeal(bytes.Clone(prefix), next)
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatalf("AppendSeal(%d) changed the bytes before it", next)
		}
		s := b[len(prefix):]
		if len(s) != HeaderSize {
			t.Fatalf("seal is %d bytes, want %d", len(s), HeaderSize)
		}
		m, recs := decodeFrame(t, s)
		want := Meta{
			Length:   HeaderSize,
			State:    StateCommitted,
			Kind:     KindSeal,
			Checksum: m.Checksum,
			Base:     next,
		}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("seal meta (-want +got):\n%s", diff)
		}
		if m.End() != next || m.Size() != HeaderSize || len(recs) != 0 {
			t.Errorf("seal at %d: End %d, Size %d, %d records", next, m.End(), m.Size(), len(recs))
		}
	}
	if bytes.Equal(AppendSeal(nil, 1), AppendSeal(nil, 2)) {
		t.Error("seals for different offsets are identical")
	}
}

// TestAppendGap checks a gap frame: any count, including none and more
// than its bytes could hold as records; a checksum over its header alone,
// so that the filler after it may be anything; and no records.
func TestAppendGap(t *testing.T) {
	for _, tt := range []struct {
		base   int64
		count  uint32
		length uint32
	}{{0, 0, HeaderSize}, {5, 1, HeaderSize}, {1 << 40, math.MaxUint32, 4096}, {9, 3, MaxSize}} {
		h := AppendGap(nil, tt.base, tt.count, tt.length)
		if len(h) != HeaderSize {
			t.Fatalf("gap header is %d bytes", len(h))
		}
		m, err := ParseMeta(h)
		if err != nil {
			t.Fatalf("ParseMeta(gap %+v): %v", tt, err)
		}
		want := Meta{Length: tt.length, State: StateCommitted, Kind: KindGap, Checksum: m.Checksum, Base: tt.base, Count: tt.count}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("gap meta (-want +got):\n%s", diff)
		}
		if m.Checked() != HeaderSize || m.End() != tt.base+int64(tt.count) || m.Size() != AlignUp(int64(tt.length)) {
			t.Errorf("gap %+v: Checked %d, End %d, Size %d", tt, m.Checked(), m.End(), m.Size())
		}
		// The filler is not checked: garbage after the header, or none.
		withFiller := append(bytes.Clone(h), bytes.Repeat([]byte{0xAB}, int(min(tt.length, 1024))-HeaderSize)...)
		if err := Verify(withFiller, m); err != nil {
			t.Errorf("Verify(gap with filler): %v", err)
		}
		if err := Verify(h, m); err != nil {
			t.Errorf("Verify(gap header alone): %v", err)
		}
		for i := range HeaderSize {
			if i == OffState {
				continue
			}
			bad := bytes.Clone(h)
			bad[i] ^= 0x10
			if m2, err := ParseMeta(bad); err == nil && Verify(bad, m2) == nil {
				t.Errorf("gap %+v with byte %d flipped still verifies", tt, i)
			}
		}
	}
	// The example in docs/FORMAT.md.
	if m, _ := ParseMeta(AppendGap(nil, 7, 3, 64)); m.Checksum != 0xbb4ddad93012d8ec {
		t.Errorf("gap(7, 3, 64) checksum %016x; docs/FORMAT.md shows bb4ddad93012d8ec", m.Checksum)
	}
	if err := Verify(AppendGap(nil, 1, 1, HeaderSize)[:HeaderSize-1], Meta{Kind: KindGap, Length: HeaderSize}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Verify of a cut gap header: %v", err)
	}
}

func TestIsZeroHeader(t *testing.T) {
	f := buildFrame(0, sampleRecords())
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"nil", nil, false},
		{"three zero bytes", make([]byte, 3), false},
		{"zero length field", make([]byte, 4), true},
		{"zeroed header", make([]byte, HeaderSize), true},
		{"zero length, other bytes set", []byte{0, 0, 0, 0, 1, 1, 1, 1}, true},
		{"a frame", f, false},
		{"a seal", AppendSeal(nil, 9), false},
	}
	for _, tt := range tests {
		if got := IsZeroHeader(tt.b); got != tt.want {
			t.Errorf("%s: IsZeroHeader = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestChecksumDefinition pins the checksum to the definition in
// docs/FORMAT.md, written out independently of checksum().
func TestChecksumDefinition(t *testing.T) {
	f := buildFrame(5, sampleRecords())
	f[OffState] = StateCommitted
	m, _ := decodeFrame(t, f)
	var msg [16]byte
	copy(msg[:8], f[:8])
	msg[OffState] = 0
	binary.LittleEndian.PutUint64(msg[8:], xxhash.Sum64(f[16:m.Length]))
	if want := xxhash.Sum64(msg[:]); m.Checksum != want {
		t.Errorf("checksum %016x, definition gives %016x", m.Checksum, want)
	}
}
