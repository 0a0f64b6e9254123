package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

// reseal gives the frame at pos of path a correct checksum again, after a
// test changed its bytes: damage no checksum catches.
func reseal(t testing.TB, path string, pos int64, m frame.Meta) {
	t.Helper()
	data := readFile(t, path)
	f := data[pos : pos+int64(m.Length)]
	var msg [16]byte
	copy(msg[:8], f[:8])
	msg[frame.OffState] = 0
	binary.LittleEndian.PutUint64(msg[8:], xxhash.Sum64(f[16:]))
	writeAt(t, path, pos+8, binary.LittleEndian.AppendUint64(nil, xxhash.Sum64(msg[:])))
}

// TestSalvageRoundTrip damages one log in every way salvage handles at
// once — a flipped byte, a zeroed page, a frame whose records do not
// decode under a good checksum, a sealed segment cut short, a segment
// removed, committed records cut off the end — and checks the round trip:
// readers stop at the damage; plain Repair changes no committed byte and
// leaves it reported; Repair with Salvage replaces exactly the unreadable
// offsets with gaps and reports them; afterwards every other record reads
// at its offset, consumers skip the gaps (counted) or stop at them
// (StopAtGaps), appends go on after the lost ones, and Verify is clean,
// listing the gaps as known losses.
func TestSalvageRoundTrip(t *testing.T) {
	const records = 2500
	dir, segs := dmLog(t, records)
	pdir := filepath.Join(dir, "topics", "t", "0")
	if len(segs) < 6 {
		t.Fatalf("test setup: %d segments", len(segs))
	}
	type lost struct{ from, to int64 }
	var want []lost
	frameAt := func(s diskSeg, i int) diskFrame { return s.recordFrames()[i] }

	// Segment 0: a flipped byte in one frame, and a zeroed page over
	// frames further on.
	s0 := segs[0]
	f := frameAt(s0, 3)
	flipByte(t, s0.Path, f.Pos+frame.HeaderSize+5)
	want = append(want, lost{f.Meta.Base, f.Meta.End()})
	page := (s0.Size / 2) &^ 4095
	var first, last diskFrame
	for _, fr := range s0.recordFrames() {
		if fr.Pos+fr.Meta.Size() > page && fr.Pos < page+4096 {
			if first.Meta.Length == 0 {
				first = fr
			}
			last = fr
		}
	}
	writeAt(t, s0.Path, page, make([]byte, 4096))
	want = append(want, lost{first.Meta.Base, last.Meta.End()})

	// Segment 1: a record length changed under a good checksum.
	f = frameAt(segs[1], 2)
	data := readFile(t, segs[1].Path)
	writeAt(t, segs[1].Path, f.Pos+frame.HeaderSize, []byte{data[f.Pos+frame.HeaderSize] + 2})
	reseal(t, segs[1].Path, f.Pos, f.Meta)
	want = append(want, lost{f.Meta.Base, f.Meta.End()})

	// Segment 2: cut in the middle, seal and all.
	f = frameAt(segs[2], len(segs[2].recordFrames())/2)
	truncateFile(t, segs[2].Path, f.Pos+20)
	want = append(want, lost{f.Meta.Base, segs[3].Base})

	// Segment 3: gone. (The salvage makes one gap of its offsets and of
	// those cut from segment 2 before it.)
	if err := removeSegmentFiles(pdir, segs[3].Base); err != nil {
		t.Fatal(err)
	}
	want[len(want)-1].to = segs[4].Base

	// The active segment: its last committed frames cut off; the synced
	// checkpoint knows they were there.
	act := segs[len(segs)-1]
	f = frameAt(act, len(act.recordFrames())-3)
	truncateFile(t, act.Path, f.Pos)
	want = append(want, lost{f.Meta.Base, records})
	isLost := func(off int64) bool {
		return slices.ContainsFunc(want, func(l lost) bool { return off >= l.from && off < l.to })
	}

	l := openTest(t, dir, &Options{RetentionInterval: -1})
	ctx := context.Background()
	before := snapshotFiles(t, pdir)

	// Readers stop at the first damage, with its position.
	recs, err := readAvailableErr(t, l, "t")
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != s0.Path || int64(len(recs)) != want[0].from {
		t.Fatalf("before the salvage: %d records, then %v", len(recs), err)
	}

	// Plain Repair: nothing committed changes, everything stays reported.
	rep, err := l.Repair(ctx, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Remaining) == 0 {
		t.Fatalf("plain Repair fixed damage inside committed data: %+v", rep.Actions)
	}
	for path, content := range before {
		if got := readFile(t, path); filepath.Ext(path) == logExt && string(got) != string(content) {
			t.Errorf("plain Repair changed %s (%d bytes, was %d)", path, len(got), len(content))
		}
	}

	// Salvage.
	rep, err = l.Repair(ctx, "t", &RepairOptions{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Remaining) != 0 {
		t.Fatalf("after salvage: %v", rep.Remaining)
	}
	var got []lost
	for _, a := range rep.Actions {
		if a.Kind == RepairSalvaged && a.To > a.From {
			got = append(got, lost{a.From, a.To})
		}
	}
	var gaps []lost
	for _, g := range rep.Gaps {
		gaps = append(gaps, lost{g.From, g.To})
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(lost{})); diff != "" {
		t.Errorf("salvaged ranges (-want +got):\n%s\nactions %v", diff, rep.Actions)
	}
	if diff := cmp.Diff(want, gaps, cmp.AllowUnexported(lost{})); diff != "" {
		t.Errorf("gaps Verify lists after the salvage (-want +got):\n%s", diff)
	}

	// Every record outside the gaps, at its offset; the gaps skipped and
	// counted.
	skipped := l.Stats().GapsCrossed
	recs, err = readAvailableErr(t, l, "t")
	if err != nil {
		t.Fatalf("after the salvage: %v", err)
	}
	next := int64(0)
	for _, r := range recs {
		for isLost(next) {
			next++
		}
		if r.Offset != next || string(r.Value) != string(mpValue(0, 0, next, int(next%300))) {
			t.Fatalf("record at offset %d: %.30q, want offset %d", r.Offset, r.Value, next)
		}
		next++
	}
	var total int64
	for _, w := range want {
		total += w.to - w.from
	}
	if int64(len(recs)) != records-total {
		t.Errorf("%d records readable after the salvage, want %d", len(recs), records-total)
	}
	if n := l.Stats().GapsCrossed - skipped; n != total {
		t.Errorf("a consumer crossing the gaps counted %d lost offsets, want %d", n, total)
	}

	// StopAtGaps: an error at each gap, until a Seek past it.
	c := mustConsumer(t, l, "t", &ConsumerOptions{StopAtGaps: true})
	var stops []lost
	for {
		recs, err := c.TryPoll()
		var ge *GapError
		if errors.As(err, &ge) {
			if !errors.Is(err, ErrGap) || ge.Partition != 0 || ge.Topic != "t" {
				t.Fatalf("GapError %+v", ge)
			}
			if _, again := c.TryPoll(); !errors.As(again, &ge) {
				t.Fatalf("a second TryPoll at the gap: %v", again)
			}
			stops = append(stops, lost{ge.From, ge.To})
			if err := c.Seek(0, AtOffset(ge.To)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
	}
	c.Close()
	if diff := cmp.Diff(want, stops, cmp.AllowUnexported(lost{})); diff != "" {
		t.Errorf("gaps a StopAtGaps consumer stopped at (-want +got):\n%s", diff)
	}

	// Appends go on after the lost offsets: none is used again.
	p := mustProducer(t, l, "t", nil)
	if pos, err := p.Send(ctx, Record{Value: []byte("after the salvage")}); err != nil || pos.Offset != records {
		t.Errorf("append after the salvage: %+v, %v; want offset %d", pos, err, records)
	}
	vr, err := l.Verify(ctx, "", nil)
	if err != nil || !vr.OK() {
		t.Errorf("Verify after the salvage: %v, %v", vr.Problems, err)
	}
	if rep, err := l.Repair(ctx, "", &RepairOptions{Salvage: true}); err != nil || len(rep.Actions) != 0 {
		t.Errorf("a second salvage: %v, %v", rep.Actions, err)
	}
}

// snapshotFiles reads every file of dir.
func snapshotFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		out[p] = readFile(t, p)
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSalvageCases salvages one damage at a time, for the shapes the round
// trip does not make: a segment missing on its own, junk after a seal, and
// a frame moved by 8 bytes (too few unreadable bytes for a gap's header,
// so the gap takes the moved frame too).
func TestSalvageCases(t *testing.T) {
	const records = 1500
	pristine, segs := dmLog(t, records)
	cases := []struct {
		name   string
		damage func(t *testing.T, pdir string) (from, to int64) // the offsets lost
	}{
		{"segment missing", func(t *testing.T, pdir string) (int64, int64) {
			if err := removeSegmentFiles(pdir, segs[1].Base); err != nil {
				t.Fatal(err)
			}
			return segs[1].Base, segs[2].Base
		}},
		{"junk after a seal", func(t *testing.T, pdir string) (int64, int64) {
			path := filepath.Join(pdir, filepath.Base(segs[0].Path))
			writeAt(t, path, segs[0].Size, []byte("junk after the seal"))
			return 0, 0
		}},
		{"frame moved by 8 bytes", func(t *testing.T, pdir string) (int64, int64) {
			s := segs[0]
			path := filepath.Join(pdir, filepath.Base(s.Path))
			fs := s.recordFrames()
			b, c := fs[4], fs[5]
			data := readFile(t, path)
			moved := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, data[b.Pos:b.Pos+b.Meta.Size()]...)
			writeAt(t, path, b.Pos, moved)
			// b now starts 8 bytes late, over c's header.
			return b.Meta.Base, c.Meta.End()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, pristine, dir)
			pdir := filepath.Join(dir, "topics", "t", "0")
			from, to := tc.damage(t, pdir)
			l := openTest(t, dir, &Options{RetentionInterval: -1})
			if rep, err := l.Verify(context.Background(), "", nil); err != nil || rep.OK() {
				t.Fatalf("Verify before the salvage: %v, %v", rep.Problems, err)
			}
			rep, err := l.Repair(context.Background(), "", &RepairOptions{Salvage: true})
			if err != nil || len(rep.Remaining) != 0 {
				t.Fatalf("salvage: %v, remaining %v", err, rep.Remaining)
			}
			// The gaps, adjacent ones merged.
			var lostFrom, lostTo int64
			for _, a := range rep.Actions {
				switch {
				case a.Kind != RepairSalvaged || a.To <= a.From:
				case lostTo == a.From:
					lostTo = a.To
				default:
					lostFrom, lostTo = a.From, a.To
				}
			}
			if lostFrom != from || lostTo != to {
				t.Errorf("salvage lost offsets [%d, %d), want [%d, %d): %v", lostFrom, lostTo, from, to, rep.Actions)
			}
			recs, err := readAvailableErr(t, l, "t")
			if err != nil || int64(len(recs)) != records-(to-from) {
				t.Fatalf("after the salvage: %d records, %v; want %d", len(recs), err, records-(to-from))
			}
			for _, r := range recs {
				if r.Offset >= from && r.Offset < to || string(r.Value) != string(mpValue(0, 0, r.Offset, int(r.Offset%300))) {
					t.Fatalf("record at offset %d: %.30q", r.Offset, r.Value)
				}
			}
		})
	}
}

// TestSalvageEmptyGapIndexed: a frame copied over the head of the one
// before it (byte 16 of the last segment, its own place left with a torn
// copy) leaves two stretches of unreadable bytes; the salvage makes the
// first and the copied frame one gap (16 bytes hold no gap's header) and
// the second a gap of no offsets, and the rebuilt index had an entry for
// that gap and another for the frame after it, both at that frame's
// offset, which Verify reported as out of order after every Repair. Found
// by FuzzSegmentFile.
func TestSalvageEmptyGapIndexed(t *testing.T) {
	dir := t.TempDir()
	_, segs := dgBuild(t, dir, 17)
	s := segs[len(segs)-1]
	moved := s.Frames[1]
	data := readFile(t, s.Path)
	writeAt(t, s.Path, 16, data[moved.Pos:moved.Pos+moved.Meta.Size()])
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
	if err != nil || len(rep.Remaining) != 0 {
		t.Fatalf("salvage: %v, remaining %v", err, rep.Remaining)
	}
	recs, err := readAvailableErr(t, l, "t")
	if err != nil || len(recs) != int(s.Base)+1 || recs[len(recs)-1].Offset != s.Frames[2].Meta.Base {
		t.Errorf("after the salvage: %d records, %v; want those before segment %d and the one after its gaps", len(recs), err, s.Base)
	}
}
