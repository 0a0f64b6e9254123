package frame

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecordRoundTrip(t *testing.T) {
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	ts := func(stamps ...int64) []Record {
		recs := make([]Record, len(stamps))
		for i, s := range stamps {
			recs[i] = Record{Timestamp: s, Value: []byte{byte(i)}}
		}
		return recs
	}
	many := make([]Record, 1000)
	for i := range many {
		many[i] = Record{
			Timestamp: int64(1_700_000_000_000_000_000 + i*1000),
			Key:       fmt.Appendf(nil, "key-%d", i%7),
			Value:     bytes.Repeat([]byte{byte(i)}, i%300),
		}
	}

	tests := []struct {
		name string
		recs []Record
		want []Record // when decoding differs from recs
	}{
		{name: "no records"},
		{name: "nil key, nil value", recs: []Record{{}}},
		{name: "empty key, empty value", recs: []Record{{Key: []byte{}, Value: []byte{}}}},
		{name: "nil key, empty value", recs: []Record{{Value: []byte{}}}},
		{name: "empty key, nil value", recs: []Record{{Key: []byte{}}}},
		{name: "key and value", recs: []Record{{Key: []byte("k"), Value: []byte("v")}}},
		{name: "nil and empty alternate", recs: []Record{
			{Key: nil, Value: []byte{}}, {Key: []byte{}, Value: nil}, {Key: nil, Value: nil}, {Key: []byte{}, Value: []byte{}},
		}},
		{name: "one header", recs: []Record{{Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}}}}},
		{name: "several headers", recs: []Record{{Key: []byte("k"), Value: []byte("v"), Headers: []Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "nil", Value: nil},
			{Key: "empty", Value: []byte{}},
			{Key: "", Value: []byte("empty key")},
			{Key: "", Value: nil},
			{Key: "content-type", Value: []byte("repeated keys keep their order")},
		}}}},
		{name: "records with and without headers", recs: []Record{
			{Value: []byte("a"), Headers: []Header{{Key: "x", Value: []byte("1")}}},
			{Value: []byte("b")},
			{Value: []byte("c"), Headers: []Header{{Key: "y", Value: nil}, {Key: "z", Value: []byte{}}}},
		}},
		{
			// The encoding has a header count, not a nil marker.
			name: "empty header list decodes as nil",
			recs: []Record{{Value: []byte("v"), Headers: []Header{}}},
			want: []Record{{Value: []byte("v")}},
		},
		{name: "binary key and header value", recs: []Record{{
			Key: []byte{0, 0xff, 0x80, 0}, Value: []byte{0}, Headers: []Header{{Key: "\x00\xff", Value: []byte{0x80}}},
		}}},
		{name: "equal timestamps", recs: ts(5, 5, 5, 5)},
		{name: "increasing timestamps", recs: ts(1, 2, 1000, 1<<40)},
		{name: "decreasing timestamps", recs: ts(1<<40, 1000, 2, 1)},
		{name: "negative timestamps", recs: ts(-1, -1<<40, 0, -5)},
		{name: "zero then negative delta", recs: ts(0, -1)},
		{name: "half extremes", recs: ts(math.MinInt64/2, math.MaxInt64/2, 0, math.MinInt64/2)},
		{
			// Deltas wrap around 2^64 both ways and wrap back on decode.
			name: "full extremes", recs: ts(math.MinInt64, math.MaxInt64, 0, math.MaxInt64, math.MinInt64),
		},
		{name: "max first", recs: ts(math.MaxInt64, math.MinInt64)},
		{name: "1 MiB value", recs: []Record{{Key: []byte("big"), Value: mib}}},
		{name: "1 MiB key and header", recs: []Record{{Key: mib, Headers: []Header{{Key: string(mib[:1000]), Value: mib}}}}},
		{name: "large values among small ones", recs: []Record{{Value: []byte("a")}, {Value: mib}, {Value: []byte("b")}}},
		{name: "1000 records", recs: many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.recs
			}
			f := buildFrame(1000, tt.recs)
			m, got := decodeFrame(t, f)
			if diff := cmp.Diff(want, got, sameBytes); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if m.Base != 1000 || int(m.Count) != len(tt.recs) || m.Kind != KindRecords {
				t.Errorf("meta %+v for %d records at 1000", m, len(tt.recs))
			}
			var first, maxTime int64
			for i, r := range tt.recs {
				if i == 0 {
					first, maxTime = r.Timestamp, r.Timestamp
				}
				maxTime = max(maxTime, r.Timestamp)
			}
			if m.FirstTime != first || m.MaxTime != maxTime {
				t.Errorf("times (%d, %d), want (%d, %d)", m.FirstTime, m.MaxTime, first, maxTime)
			}
		})
	}
}

