package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the seed corpus in "+seedDir)

// seedDir holds the generated seed corpus of FuzzDecode. The files are
// also golden: TestSeedCorpus fails when the encoding they were made with
// changes, and go test -run TestWriteSeedCorpus -update rewrites them.
const seedDir = "../../testdata/frame"

// FuzzDecode reads its input as a segment reader does: frames back to back
// at aligned positions until a zero length field, the end of the input or
// the first invalid frame. It must never panic, never yield more records
// than a header announces, and re-encoding what it decoded must give the
// same records back (and the same bytes, for a frame a Builder could have
// written).
func FuzzDecode(f *testing.F) {
	entries, err := os.ReadDir(seedDir)
	if err != nil {
		f.Fatalf("seed corpus: %v (run go test -run TestWriteSeedCorpus -update)", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(seedDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	committed := buildFrame(10, []Record{{Timestamp: 1, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: nil}}}})
	committed[OffState] = StateCommitted
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	f.Add(committed)
	f.Add(append(bytes.Clone(committed), committed[:HeaderSize+3]...))
	f.Add(AppendSeal(nil, 0))
	f.Add(AppendSeal(bytes.Clone(committed), 11))
	f.Add(append(AppendGap(bytes.Clone(committed), 11, 4, 64), make([]byte, 16)...))
	f.Add([]byte("this is not a frame, only text long enough to fill a header"))
	f.Add(resealedCases()[0].data)

	f.Fuzz(func(t *testing.T, data []byte) {
		checkSegment(t, data)
	})
}

// checkSegment runs the fuzz checks over data and returns the number of
// valid frames before the first error, whether each of them was canonical
// (byte-identical to its re-encoding) and the error that stopped the scan.
func checkSegment(t *testing.T, data []byte) (canonical []bool, err error) {
	t.Helper()
	for pos := 0; pos < len(data); {
		rest := data[pos:]
		if IsZeroHeader(rest) {
			return canonical, nil
		}
		m, err := ParseMeta(rest)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMeta at %d: error %v does not wrap ErrMalformed", pos, err)
			}
			return canonical, err
		}
		if err := Verify(rest, m); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify at %d: error %v does not wrap ErrMalformed", pos, err)
			}
			checkResealed(t, rest, m)
			return canonical, err
		}
		if m.Kind == KindGap {
			checkGap(t, rest, m)
			pos += int(m.Size())
			continue
		}
		frame := rest[:m.Length]
		recs, err := checkRecords(t, frame, m)
		if err != nil {
			return canonical, err
		}
		canonical = append(canonical, checkReencode(t, frame, m, recs))
		pos += int(m.Size())
	}
	return canonical, nil
}

// checkGap checks a gap frame that verified: its header is exactly what
// AppendGap writes for it.
func checkGap(t *testing.T, b []byte, m Meta) {
	t.Helper()
	want := AppendGap(nil, m.Base, m.Count, m.Length)
	got := bytes.Clone(b[:HeaderSize])
	got[OffState] = StateCommitted
	if !bytes.Equal(got, want) {
		t.Fatalf("gap re-encodes as\n%x\nnot\n%x", want, got)
	}
}

// checkResealed gives a frame that failed Verify a correct checksum and
// decodes it. Mutated bytes almost never keep a valid xxhash, so without
// this step the fuzzer would hardly ever reach the record decoder.
func checkResealed(t *testing.T, b []byte, m Meta) {
	t.Helper()
	if int64(len(b)) < m.Checked() {
		return
	}
	frame := bytes.Clone(b[:m.Checked()])
	m.Checksum = checksum(frame)
	binary.LittleEndian.PutUint64(frame[offChecksum:], m.Checksum)
	if err := Verify(frame, m); err != nil {
		t.Fatalf("Verify after resealing: %v", err)
	}
	if m.Kind == KindGap {
		checkGap(t, frame, m)
		return
	}
	if recs, err := checkRecords(t, frame, m); err == nil {
		checkReencode(t, frame, m, recs)
	}
}

// checkRecords decodes every record of a verified frame.
func checkRecords(t *testing.T, frame []byte, m Meta) ([]Record, error) {
	t.Helper()
	var recs []Record
	headers, payload := 0, 0
	it := NewRecords(frame, m)
	var r Record
	for it.Next(&r) {
		if len(recs) == int(m.Count) {
			t.Fatalf("record %d decoded from a frame of %d", len(recs)+1, m.Count)
		}
		headers += len(r.Headers)
		payload += len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			payload += len(h.Key) + len(h.Value)
		}
		recs = append(recs, r)
	}
	// Everything decoded is bounded by the frame's own bytes: each
	// header costs at least two of them.
	if body := int(m.Length) - HeaderSize; payload > body || headers > body/2 {
		t.Fatalf("%d payload bytes and %d headers decoded from %d bytes", payload, headers, body)
	}
	if err := it.Err(); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("record error %v does not wrap ErrMalformed", err)
		}
		if it.Next(&r) {
			t.Fatal("Next succeeded after an error")
		}
		return recs, err
	}
	if len(recs) != int(m.Count) {
		t.Fatalf("decoding ended after %d of %d records without an error", len(recs), m.Count)
	}
	return recs, nil
}

