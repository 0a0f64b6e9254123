package runnel

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

// FuzzCursor reads whole segment files the way the writer's tail walk and
// a reader do, and checks that they agree: the reader delivers exactly the
// records of the frames the writer's walk accepts, in order, at their
// offsets, and stops where the walk stopped; both judge what they stopped
// at the same way; nothing panics; and no buffer grows past what the file
// and the read window justify. Seeds: the frame corpus and the golden
// damaged logs under testdata/, and a segment with a gap and a seal.
func FuzzCursor(f *testing.F) {
	for _, pattern := range []string{"testdata/frame/*.bin", "testdata/torn/*/log/topics/t/0/*.log"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add(fuzzSegment())
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCursorViews(t, data)
	})
}

// fuzzSegment is a segment of records frames, a gap and a seal.
func fuzzSegment() []byte {
	var b frame.Builder
	var seg []byte
	next := int64(5)
	for i := range 3 {
		b.Reset()
		for j := range i + 1 {
			b.Add(int64(1000+j), []byte("k"), bytes.Repeat([]byte{byte('a' + j)}, 10*j), []frame.Header{{Key: "h", Value: nil}})
		}
		fr := b.Finish(next)
		fr[frame.OffState] = frame.StateCommitted
		seg = append(seg, fr...)
		next += int64(b.Count())
	}
	seg = frame.AppendGap(seg, next, 4, 64)
	seg = append(seg, make([]byte, 16)...)
	next += 4
	b.Reset()
	b.Add(2000, nil, []byte("after the gap"), nil)
	fr := b.Finish(next)
	fr[frame.OffState] = frame.StateCommitted
	seg = append(seg, fr...)
	return frame.AppendSeal(seg, next+1)
}

func checkCursorViews(t *testing.T, data []byte) {
	// The segment is named by its first frame's base, when it has one:
	// otherwise every input would fail the first offset check.
	base := int64(0)
	if m, err := frame.ParseMeta(data); err == nil && m.Base < 1<<40 {
		base = m.Base
	}
	dir := t.TempDir()
	path := segmentPath(dir, base, logExt)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// The writer's view: a verifying walk, then the verdict on its end.
	w := newCursor(f, path, 0, base)
	var want []rec
	var beforeBad []rec // want, then the records of the first bad frame that decode
	decodable := true
	_, wst, err := w.walk(func(fr segFrame) bool {
		if fr.meta.Kind != frame.KindRecords || !decodable {
			return true
		}
		it := frame.NewRecords(fr.data, fr.meta)
		var r frame.Record
		var recs []rec
		for off := fr.meta.Base; it.Next(&r); off++ {
			recs = append(recs, rec{Off: off, Key: string(r.Key), Val: string(r.Value), TS: r.Timestamp})
		}
		beforeBad = append(beforeBad, recs...)
		if it.Err() != nil {
			decodable = false // the reader must stop here with an error
			return true
		}
		want = append(want, recs...)
		return true
	})
	if err != nil {
		t.Fatalf("writer's walk: %v", err)
	}
	wpos, wnext := w.pos, w.next
	var wv tailVerdict
	if wst != frameSeal {
		if wv, err = w.judgeTail(tailRules{}); err != nil {
			t.Fatalf("writer's verdict: %v", err)
		}
	}

	// The reader's view, through a window small enough to pin and refill.
	l := &Log{opts: Options{Logger: slog.New(slog.DiscardHandler)}, segs: newSegCache(4)}
	p := &partition{log: l, topic: &topic{name: "fuzz"}, dir: dir}
	r := newPartReader(p, 4096)
	defer r.close()
	if err := r.openSegment(base); err != nil {
		t.Fatalf("openSegment: %v", err)
	}
	got, rerr := fuzzRead(t, r, 1<<30, len(data))
	// Again with three records at most per fill, so that frames are split
	// between fills: the same records, except that at a frame whose
	// records do not decode those before the bad one may come first.
	r3 := newPartReader(p, 4096)
	defer r3.close()
	if err := r3.openSegment(base); err != nil {
		t.Fatalf("openSegment: %v", err)
	}
	got3, rerr3 := fuzzRead(t, r3, 3, len(data))
	if decodable && (!cmp.Equal(got, got3) || r3.cur.pos != r.cur.pos || (rerr == nil) != (rerr3 == nil)) {
		t.Fatalf("three records per fill: %v at byte %d; whole frames: %v at byte %d (-whole +three):\n%s",
			rerr3, r3.cur.pos, rerr, r.cur.pos, cmp.Diff(got, got3))
	}
	if !decodable {
		var ce *CorruptError
		if len(got3) > len(beforeBad) || len(got3) > 0 && !cmp.Equal(got3, beforeBad[:len(got3)]) || !errors.As(rerr3, &ce) {
			t.Fatalf("three records per fill, at a frame that does not decode: %v after (-want +got):\n%s", rerr3, cmp.Diff(beforeBad, got3))
		}
	}
	if len(got) > len(want) || !cmp.Equal(got, want[:len(got)]) {
		t.Fatalf("the reader delivered records the writer's walk does not hold:\n%s", cmp.Diff(want, got))
	}
	switch {
	case !decodable:
		var ce *CorruptError
		if !errors.As(rerr, &ce) {
			t.Fatalf("a frame's records do not decode, and the reader says %v after %d records", rerr, len(got))
		}
		return
	case rerr != nil:
		t.Fatalf("reader: %v", rerr)
	case len(got) != len(want):
		t.Fatalf("the reader delivered %d records, the writer's walk holds %d", len(got), len(want))
	}
	if cap(w.buf) > max(defaultWindow, len(data)) || cap(r.cur.buf) > max(4096, len(data)) {
		t.Fatalf("buffers of %d and %d bytes for a file of %d", cap(w.buf), cap(r.cur.buf), len(data))
	}
	if wst == frameSeal {
		return // the reader waits for the next segment, which is not there
	}
	if r.f == nil || r.cur.pos != wpos || r.cur.next != wnext {
		t.Fatalf("the reader stopped at byte %d (offset %d), the writer's walk at %d (%d)", r.cur.pos, r.cur.next, wpos, wnext)
	}
	rv, err := r.cur.judgeTail(tailRules{})
	if err != nil {
		t.Fatalf("reader's verdict: %v", err)
	}
	if rv.kind != wv.kind || rv.pos != wv.pos || rv.found != wv.found || rv.resume.pos != wv.resume.pos {
		t.Fatalf("the writer judges %v at %d (resume %v at %d), the reader %v at %d (resume %v at %d)",
			wv.kind, wv.pos, wv.found, wv.resume.pos, rv.kind, rv.pos, rv.found, rv.resume.pos)
	}
	if wv.kind == tailEnd && (!r.atEnd || r.stuck) || wv.kind != tailEnd && !r.stuck {
		t.Fatalf("the writer judges %v, the reader stopped with atEnd %v, stuck %v", wv.kind, r.atEnd, r.stuck)
	}
}

// fuzzRead reads with r, at most max records per fill, until an error or
// a fill that neither delivers nor moves.
func fuzzRead(t *testing.T, r *partReader, max, size int) (got []rec, err error) {
	for range size + 8 {
		recs, ferr := r.fill(nil, max)
		for _, x := range recs {
			got = append(got, rec{Off: x.Offset, Key: string(x.Key), Val: string(x.Value), TS: x.Time.UnixNano()})
		}
		if ferr != nil {
			return got, ferr
		}
		if len(recs) == 0 && !r.advanced {
			break
		}
	}
	return got, nil
}