// TestRecordsAliasFrame checks the documented buffer lifetime: decoded
// bytes point into the frame and cannot be appended over their neighbours.
func TestRecordsAliasFrame(t *testing.T) {
	f := buildFrame(0, []Record{{Key: []byte("ab"), Value: []byte("cd")}, {Value: []byte("ef")}})
	_, recs := decodeFrame(t, f)
	_ = append(recs[0].Key, 'X')
	_ = append(recs[0].Value, 'Y')
	if diff := cmp.Diff([]byte("cd"), recs[0].Value); diff != "" {
		t.Errorf("append to a key overwrote the value (-want +got):\n%s", diff)
	}
	_, again := decodeFrame(t, f)
	if diff := cmp.Diff(recs, again); diff != "" {
		t.Errorf("append to a value overwrote the frame (-want +got):\n%s", diff)
	}
	recs[1].Value[0] = 'Z'
	if !bytes.Contains(f, []byte("Zf")) {
		t.Error("decoded value does not alias the frame")
	}
}

// TestRecordSize checks that RecordSize is exactly what Add appends when
// the timestamp delta is zero.
func TestRecordSize(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 300)
	tests := []struct {
		name    string
		key     []byte
		value   []byte
		headers []Header
	}{
		{"nil everything", nil, nil, nil},
		{"empty everything", []byte{}, []byte{}, []Header{}},
		{"small", []byte("k"), []byte("value"), nil},
		{"value of 63 bytes", nil, big[:63], nil},  // varint length fits one byte
		{"value of 64 bytes", nil, big[:64], nil},  // and needs two from here
		{"body of 127 bytes", nil, big[:123], nil}, // uvarint record length: one byte
		{"body of 128 bytes", nil, big[:124], nil}, // two bytes
		{"headers", []byte("k"), big, []Header{{Key: "a", Value: nil}, {Key: "", Value: []byte{}}, {Key: string(big), Value: big}}},
		{"1 MiB", nil, bytes.Repeat(big, 3500), nil},
		{"many headers", nil, nil, make([]Header, 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			for i, ts := range []int64{0, 0, 77} { // first record, then another at delta 0
				before := b.Len()
				if got := b.Add(ts, tt.key, tt.value, tt.headers); got != RecordSize(tt.key, tt.value, tt.headers) {
					t.Errorf("record %d: Add returned %d, RecordSize says %d", i, got, RecordSize(tt.key, tt.value, tt.headers))
				}
				if i == 2 {
					// A nonzero delta only ever costs more.
					if b.Len()-before < RecordSize(tt.key, tt.value, tt.headers) {
						t.Errorf("record at delta 77 took %d bytes, less than RecordSize", b.Len()-before)
					}
					continue
				}
				if got, want := b.Len()-before, RecordSize(tt.key, tt.value, tt.headers); got != want {
					t.Errorf("record %d: Add appended %d bytes, RecordSize says %d", i, got, want)
				}
			}
			if f := b.Finish(0); len(f) != int(AlignUp(int64(b.Len()))) {
				t.Errorf("Len %d after Finish, frame is %d bytes", b.Len(), len(f))
			}
		})
	}
}

// TestBodyOfSize checks that AddSized finds a record's body length from
// its RecordSize at every length of the body's length and either side of
// where it changes.
func TestBodyOfSize(t *testing.T) {
	for _, edge := range []int{0, 1 << 7, 1 << 14, 1 << 21, 1 << 28} {
		for body := max(0, edge-3); body <= edge+3; body++ {
			if got := bodyOfSize(uvarintLen(uint64(body)) + body); got != body {
				t.Errorf("body of %d bytes: bodyOfSize says %d", body, got)
			}
		}
	}
}