// checkReencode encodes recs again and checks that the result decodes to
// the same records. When the header times and the length match, the frame
// must be byte-identical to the original (state byte aside): a decoder
// that accepted two encodings of the same frame with equal lengths would
// hide a field it ignores. It reports whether that was the case.
func checkReencode(t *testing.T, frame []byte, m Meta, recs []Record) bool {
	t.Helper()
	want := bytes.Clone(frame)
	want[OffState] = StateWritten
	if m.Kind == KindSeal {
		out := AppendSeal(nil, m.Base)
		out[OffState] = StateWritten
		if m.FirstTime != 0 || m.MaxTime != 0 {
			return false
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("seal re-encodes as\n%x\nnot\n%x", out, want)
		}
		return true
	}
	var b Builder
	for _, r := range recs {
		b.Add(r.Timestamp, r.Key, r.Value, r.Headers)
	}
	out := b.Finish(m.Base)
	m2, err := ParseMeta(out)
	if err != nil {
		t.Fatalf("re-encoded frame: %v", err)
	}
	if err := Verify(out, m2); err != nil {
		t.Fatalf("re-encoded frame: %v", err)
	}
	if m2.Base != m.Base || m2.Count != m.Count {
		t.Fatalf("re-encoded frame has base %d count %d, want %d %d", m2.Base, m2.Count, m.Base, m.Count)
	}
	recs2, err := checkRecords(t, out[:m2.Length], m2)
	if err != nil {
		t.Fatalf("re-encoded frame: %v", err)
	}
	if diff := cmp.Diff(recs, recs2, sameBytes); diff != "" {
		t.Fatalf("re-encoded records differ (-first +second):\n%s", diff)
	}
	if m2.Length != m.Length || m2.FirstTime != m.FirstTime || m2.MaxTime != m.MaxTime {
		return false
	}
	if !bytes.Equal(out[:m2.Length], want) {
		t.Fatalf("frame re-encodes as\n%x\nnot\n%x", out[:m2.Length], want)
	}
	return true
}

// A seed is one file of the corpus and what scanning it must give.
type seed struct {
	name    string
	data    []byte
	frames  int    // valid frames before the scan stops
	wantErr string // what stops it; empty for a clean end
}

func seeds() []seed {
	sample := buildFrame(0, append(sampleRecords(), Record{
		Timestamp: 1_700_000_000_000_001_000,
		Key:       []byte("long"),
		Value:     bytes.Repeat([]byte("0123456789"), 30), // two-byte lengths
	}))
	committed := bytes.Clone(sample)
	committed[OffState] = StateCommitted
	commit := func(b []byte) []byte { b[OffState] = StateCommitted; return b }

	var segment []byte
	segment = append(segment, commit(buildFrame(0, []Record{
		{Timestamp: 100, Value: []byte("a")}, {Timestamp: 101, Value: []byte("b")}, {Timestamp: 99, Value: []byte("c")},
	}))...)
	segment = append(segment, commit(buildFrame(3, []Record{
		{Timestamp: 200, Key: []byte("k"), Value: []byte("d"), Headers: []Header{{Key: "h", Value: []byte("1")}}},
		{Timestamp: 201, Key: []byte{}, Value: nil},
	}))...)
	segment = AppendSeal(segment, 5)
	segment = append(segment, make([]byte, 64)...) // preallocated tail

	m, _ := ParseMeta(sample)
	badSum := bytes.Clone(committed)
	badSum[HeaderSize+3] ^= 0x10

	garbage := []byte("\xde\xad\xbe\xef: trailing garbage, not a frame header, long enough to parse")

	out := []seed{
		{name: "records", data: committed, frames: 1},
		{name: "written", data: sample, frames: 1},
		{name: "no-records", data: commit(buildFrame(7, nil)), frames: 1},
		{name: "seal", data: AppendSeal(nil, 1234), frames: 1},
		{name: "segment", data: segment, frames: 3},
		{name: "truncated-header", data: committed[:30], wantErr: "header needs 48 bytes"},
		{name: "truncated-body", data: committed[:m.Length-5], wantErr: "cut at"},
		{name: "torn-tail", data: append(bytes.Clone(committed), committed[:HeaderSize+9]...), frames: 1, wantErr: "cut at"},
		{name: "trailing-garbage", data: append(bytes.Clone(committed), garbage...), frames: 1, wantErr: "version"},
		{name: "bad-checksum", data: badSum, wantErr: "checksum"},
	}
	for _, c := range resealedCases() {
		out = append(out, seed{name: "resealed-" + c.name, data: c.data, wantErr: c.wantErr})
	}
	return out
}

