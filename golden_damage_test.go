package runnel

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Golden damaged logs of several segments, under testdata/damage/<case>/:
// log/, a log runnel wrote and a hand then damaged, and want.json, what
// readers, Verify, the writer and a salvage must make of it. go test -run
// TestDamageGolden -update-damage rewrites them from the builders below.

var updateDamage = flag.Bool("update-damage", false, "rewrite the golden damaged logs under testdata/damage")

type damageWant struct {
	Doc       string `json:"doc"`
	Records   int    `json:"records"`    // records written, value i is tornValue(i, ValueSize)
	ValueSize int    `json:"value_size"` // bytes per value
	// Checkpoint is written into partition.meta (with this machine's
	// boot id) before the test: what the last writer synced, as segment
	// base, byte position and offset.
	Checkpoint [3]int64 `json:"checkpoint"`
	// Where readers and Verify find the damage; "" for a log that reads
	// whole (a salvaged one).
	CorruptFile string `json:"corrupt_file"`
	CorruptPos  int64  `json:"corrupt_pos"`
	Intact      int    `json:"intact"`   // records a reader gets before the damage
	Refusing    bool   `json:"refusing"` // appends are refused before the salvage
	LostFrom    int64  `json:"lost_from"`
	LostTo      int64  `json:"lost_to"` // the offsets a salvage gives up: [LostFrom, LostTo)
}

const dgValueSize = 9000

// dgBuild writes the log every golden case starts from: one partition of
// three segments or more, tornValue records at tornTime.
func dgBuild(t testing.TB, dir string, n int) (pdir string, segs []diskSeg) {
	t.Helper()
	values := make([][]byte, n)
	for i := range values {
		values[i] = tornValue(i, dgValueSize)
	}
	pdir = buildTornLog(t, dir, Buffered, TopicConfig{SegmentBytes: minSegmentBytes}, values)
	segs = parsePartition(t, pdir, 0)
	if len(segs) < 3 {
		t.Fatalf("golden setup: %d segments", len(segs))
	}
	return pdir, segs
}

func dgRel(dir, path string) string {
	r, _ := filepath.Rel(dir, path)
	return r
}