// TestAddSizedWrongSize: a size that is not the record's RecordSize would
// leave a frame that does not decode, so AddSized refuses it.
func TestAddSizedWrongSize(t *testing.T) {
	value := []byte("value")
	size := RecordSize(nil, value, nil)
	for _, wrong := range []int{size - 1, size + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddSized with size %d for a record of %d: no panic", wrong, size)
				}
			}()
			var b Builder
			b.AddSized(wrong, 0, nil, value, nil)
		}()
	}
}

func TestBuilderReuse(t *testing.T) {
	var b Builder
	if b.Len() != HeaderSize || b.Count() != 0 {
		t.Fatalf("zero Builder: Len %d, Count %d", b.Len(), b.Count())
	}
	empty := bytes.Clone(b.Finish(9))
	m, recs := decodeFrame(t, empty)
	if len(empty) != HeaderSize || m.Count != 0 || len(recs) != 0 || m.Base != 9 {
		t.Errorf("empty frame: %d bytes, meta %+v", len(empty), m)
	}

	b.Reset()
	b.Add(-50, []byte("old"), []byte("frame"), nil)
	b.Add(900, nil, nil, nil)
	b.Finish(0)

	b.Reset()
	if b.Len() != HeaderSize || b.Count() != 0 {
		t.Fatalf("after Reset: Len %d, Count %d", b.Len(), b.Count())
	}
	// An empty frame after a full one must not inherit its times.
	if f := b.Finish(9); !bytes.Equal(f, empty) {
		m, _ := ParseMeta(f)
		t.Errorf("empty frame after reuse differs from a fresh one: %+v", m)
	}

	b.Reset()
	want := sampleRecords()
	for _, r := range want {
		b.Add(r.Timestamp, r.Key, r.Value, r.Headers)
	}
	if b.Count() != len(want) {
		t.Errorf("Count %d, want %d", b.Count(), len(want))
	}
	f := bytes.Clone(b.Finish(3))
	if diff := cmp.Diff(buildFrame(3, want), f); diff != "" {
		t.Errorf("reused builder frame differs from a fresh one (-want +got):\n%s", diff)
	}
}

// TestBuilderWarmReuse: a builder reused after a large frame full of
// 0xFF bytes clears its spare capacity ahead of the records (warmUp)
// without touching them: frames of many sizes, continued after Finish
// too, match a fresh builder's, and the bytes just past the frame's end
// are already zero.
func TestBuilderWarmReuse(t *testing.T) {
	var b Builder
	junk := bytes.Repeat([]byte{0xFF}, 1000)
	for range 300 {
		b.Add(1, junk, junk, nil)
	}
	b.Finish(0)
	for _, size := range []int{0, 1, 100, 1000, 5000} {
		b.Reset()
		var want []Record
		for i := range 200 {
			r := Record{Timestamp: int64(i), Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{byte(i)}, size)}
			want = append(want, r)
			b.Add(r.Timestamp, r.Key, r.Value, r.Headers)
			if i == 77 {
				b.Finish(5) // continued below: its padding goes
			}
		}
		if f, w := b.Finish(5), buildFrame(5, want); !bytes.Equal(f, w) {
			t.Fatalf("value size %d: reused builder's frame (%d bytes) differs from a fresh one's (%d bytes)", size, len(f), len(w))
		}
		b.Add(0, nil, nil, nil)
		end := b.Len()
		ahead := b.buf[end:min(cap(b.buf), end+warmAhead)]
		if len(ahead) > 0 && end >= warmAhead && !bytes.Equal(ahead, make([]byte, len(ahead))) {
			t.Errorf("value size %d: the %d bytes past the frame's end (%d) are not cleared ahead", size, len(ahead), end)
		}
	}
}

