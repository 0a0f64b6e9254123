package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

// rec is a Record reduced to comparable fields, so that diffs stay short
// and cheap (cmp walks byte slices element by element).
type rec struct {
	Part int
	Off  int64
	Key  string
	Val  string
	TS   int64
}

func recsOf(rs []Record) []rec {
	out := make([]rec, len(rs))
	for i, r := range rs {
		out[i] = rec{Part: r.Partition, Off: r.Offset, Key: string(r.Key), Val: string(r.Value), TS: r.Time.UnixNano()}
	}
	return out
}

// payload returns a deterministic value of n bytes that names record i.
func payload(i, n int) []byte {
	v := fmt.Appendf(nil, "record-%06d|", i)
	for len(v) < n {
		v = append(v, byte('a'+(i+len(v))%26))
	}
	return v[:n]
}

var testEpoch = time.Unix(1_700_000_000, 0)

// sendSeq sends recs one by one and checks that partition 0 gives them
// consecutive offsets from first.
func sendSeq(t testing.TB, p *Producer, first int64, recs []Record) {
	t.Helper()
	for i, r := range recs {
		pos, err := p.Send(context.Background(), r)
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if want := (Position{0, first + int64(i)}); pos != want {
			t.Fatalf("Send %d at %+v, want %+v", i, pos, want)
		}
	}
}

// wantRecs is what a consumer should read for recs stored from offset first.
func wantRecs(first int64, recs []Record) []rec {
	out := make([]rec, len(recs))
	for i, r := range recs {
		out[i] = rec{Part: r.Partition, Off: first + int64(i), Key: string(r.Key), Val: string(r.Value), TS: r.Time.UnixNano()}
	}
	return out
}

func partDir(l *Log, topic string, p int) string {
	return filepath.Join(l.Dir(), "topics", topic, strconv.Itoa(p))
}

// diskFrame is a frame found by parsing a segment file in the test.
type diskFrame struct {
	Pos  int64
	Meta frame.Meta
}

// diskSeg is one segment file as parsed by the test.
type diskSeg struct {
	Base   int64
	Path   string
	Size   int64
	Frames []diskFrame
}

// parseSegment reads a segment strictly: every frame committed and
// checksummed, frames back to back to the end of the file.
func parseSegment(t testing.TB, path string, base int64) diskSeg {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := diskSeg{Base: base, Path: path, Size: int64(len(data))}
	for pos := int64(0); pos < int64(len(data)); {
		if allZero(data[pos:]) {
			// Zeros ahead of a writer's tail (FORMAT.md): the end.
			s.Size = pos
			break
		}
		m, err := frame.ParseMeta(data[pos:])
		if err != nil {
			t.Fatalf("%s at byte %d: %v", path, pos, err)
		}
		if err := frame.Verify(data[pos:], m); err != nil {
			t.Fatalf("%s at byte %d: %v", path, pos, err)
		}
		if !m.Committed() {
			t.Fatalf("%s at byte %d: uncommitted frame", path, pos)
		}
		s.Frames = append(s.Frames, diskFrame{Pos: pos, Meta: m})
		pos += m.Size()
		if pos > int64(len(data)) {
			t.Fatalf("%s: frame at %d runs past the end", path, pos-m.Size())
		}
	}
	return s
}