var damageGoldens = []struct {
	name  string
	build func(t testing.TB, dir string) damageWant
}{
	{"sealed-segment-cut", func(t testing.TB, dir string) damageWant {
		_, segs := dgBuild(t, dir, 17)
		f := segs[1].Frames[2]
		truncateFile(t, segs[1].Path, f.Pos+100)
		return damageWant{Doc: "a sealed segment cut short in its third frame, seal and all, with later segments there: readers report it, never wait; a salvage gives up its offsets from the cut frame to the next segment and seals it again",
			Records: 17, CorruptFile: dgRel(dir, segs[1].Path), CorruptPos: f.Pos, Intact: int(f.Meta.Base),
			LostFrom: f.Meta.Base, LostTo: segs[2].Base}
	}},
	{"zeroed-header", func(t testing.TB, dir string) damageWant {
		_, segs := dgBuild(t, dir, 17)
		s := segs[1]
		var f diskFrame
		for _, fr := range s.Frames {
			if fr.Pos%4096 == 0 && fr.Pos > 0 {
				f = fr
			}
		}
		if f.Pos == 0 {
			// No frame starts on a page: zero from a frame's header on.
			f = s.Frames[2]
		}
		writeAt(t, s.Path, f.Pos, make([]byte, 4096))
		last := f
		for _, fr := range s.Frames {
			if fr.Pos < f.Pos+4096 && fr.Pos >= f.Pos {
				last = fr
			}
		}
		return damageWant{Doc: "4 KiB of zeros from a frame's header on, in a sealed segment, committed frames after: zeros where a frame should start are not the end of the data here, since committed data follows; readers report it",
			Records: 17, CorruptFile: dgRel(dir, s.Path), CorruptPos: f.Pos, Intact: int(f.Meta.Base),
			LostFrom: f.Meta.Base, LostTo: last.Meta.End()}
	}},
	{"segment-missing", func(t testing.TB, dir string) damageWant {
		pdir, segs := dgBuild(t, dir, 17)
		if err := removeSegmentFiles(pdir, segs[1].Base); err != nil {
			t.Fatal(err)
		}
		return damageWant{Doc: "a whole segment missing between two others: readers reach the seal naming it and report it; a salvage makes it a segment of one gap",
			Records: 17, CorruptFile: dgRel(dir, segs[1].Path), CorruptPos: 0, Intact: int(segs[1].Base),
			LostFrom: segs[1].Base, LostTo: segs[2].Base}
	}},
	{"last-segment-missing", func(t testing.TB, dir string) damageWant {
		pdir, segs := dgBuild(t, dir, 17)
		s := segs[len(segs)-1]
		if err := removeSegmentFiles(pdir, s.Base); err != nil {
			t.Fatal(err)
		}
		return damageWant{Doc: "the active segment deleted, the one before it sealed, and partition.meta's synced checkpoint in the deleted one: readers reach the seal and report the segment missing, appends are refused; a salvage makes it a segment of one gap, and appends go on after it",
			Records: 17, Checkpoint: [3]int64{s.Base, s.Size, 17},
			CorruptFile: dgRel(dir, s.Path), CorruptPos: 0, Intact: int(s.Base), Refusing: true,
			LostFrom: s.Base, LostTo: 17}
	}},
	{"lost-tail", func(t testing.TB, dir string) damageWant {
		_, segs := dgBuild(t, dir, 17)
		s := segs[len(segs)-1]
		f := s.Frames[len(s.Frames)-2]
		truncateFile(t, s.Path, f.Pos)
		return damageWant{Doc: "the active segment's last two frames cut off at a frame boundary, while partition.meta's synced checkpoint says they were committed: not a torn tail but records gone; readers report it, appends are refused; a salvage marks the offsets lost and appends go on after them",
			Records: 17, Checkpoint: [3]int64{s.Base, s.Size, 17},
			CorruptFile: dgRel(dir, s.Path), CorruptPos: f.Pos, Intact: int(f.Meta.Base), Refusing: true,
			LostFrom: f.Meta.Base, LostTo: 17}
	}},
	{"salvaged-gap", func(t testing.TB, dir string) damageWant {
		_, segs := dgBuild(t, dir, 17)
		s := segs[1]
		f := s.Frames[1]
		fd, err := os.OpenFile(s.Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fd.Close()
		if err := writeGap(fd, f.Pos, f.Pos+f.Meta.Size(), f.Meta.Base, f.Meta.End()); err != nil {
			t.Fatal(err)
		}
		if err := rebuildIndex(filepath.Dir(s.Path), s.Base, defaultIndexInterval); err != nil {
			t.Fatal(err)
		}
		return damageWant{Doc: "a log a salvage already fixed: a gap frame where a frame's bytes were, marking its offsets lost; readers skip it, Verify lists it and finds nothing wrong",
			Records: 17, LostFrom: f.Meta.Base, LostTo: f.Meta.End()}
	}},
}

func TestDamageGolden(t *testing.T) {
	if *updateDamage {
		for _, g := range damageGoldens {
			dir := filepath.Join("testdata", "damage", g.name)
			os.RemoveAll(dir)
			logDir := filepath.Join(dir, "log")
			want := g.build(t, logDir)
			want.ValueSize = dgValueSize
			if want.Checkpoint == ([3]int64{}) {
				// The last writer synced everything: a checkpoint at the end.
				segs := parsePartitionLoose(t, filepath.Join(logDir, "topics", "t", "0"))
				last := segs[len(segs)-1]
				want.Checkpoint = [3]int64{last.Base, last.Size, int64(want.Records)}
			}
			os.Remove(filepath.Join(logDir, "groups"))
			os.Remove(filepath.Join(logDir, "topics", "t", ".create.lock"))
			os.Remove(filepath.Join(logDir, "topics", "t", "0", metaFileName)) // boot ids are per machine
			data, _ := json.MarshalIndent(want, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "want.json"), append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range damageGoldens {
		t.Run(g.name, func(t *testing.T) {
			gdir := filepath.Join("testdata", "damage", g.name)
			data, err := os.ReadFile(filepath.Join(gdir, "want.json"))
			if err != nil {
				t.Fatalf("%v (go test -run TestDamageGolden -update-damage writes it)", err)
			}
			var want damageWant
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			copyTree(t, filepath.Join(gdir, "log"), dir)
			checkDamageGolden(t, dir, want)
		})
	}
}

func checkDamageGolden(t *testing.T, dir string, want damageWant) {
	pdir := filepath.Join(dir, "topics", "t", "0")
	cp := want.Checkpoint
	writeMeta(t, pdir, currentBootID, cp[0], cp[1], cp[2])
	values := make([][]byte, want.Records)
	for i := range values {
		values[i] = tornValue(i, want.ValueSize)
	}
	corrupt := filepath.Join(dir, want.CorruptFile)
	isLost := func(off int64) bool { return off >= want.LostFrom && off < want.LostTo }
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	ctx := context.Background()

	// readBack checks records read from the start: each at its offset,
	// as written, skipping the gap; it returns the offset after them.
	readBack := func(recs []Record) int64 {
		t.Helper()
		next := int64(0)
		for _, r := range recs {
			for want.CorruptFile == "" && isLost(next) {
				next++
			}
			if r.Offset != next {
				t.Fatalf("record at offset %d, want %d", r.Offset, next)
			}
			if next < int64(want.Records) && (string(r.Value) != string(values[next]) || string(r.Key) != fmt.Sprintf("k%d", next)) {
				t.Fatalf("record %d is not what was written", next)
			}
			next++
		}
		return next
	}
	recs, err := readAvailableErr(t, l, "t")
	readBack(recs)
	var ce *CorruptError
	switch {
	case want.CorruptFile == "":
		if err != nil || len(recs) != want.Records-int(want.LostTo-want.LostFrom) {
			t.Fatalf("reader: %d records, %v", len(recs), err)
		}
	case !errors.As(err, &ce) || ce.Path != corrupt || ce.Pos != want.CorruptPos || len(recs) != want.Intact:
		t.Fatalf("reader: %d records, then %v; want %d, then the damage at %s byte %d", len(recs), err, want.Intact, want.CorruptFile, want.CorruptPos)
	}
	rep, err := l.Verify(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want.CorruptFile == "" {
		if !rep.OK() || len(rep.Gaps) != 1 || rep.Gaps[0].From != want.LostFrom || rep.Gaps[0].To != want.LostTo {
			t.Fatalf("Verify: %v, gaps %+v", rep.Problems, rep.Gaps)
		}
		return
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Path != corrupt || rep.Problems[0].Pos != want.CorruptPos {
		t.Errorf("Verify: %v; want a problem at %s byte %d", rep.Problems, want.CorruptFile, want.CorruptPos)
	}
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(ctx, Record{Value: []byte("before the salvage"), Time: tornTime(99)}); want.Refusing != errors.Is(err, ErrCorrupt) {
		t.Errorf("Send before the salvage: %v (refusing: %v)", err, want.Refusing)
	}
	if want.Refusing {
		// The writer found committed records gone: reported as a loss.
		reps := l.Recoveries()
		if st := l.Stats(); st.RecordsLost != want.LostTo-want.LostFrom || len(reps) != 1 || reps[0].Reboot ||
			reps[0].LostFrom != want.LostFrom || reps[0].LostTo != want.LostTo || reps[0].LostReason == "" {
			t.Errorf("loss report: RecordsLost %d, Recoveries %+v; want offsets [%d, %d)", st.RecordsLost, reps, want.LostFrom, want.LostTo)
		}
	}

	rrep, err := l.Repair(ctx, "", &RepairOptions{Salvage: true})
	if err != nil || len(rrep.Remaining) != 0 {
		t.Fatalf("salvage: %v, remaining %v", err, rrep.Remaining)
	}
	if len(rrep.Gaps) != 1 || rrep.Gaps[0].From != want.LostFrom || rrep.Gaps[0].To != want.LostTo {
		t.Errorf("gaps after the salvage %+v, want [%d, %d)", rrep.Gaps, want.LostFrom, want.LostTo)
	}
	end := int64(want.Records)
	if !want.Refusing {
		end++ // the append before the salvage
	}
	if pos, err := p.Send(ctx, Record{Value: []byte("after the salvage"), Time: tornTime(100)}); err != nil || pos.Offset != end {
		t.Errorf("Send after the salvage: %+v, %v; want offset %d", pos, err, end)
	}
	recs, err = readAvailableErr(t, l, "t")
	if err != nil {
		t.Fatal(err)
	}
	want.CorruptFile = "" // salvaged: the gap is skipped
	if next := readBack(recs); next != end+1 {
		t.Errorf("after the salvage the log reads to offset %d, want %d", next, end+1)
	}
}

// parsePartitionLoose lists a damaged partition's segments by name, with
// their sizes.
func parsePartitionLoose(t testing.TB, pdir string) []diskSeg {
	t.Helper()
	bases, err := listSegments(pdir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []diskSeg
	for _, b := range bases {
		path := segmentPath(pdir, b, logExt)
		segs = append(segs, diskSeg{Base: b, Path: path, Size: fileSize(t, path)})
	}
	return segs
}