// TestBuilderAddAfterFinish checks that Finish leaves the builder able to
// continue the frame: its padding must not end up between records.
func TestBuilderAddAfterFinish(t *testing.T) {
	recs := sampleRecords()
	var b Builder
	b.Add(recs[0].Timestamp, recs[0].Key, recs[0].Value, recs[0].Headers)
	b.Finish(0)
	b.Finish(0) // twice: must be idempotent
	for _, r := range recs[1:] {
		b.Add(r.Timestamp, r.Key, r.Value, r.Headers)
	}
	f := bytes.Clone(b.Finish(0))
	if diff := cmp.Diff(buildFrame(0, recs), f); diff != "" {
		t.Errorf("frame continued after Finish differs (-want +got):\n%s", diff)
	}
	if again := b.Finish(0); !bytes.Equal(again, f) {
		t.Error("a second Finish changed the frame")
	}
}

// TestRecordsReject builds frames whose header and checksum are valid but
// whose records are not, and checks that decoding stops with an error.
func TestRecordsReject(t *testing.T) {
	for _, c := range resealedCases() {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMeta(c.data)
			if err != nil {
				t.Fatalf("ParseMeta: %v", err)
			}
			if err := Verify(c.data, m); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			it := NewRecords(c.data, m)
			var r Record
			n := 0
			for it.Next(&r) {
				n++
			}
			if !errors.Is(it.Err(), ErrMalformed) || !strings.Contains(it.Err().Error(), c.wantErr) {
				t.Fatalf("after %d records: err = %v, want %q", n, it.Err(), c.wantErr)
			}
			if it.Next(&r) {
				t.Error("Next succeeded after an error")
			}
		})
	}
}

// Skip passes over records by their lengths: the record Next decodes after
// k Skips is record k, and Skip stops at the end and at a bad length.
func TestRecordsSkip(t *testing.T) {
	var b Builder
	for i := range 50 {
		b.Add(int64(i), fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte{byte(i)}, i*7), []Header{{Key: "h", Value: []byte{byte(i)}}})
	}
	data := b.Finish(100)
	m, err := ParseMeta(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{0, 1, 17, 49} {
		it := NewRecords(data, m)
		for range k {
			if !it.Skip() {
				t.Fatalf("Skip failed: %v", it.Err())
			}
		}
		var r Record
		if !it.Next(&r) || string(r.Key) != fmt.Sprintf("k%d", k) || r.Timestamp != int64(k) {
			t.Errorf("after %d Skips: %q at %d, %v", k, r.Key, r.Timestamp, it.Err())
		}
	}
	it := NewRecords(data, m)
	n := 0
	for it.Skip() {
		n++
	}
	if n != 50 || it.Err() != nil {
		t.Errorf("skipped %d of 50, %v", n, it.Err())
	}
	for _, c := range resealedCases() {
		if !strings.Contains(c.wantErr, "record length") {
			continue
		}
		m, _ := ParseMeta(c.data)
		it := NewRecords(c.data, m)
		for it.Skip() {
		}
		if !errors.Is(it.Err(), ErrMalformed) {
			t.Errorf("%s: Skip to the end: %v, want ErrMalformed", c.name, it.Err())
		}
	}
}