// A resealedCase is a frame whose header and checksum are valid but whose
// records are not: only a buggy writer makes one, and only the record
// decoder's own bounds checks stand between it and a panic.
type resealedCase struct {
	name    string
	data    []byte
	wantErr string
}

func resealedCases() []resealedCase {
	// The records area of this frame, from byte 48:
	//
	//	48 0a          record A: 10-byte body
	//	49 00          timestamp delta 0
	//	50 02 6b       key "k"
	//	52 0a 76...65  value "value"
	//	58 00          no headers
	//	59 09          record B: 9-byte body
	//	60 13          timestamp delta -10
	//	61 01          nil key
	//	62 02 76       value "v"
	//	64 01          one header
	//	65 01 68       key "h"
	//	67 02 78       value "x"
	//
	// Length 69, padded to 72.
	base := buildFrame(0, []Record{
		{Timestamp: 100, Key: []byte("k"), Value: []byte("value")},
		{Timestamp: 90, Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}}},
	})
	patch := func(at int, b ...byte) []byte {
		f := bytes.Clone(base)
		copy(f[at:], b)
		return f
	}
	// raw makes a frame of count records from a hand-written records area.
	raw := func(count uint32, records ...byte) []byte {
		f := append(make([]byte, HeaderSize), records...)
		binary.LittleEndian.PutUint32(f[offLength:], uint32(len(f)))
		f[offVersion] = Version
		binary.LittleEndian.PutUint32(f[offCount:], count)
		for len(f)%Align != 0 {
			f = append(f, 0)
		}
		return f
	}
	cases := []resealedCase{
		{"record-length", patch(48, 0x7f), "record length"},
		{"record-length-overflow", raw(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "record length"},
		{"empty-record", raw(1, 0x00, 0x00, 0x00, 0x00, 0x00), "record timestamp"},
		{"timestamp", raw(1, 0x01, 0x80, 0x00, 0x00, 0x00), "record timestamp"},
		{"key-length", patch(50, 0x12), "record key"},
		{"key-length-negative", patch(50, 0x03), "record key"},
		{"value-negative", patch(52, 0x03), "record value"},
		{"value-length", patch(52, 0x0e), "record value"},
		{"header-count", patch(64, 0x7f), "header count"},
		{"header-key-length", patch(65, 0x05), "header key"},
		{"header-value-length", patch(67, 0x04), "header value"},
		{"stray-bytes", patch(67, 0x00), "stray bytes in record"},
		{"count-short", patch(offCount, 1), "bytes after the last record"},
		{"count-long", patch(offCount, 3), "record length"},
	}
	for i := range cases {
		f := cases[i].data
		binary.LittleEndian.PutUint64(f[offChecksum:], checksum(f[:binary.LittleEndian.Uint32(f[offLength:])]))
		f[OffState] = StateCommitted
	}
	return cases
}

func TestWriteSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite " + seedDir)
	}
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, err := filepath.Glob(filepath.Join(seedDir, "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range seeds() {
		if err := os.WriteFile(filepath.Join(seedDir, s.name+".bin"), s.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeedCorpus checks that the seed files are what the generator makes
// and that each scans to its expected outcome, with every valid frame
// re-encoding to identical bytes.
func TestSeedCorpus(t *testing.T) {
	for _, s := range seeds() {
		t.Run(s.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(seedDir, s.name+".bin"))
			if err != nil {
				t.Fatalf("%v (run go test -run TestWriteSeedCorpus -update)", err)
			}
			if !bytes.Equal(data, s.data) {
				t.Fatalf("%s.bin differs from the generated seed: the encoding changed (run go test -run TestWriteSeedCorpus -update)", s.name)
			}
			canonical, err := checkSegment(t, data)
			switch {
			case s.wantErr == "" && err != nil:
				t.Errorf("scan stopped with %v", err)
			case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
				t.Errorf("scan error = %v, want %q", err, s.wantErr)
			}
			if len(canonical) != s.frames {
				t.Errorf("%d valid frames, want %d", len(canonical), s.frames)
			}
			for i, ok := range canonical {
				if !ok {
					t.Errorf("frame %d does not re-encode to identical bytes", i)
				}
			}
		})
	}
}