// parsePartition parses every segment of a partition directory and checks
// the invariants that tie them together: names, contiguous offsets, a seal
// at the end of every segment but the last naming the next one.
func parsePartition(t testing.TB, dir string, segmentBytes int64) []diskSeg {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^([0-9]{20})\.(log|index|timeindex)$`)
	var segs []diskSeg
	for _, e := range entries {
		if e.Name() == metaFileName {
			continue
		}
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("unexpected file %s in %s", e.Name(), dir)
			continue
		}
		if m[2] != "log" {
			continue
		}
		base, _ := strconv.ParseInt(m[1], 10, 64)
		segs = append(segs, parseSegment(t, filepath.Join(dir, e.Name()), base))
	}
	next := int64(0)
	if len(segs) > 0 {
		next = segs[0].Base
	}
	for i, s := range segs {
		if s.Base != next {
			t.Errorf("segment %d is named %020d, want base %d", i, s.Base, next)
		}
		if segmentBytes > 0 && s.Size > segmentBytes {
			t.Errorf("segment %020d has %d bytes, limit %d", s.Base, s.Size, segmentBytes)
		}
		for j, f := range s.Frames {
			if f.Meta.Base != next {
				t.Errorf("segment %020d frame %d at byte %d starts at offset %d, want %d", s.Base, j, f.Pos, f.Meta.Base, next)
			}
			last := j == len(s.Frames)-1
			if f.Meta.Kind == frame.KindSeal {
				if !last || i == len(segs)-1 {
					t.Errorf("segment %020d: seal at byte %d is not the end of a sealed segment", s.Base, f.Pos)
				}
				continue
			}
			next = f.Meta.End()
		}
		if i < len(segs)-1 && (len(s.Frames) == 0 || s.Frames[len(s.Frames)-1].Meta.Kind != frame.KindSeal) {
			t.Errorf("sealed segment %020d does not end in a seal frame", s.Base)
		}
	}
	return segs
}

// recordFrames returns a segment's frames without its seal.
func (s diskSeg) recordFrames() []diskFrame {
	if n := len(s.Frames); n > 0 && s.Frames[n-1].Meta.Kind == frame.KindSeal {
		return s.Frames[:n-1]
	}
	return s.Frames
}

// copyDir copies a closed log directory, so that expensive setups can be
// shared by test cases that damage their own copy.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// sizeOr0 is the size of path, or 0 if it does not exist.
func sizeOr0(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

const smallSegment = minSegmentBytes

func TestSegmentRoll(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "roll", TopicConfig{Partitions: 1, SegmentBytes: smallSegment})
	p, _ := l.Producer("roll", nil)
	const n = 600
	sent := make([]Record, n)
	for i := range sent {
		sent[i] = Record{Key: fmt.Appendf(nil, "k%d", i), Value: payload(i, 1000), Time: testEpoch.Add(time.Duration(i) * time.Millisecond)}
	}
	sendSeq(t, p, 0, sent)

	segs := parsePartition(t, partDir(l, "roll", 0), smallSegment)
	if len(segs) < 8 {
		t.Fatalf("%d segments for %d KiB of records in %d KiB segments", len(segs), n, smallSegment>>10)
	}
	var bytes int64
	for _, s := range segs {
		bytes += s.Size
		if s.Size < smallSegment/2 && s.Base != segs[len(segs)-1].Base {
			t.Errorf("sealed segment %020d holds only %d bytes", s.Base, s.Size)
		}
	}
	last := segs[len(segs)-1].recordFrames()
	if end := last[len(last)-1].Meta.End(); end != n {
		t.Fatalf("last frame ends at offset %d, want %d", end, n)
	}

	if diff := cmp.Diff(wantRecs(0, sent), recsOf(readAll(t, l, "roll", n, nil))); diff != "" {
		t.Fatalf("records read across segments differ (-sent +read):\n%s", diff)
	}

	info, err := l.DescribeTopic("roll")
	if err != nil {
		t.Fatal(err)
	}
	want := []PartitionInfo{{Partition: 0, StartOffset: 0, NextOffset: n, Bytes: bytes, Segments: len(segs)}}
	if diff := cmp.Diff(want, info.Partitions); diff != "" {
		t.Errorf("DescribeTopic (-want +got):\n%s", diff)
	}
	if info.Config.SegmentBytes != smallSegment || info.Config.IndexIntervalBytes != defaultIndexInterval {
		t.Errorf("DescribeTopic config %+v", info.Config)
	}
}

func TestSegmentReopenContinues(t *testing.T) {
	const n = 100
	tests := []struct {
		name   string
		value  func(room int64) int // value size of the record sent after reopening
		rolled bool
	}{
		{"room in the active segment", func(int64) int { return 10 }, false},
		{"active segment full", func(room int64) int { return int(room) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered})
			mustCreate(t, l, "re", TopicConfig{Partitions: 1, SegmentBytes: smallSegment})
			p, _ := l.Producer("re", nil)
			sent := make([]Record, n)
			for i := range sent {
				sent[i] = Record{Value: payload(i, 1000), Time: testEpoch.Add(time.Duration(i))}
			}
			sendSeq(t, p, 0, sent)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			before := parsePartition(t, filepath.Join(dir, "topics", "re", "0"), smallSegment)
			active := before[len(before)-1]
			room := smallSegment - active.Size
			if room < 300 {
				t.Fatalf("test setup: only %d bytes left in the active segment", room)
			}

			// Reopen, append one record, reopen again: the offsets go on.
			l2 := openTest(t, dir, &Options{Durability: Buffered})
			p2, _ := l2.Producer("re", nil)
			extra := Record{Value: payload(n, tt.value(room)), Time: testEpoch.Add(time.Hour)}
			sendSeq(t, p2, n, []Record{extra})
			sent = append(sent, extra)
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			after := parsePartition(t, filepath.Join(dir, "topics", "re", "0"), smallSegment)
			holder := after[len(after)-1]
			switch {
			case tt.rolled && (len(after) != len(before)+1 || holder.Base != n):
				t.Errorf("record went to segment %d of %d, want a new segment %d", holder.Base, len(after), n)
			case !tt.rolled && (len(after) != len(before) || holder.Base != active.Base):
				t.Errorf("record went to segment %d of %d, want the active one %d", holder.Base, len(after), active.Base)
			}
			l3 := openTest(t, dir, nil)
			if info, err := l3.DescribeTopic("re"); err != nil || info.Partitions[0].NextOffset != n+1 {
				t.Errorf("after reopening: %+v, %v; want next offset %d", info.Partitions, err, n+1)
			}
			if diff := cmp.Diff(wantRecs(0, sent), recsOf(readAll(t, l3, "re", n+1, nil))); diff != "" {
				t.Fatalf("records after reopen (-sent +read):\n%s", diff)
			}
		})
	}
}

// TestSegmentCrashRepair simulates what a writer that died mid-append
// leaves behind, and checks that the next writer cuts exactly that.
func TestSegmentCrashRepair(t *testing.T) {
	const n = 150
	pristine := t.TempDir()
	sent := make([]Record, n)
	{
		l := openTest(t, pristine, &Options{Durability: Buffered})
		mustCreate(t, l, "c", TopicConfig{Partitions: 1, SegmentBytes: smallSegment})
		p, _ := l.Producer("c", nil)
		for i := range sent {
			sent[i] = Record{Value: payload(i, 700), Time: testEpoch.Add(time.Duration(i) * time.Second)}
		}
		sendSeq(t, p, 0, sent)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	segs := parsePartition(t, filepath.Join(pristine, "topics", "c", "0"), smallSegment)
	if len(segs) < 2 {
		t.Fatalf("test setup: %d segments", len(segs))
	}

	// Each damage function returns the offset the next record must get and
	// the number of bytes the repair must cut.
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, segs []diskSeg) (next, cut int64)
	}{
		{"last frame cut short", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			s := segs[len(segs)-1]
			f := s.Frames[len(s.Frames)-1]
			keep := f.Pos + int64(f.Meta.Length)/2
			truncateFile(t, s.Path, keep)
			diedAt(t, filepath.Dir(s.Path), s.Base, f.Pos, f.Meta.Base)
			return f.Meta.Base, keep - f.Pos
		}},
		{"last frame header cut short", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			s := segs[len(segs)-1]
			f := s.Frames[len(s.Frames)-1]
			truncateFile(t, s.Path, f.Pos+20)
			diedAt(t, filepath.Dir(s.Path), s.Base, f.Pos, f.Meta.Base)
			return f.Meta.Base, 20
		}},
		{"last frame uncommitted", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			s := segs[len(segs)-1]
			f := s.Frames[len(s.Frames)-1]
			writeAt(t, s.Path, f.Pos+frame.OffState, []byte{frame.StateWritten})
			diedAt(t, filepath.Dir(s.Path), s.Base, f.Pos, f.Meta.Base)
			return f.Meta.Base, f.Meta.Size()
		}},
		{"garbage after the last frame", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			s := segs[len(segs)-1]
			junk := bytes.Repeat([]byte{0xC3, 0x5A, 0x11}, 13)
			writeAt(t, s.Path, s.Size, junk)
			diedAt(t, filepath.Dir(s.Path), s.Base, s.Size, n)
			return n, int64(len(junk))
		}},
		{"zeros after the last frame", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			s := segs[len(segs)-1]
			// Zeros ahead of the tail (FORMAT.md) are the end of the
			// data: the writer cuts them, and counts no repair.
			writeAt(t, s.Path, s.Size, make([]byte, 4096))
			diedAt(t, filepath.Dir(s.Path), s.Base, s.Size, n)
			return n, 0
		}},
		{"seal written but not committed", func(t *testing.T, dir string, segs []diskSeg) (int64, int64) {
			// The writer died between writing the seal and committing it,
			// before it created the next segment.
			s, prev := segs[len(segs)-1], segs[len(segs)-2]
			for _, ext := range []string{logExt, indexExt, timeIndexExt} {
				os.Remove(segmentPath(filepath.Dir(s.Path), s.Base, ext))
			}
			seal := prev.Frames[len(prev.Frames)-1]
			writeAt(t, prev.Path, seal.Pos+frame.OffState, []byte{frame.StateWritten})
			diedAt(t, filepath.Dir(prev.Path), prev.Base, seal.Pos, seal.Meta.Base)
			return seal.Meta.Base, seal.Meta.Size()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, pristine, dir)
			pdir := filepath.Join(dir, "topics", "c", "0")
			local := make([]diskSeg, len(segs))
			for i, s := range segs {
				local[i] = s
				local[i].Path = filepath.Join(pdir, filepath.Base(s.Path))
			}
			next, cut := tt.damage(t, dir, local)

			l := openTest(t, dir, &Options{Durability: Buffered})
			if got := readAvailable(t, l, "c"); len(got) != int(next) {
				t.Errorf("before the repair a reader sees %d records, want %d", len(got), next)
			}
			// The reader, finding no live writer at the leftovers, may
			// have cut them already (as Poll and TryPoll do): either way,
			// one repair in all.
			p, _ := l.Producer("c", nil)
			extra := Record{Value: []byte("after the crash"), Time: testEpoch.Add(time.Hour)}
			pos, err := p.Send(context.Background(), extra)
			if err != nil {
				t.Fatalf("Send after the crash: %v", err)
			}
			if pos.Offset != next {
				t.Errorf("record after the crash got offset %d, want %d", pos.Offset, next)
			}
			if st := l.Stats(); st.Repairs != min(cut, 1) || st.BytesRepaired != cut {
				t.Errorf("Stats after repair: Repairs %d, BytesRepaired %d; want %d, %d", st.Repairs, st.BytesRepaired, min(cut, 1), cut)
			}
			want := append(wantRecs(0, sent[:next]), wantRecs(next, []Record{extra})...)
			if diff := cmp.Diff(want, recsOf(readAll(t, l, "c", int(next)+1, nil))); diff != "" {
				t.Fatalf("records after repair (-want +got):\n%s", diff)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			parsePartition(t, pdir, smallSegment)

			// The repair is complete: the next writer finds nothing to cut.
			l2 := openTest(t, dir, &Options{Durability: Buffered})
			p2, _ := l2.Producer("c", nil)
			if pos, err := p2.Send(context.Background(), Record{Value: []byte("again")}); err != nil || pos.Offset != next+1 {
				t.Errorf("second Send after reopen: %+v, %v; want offset %d", pos, err, next+1)
			}
			if st := l2.Stats(); st.Repairs != 0 {
				t.Errorf("second writer repaired again: %+v", st)
			}
		})
	}
}

// TestSegmentCorruptCommitted damages a committed frame that has committed
// frames after it: that is not a torn tail, so nothing may be cut.
func TestSegmentCorruptCommitted(t *testing.T) {
	dir := t.TempDir()
	const n, bad = 12, 4
	sent := make([]Record, n)
	{
		l := openTest(t, dir, &Options{Durability: Buffered})
		mustCreate(t, l, "x", TopicConfig{Partitions: 1})
		p, _ := l.Producer("x", nil)
		for i := range sent {
			sent[i] = Record{Key: []byte("key"), Value: payload(i, 60), Time: testEpoch}
		}
		sendSeq(t, p, 0, sent)
		l.Close()
	}
	pdir := filepath.Join(dir, "topics", "x", "0")
	seg := parsePartition(t, pdir, 0)[0]
	if len(seg.Frames) != n {
		t.Fatalf("test setup: %d frames, want one per record", len(seg.Frames))
	}
	victim := seg.Frames[bad]
	flipAt := victim.Pos + frame.HeaderSize + 10 // inside the record's value
	data, _ := os.ReadFile(seg.Path)
	writeAt(t, seg.Path, flipAt, []byte{data[flipAt] ^ 0x20})

	checkCorrupt := func(what string, err error) {
		t.Helper()
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a *CorruptError", what, err)
		}
		if ce.Path != seg.Path || ce.Pos != victim.Pos {
			t.Errorf("%s: CorruptError at %s byte %d, want %s byte %d", what, ce.Path, ce.Pos, seg.Path, victim.Pos)
		}
	}

	l := openTest(t, dir, &Options{Durability: Buffered})
	c, err := l.Consumer("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []Record
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		recs, err := c.Poll(ctx)
		for _, r := range recs {
			got = append(got, cloneRecord(r))
		}
		if err != nil {
			checkCorrupt("Poll", err)
			break
		}
	}
	if diff := cmp.Diff(wantRecs(0, sent[:bad]), recsOf(got)); diff != "" {
		t.Errorf("records before the damage (-want +got):\n%s", diff)
	}

	p, _ := l.Producer("x", nil)
	for i := range 2 {
		_, err := p.Send(context.Background(), Record{Value: []byte("must not land")})
		checkCorrupt(fmt.Sprintf("Send %d", i), err)
	}
	if size := fileSize(t, seg.Path); size != seg.Size {
		t.Errorf("segment is %d bytes after the refused appends, was %d", size, seg.Size)
	}
	if st := l.Stats(); st.Repairs != 0 || st.RecordsWritten != 0 {
		t.Errorf("Stats: %+v, want no repair and no record written", st)
	}
}

func truncateFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readAvailable reads every record of a topic that is there now, without
// waiting for more.
func readAvailable(t testing.TB, l *Log, topic string) []Record {
	t.Helper()
	out, err := readAvailableErr(t, l, topic)
	if err != nil {
		t.Fatalf("TryPoll after %d records: %v", len(out), err)
	}
	return out
}

// readAvailableErr is readAvailable that returns the error TryPoll ended
// with, with the records before it.
func readAvailableErr(t testing.TB, l *Log, topic string) ([]Record, error) {
	t.Helper()
	c, err := l.Consumer(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []Record
	for {
		recs, err := c.TryPoll()
		for _, r := range recs {
			out = append(out, cloneRecord(r))
		}
		if err != nil || len(recs) == 0 {
			return out, err
		}
	}
}