func TestAllocs(t *testing.T) {
	value := bytes.Repeat([]byte{'v'}, 100)
	key := []byte("key")
	var b Builder
	add := func() {
		b.Reset()
		for i := range 100 {
			b.Add(int64(i), key, value, nil)
		}
		b.Finish(0)
	}
	add() // grow the buffer once
	if n := testing.AllocsPerRun(50, add); n != 0 {
		t.Errorf("building a frame of 100 records: %v allocations, want 0", n)
	}

	f := bytes.Clone(b.Finish(0))
	m, err := ParseMeta(f)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	decode := func() {
		if err := Verify(f, m); err != nil {
			t.Fatal(err)
		}
		it := NewRecords(f, m)
		for it.Next(&r) {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	if n := testing.AllocsPerRun(50, decode); n != 0 {
		t.Errorf("verifying and decoding 100 records without headers: %v allocations, want 0", n)
	}
}

func benchValue(n int) []byte { return bytes.Repeat([]byte{'v'}, n) }

func BenchmarkBuilderAdd(b *testing.B) {
	for _, bc := range []struct {
		name    string
		headers []Header
	}{
		{"value=100B", nil},
		{"value=100B/headers=2", []Header{{Key: "trace-id", Value: []byte("0123456789abcdef")}, {Key: "type", Value: []byte("event")}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			key, value := []byte("key-0001"), benchValue(100)
			var fb Builder
			b.SetBytes(int64(RecordSize(key, value, bc.headers)))
			b.ReportAllocs()
			ts := int64(1_700_000_000_000_000_000)
			for b.Loop() {
				if fb.Len() >= 1<<20 {
					fb.Finish(0)
					fb.Reset()
				}
				ts += 1000
				fb.Add(ts, key, value, bc.headers)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	const records = 1000
	for _, bc := range []struct {
		name    string
		headers []Header
	}{
		{"records=1000/value=100B", nil},
		{"records=1000/value=100B/headers=2", []Header{{Key: "trace-id", Value: []byte("0123456789abcdef")}, {Key: "type", Value: []byte("event")}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var fb Builder
			value := benchValue(100)
			for i := range records {
				fb.Add(int64(1_700_000_000_000_000_000+i*1000), fmt.Appendf(nil, "key-%04d", i), value, bc.headers)
			}
			f := bytes.Clone(fb.Finish(0))
			m, err := ParseMeta(f)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			var r Record
			for b.Loop() {
				if err := Verify(f, m); err != nil {
					b.Fatal(err)
				}
				it := NewRecords(f, m)
				n := 0
				for it.Next(&r) {
					n++
				}
				if n != records || it.Err() != nil {
					b.Fatalf("decoded %d records: %v", n, it.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
		})
	}
}

// TestBuilderAppend: records appended from another builder decode exactly
// as if they had been added one by one, whatever the two frames' first
// timestamps (their deltas are re-based, wrapping as Add's do), into an
// empty builder, after a Finish, and from a finished source.
func TestBuilderAppend(t *testing.T) {
	stamped := func(value string, stamps ...int64) []Record {
		recs := make([]Record, len(stamps))
		for i, ts := range stamps {
			recs[i] = Record{Timestamp: ts, Key: fmt.Appendf(nil, "%s%d", value, i), Value: []byte(value)}
		}
		return recs
	}
	tests := []struct {
		name     string
		dst, src []Record
	}{
		{"into empty", nil, sampleRecords()},
		{"nothing to append", sampleRecords(), nil},
		{"same first timestamp", stamped("a", 100, 200), stamped("b", 100, 50)},
		{"later source", stamped("a", 100), stamped("b", 1<<40, 1<<40+1)},
		{"earlier source", stamped("a", 1<<40), stamped("b", -5, 7, 1<<41)},
		{"headers and nil values", stamped("a", 3), sampleRecords()},
		{"extremes", stamped("a", math.MaxInt64), stamped("b", math.MinInt64, 0, math.MaxInt64)},
		{"delta grows past one byte", stamped("a", 0), stamped("b", 1<<62, 1<<62)},
	}
	for _, tt := range tests {
		for _, finished := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/finished=%v", tt.name, finished), func(t *testing.T) {
				var dst, src Builder
				for _, r := range tt.dst {
					dst.Add(r.Timestamp, r.Key, r.Value, r.Headers)
				}
				for _, r := range tt.src {
					src.Add(r.Timestamp, r.Key, r.Value, r.Headers)
				}
				if finished {
					dst.Finish(0)
					src.Finish(0)
				}
				srcFrame := bytes.Clone(src.Finish(0))
				dst.Append(&src)
				want := append(append([]Record(nil), tt.dst...), tt.src...)
				f := bytes.Clone(dst.Finish(7))
				if diff := cmp.Diff(buildFrame(7, want), f); diff != "" {
					t.Errorf("appended frame differs from one built record by record (-want +got):\n%s", diff)
				}
				if _, got := decodeFrame(t, f); len(got) != len(want) {
					t.Errorf("decoded %d records, want %d", len(got), len(want))
				}
				if !bytes.Equal(src.Finish(0), srcFrame) {
					t.Error("Append changed its source")
				}
			})
		}
	}
}
