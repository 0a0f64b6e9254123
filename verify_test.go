package runnel

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

const (
	vfRecords = 400
	vfSize    = 500
)

// vfLog builds a closed log with topic "t": one partition of several
// segments holding payload(i) at offset i, and a group "g" with committed
// offsets. It returns the directory and the parsed segments.
func vfLog(t *testing.T) (string, []diskSeg) {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(dir, testOptions(t, &Options{Durability: Buffered, MaxBatchBytes: 4 << 10, RetentionInterval: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 2048})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts := time.Unix(1_700_000_000, 0)
	for i := range vfRecords {
		p.SendAsync(Record{Value: payload(i, vfSize), Time: ts.Add(time.Duration(i%50) * time.Second)}, nil)
		if i%7 == 0 || i == vfRecords-2 {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(vfRecords/2), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := parsePartition(t, filepath.Join(dir, "topics", "t", "0"), 0)
	if len(segs) < 3 {
		t.Fatalf("log has %d segments", len(segs))
	}
	return dir, segs
}

func TestVerifyClean(t *testing.T) {
	dir, segs := vfLog(t)
	l := openTest(t, dir, nil)
	var calls, last, total int64
	rep, err := l.Verify(context.Background(), "", &VerifyOptions{Progress: func(done, tot int64) {
		calls++
		if done < last || done > tot {
			t.Errorf("progress %d of %d after %d", done, tot, last)
		}
		last, total = done, tot
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("problems in a clean log: %v", rep.Problems)
	}
	var bytes int64
	for _, s := range segs {
		bytes += s.Size
	}
	want := []PartitionCheck{{Topic: "t", Partition: 0, Segments: len(segs), Records: vfRecords, Bytes: bytes, NextOffset: vfRecords}}
	if diff := cmp.Diff(want, rep.Partitions, cmpIgnore("Frames")); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	if calls == 0 || last != total || total != bytes {
		t.Errorf("progress: %d calls, last %d of %d, want %d", calls, last, total, bytes)
	}
	if len(rep.Notes) != 0 {
		t.Errorf("notes: %v", rep.Notes)
	}
}

func cmpIgnore(field string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == "."+field }, cmp.Ignore())
}

// TestVerifyRepairDamage damages a copy of the base log in one way per
// case and checks what Verify reports (kind, file and byte position), what
// Repair does, and what Verify says after it.
func TestVerifyRepairDamage(t *testing.T) {
	logPath := func(s diskSeg) string { return s.Path }
	idxPath := func(s diskSeg) string { return strings.TrimSuffix(s.Path, logExt) + indexExt }
	timPath := func(s diskSeg) string { return strings.TrimSuffix(s.Path, logExt) + timeIndexExt }
	mid := func(s diskSeg) diskFrame { return s.Frames[len(s.Frames)/2] }
	lastFrame := func(segs []diskSeg) diskFrame {
		s := segs[len(segs)-1]
		return s.Frames[len(s.Frames)-1]
	}
	type want struct {
		kind ProblemKind
		path string
		pos  int64
	}
	cases := []struct {
		name string
		// damage changes the copy and returns the first problem expected.
		damage    func(t *testing.T, dir string, segs []diskSeg) want
		kinds     []ProblemKind // every kind reported, sorted
		repairs   []RepairKind  // what Repair does, sorted
		fixed     bool          // Verify finds nothing after Repair
		records   int           // records readable after Repair (-1: not checked)
		remaining ProblemKind   // the kind Repair leaves, if not fixed
	}{{
		name: "flipped byte in a sealed segment",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			f := mid(segs[0])
			writeAt(t, logPath(segs[0]), f.Pos+frame.HeaderSize+3, []byte{'#'})
			return want{ProblemCorrupt, logPath(segs[0]), f.Pos}
		},
		kinds: []ProblemKind{ProblemCorrupt}, remaining: ProblemCorrupt, records: -1,
	}, {
		name: "torn tail",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			s, f := segs[len(segs)-1], lastFrame(segs)
			if err := os.Truncate(logPath(s), f.Pos+f.Meta.Size()/2); err != nil {
				t.Fatal(err)
			}
			diedAt(t, filepath.Dir(s.Path), s.Base, f.Pos, f.Meta.Base)
			return want{ProblemTornTail, logPath(s), f.Pos}
		},
		kinds: []ProblemKind{ProblemTornTail}, repairs: []RepairKind{RepairCutTail}, fixed: true,
		records: vfRecords - 1, // the last frame holds one record (the final Flush)
	}, {
		name: "uncommitted last frame",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			s, f := segs[len(segs)-1], lastFrame(segs)
			writeAt(t, logPath(s), f.Pos+frame.OffState, []byte{frame.StateWritten})
			diedAt(t, filepath.Dir(s.Path), s.Base, f.Pos, f.Meta.Base)
			return want{ProblemTornTail, logPath(s), f.Pos}
		},
		kinds: []ProblemKind{ProblemTornTail}, repairs: []RepairKind{RepairCutTail}, fixed: true, records: -1,
	}, {
		name: "index entry pointing nowhere",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			writeAt(t, idxPath(segs[1]), indexEntrySize, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 9), 4100))
			return want{ProblemIndex, idxPath(segs[1]), indexEntrySize}
		},
		kinds: []ProblemKind{ProblemIndex}, repairs: []RepairKind{RepairRebuiltIndex}, fixed: true, records: vfRecords,
	}, {
		name: "time index entry too old",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			n := fileSize(t, timPath(segs[0])) / timeIndexEntrySize
			writeAt(t, timPath(segs[0]), (n-1)*timeIndexEntrySize, binary.LittleEndian.AppendUint64(nil, 5))
			return want{ProblemIndex, timPath(segs[0]), (n - 1) * timeIndexEntrySize}
		},
		kinds: []ProblemKind{ProblemIndex}, repairs: []RepairKind{RepairRebuiltIndex}, fixed: true, records: vfRecords,
	}, {
		name: "time index missing",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			if err := os.Remove(timPath(segs[1])); err != nil {
				t.Fatal(err)
			}
			return want{ProblemIndex, timPath(segs[1]), -1}
		},
		kinds: []ProblemKind{ProblemIndex}, repairs: []RepairKind{RepairRebuiltIndex}, fixed: true, records: vfRecords,
	}, {
		name: "seal cut off",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			seal := segs[0].Frames[len(segs[0].Frames)-1]
			if err := os.Truncate(logPath(segs[0]), seal.Pos); err != nil {
				t.Fatal(err)
			}
			return want{ProblemCorrupt, logPath(segs[0]), seal.Pos}
		},
		kinds: []ProblemKind{ProblemCorrupt}, remaining: ProblemCorrupt, records: -1,
	}, {
		name: "segment missing",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			if err := removeSegmentFiles(filepath.Dir(segs[1].Path), segs[1].Base); err != nil {
				t.Fatal(err)
			}
			return want{ProblemCorrupt, logPath(segs[1]), 0}
		},
		kinds: []ProblemKind{ProblemCorrupt}, remaining: ProblemCorrupt, records: -1,
	}, {
		name: "zeroed page",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			f := mid(segs[1])
			writeAt(t, logPath(segs[1]), f.Pos, make([]byte, 4096))
			return want{ProblemCorrupt, logPath(segs[1]), f.Pos}
		},
		kinds: []ProblemKind{ProblemCorrupt}, remaining: ProblemCorrupt, records: -1,
	}, {
		name: "offsets file slots",
		damage: func(t *testing.T, dir string, segs []diskSeg) want {
			path := offsetsPath(dir, "g", "t")
			writeAt(t, path, blockPos(0), make([]byte, 2*slotSize))
			return want{ProblemOffsets, path, blockPos(0)}
		},
		kinds: []ProblemKind{ProblemOffsets}, remaining: ProblemOffsets, records: vfRecords,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, segs := vfLog(t)
			w := tc.damage(t, dir, segs)
			l := openTest(t, dir, &Options{RetentionInterval: -1})
			ctx := context.Background()
			rep, err := l.Verify(ctx, "t", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) == 0 {
				t.Fatal("Verify found nothing")
			}
			p := rep.Problems[0]
			if p.Kind != w.kind || p.Path != w.path || p.Pos != w.pos {
				t.Errorf("first problem %v, want %v in %s at byte %d", p, w.kind, w.path, w.pos)
			}
			var kinds []ProblemKind
			for _, p := range rep.Problems {
				if !slices.Contains(kinds, p.Kind) {
					kinds = append(kinds, p.Kind)
				}
				if p.String() == "" || p.Detail == "" {
					t.Errorf("problem without words: %#v", p)
				}
			}
			slices.Sort(kinds)
			if diff := cmp.Diff(tc.kinds, kinds); diff != "" {
				t.Errorf("kinds (-want +got):\n%s\nproblems: %v", diff, rep.Problems)
			}

			rrep, err := l.Repair(ctx, "t", nil)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			var done []RepairKind
			for _, a := range rrep.Actions {
				if !slices.Contains(done, a.Kind) {
					done = append(done, a.Kind)
				}
			}
			slices.Sort(done)
			if diff := cmp.Diff(tc.repairs, done); diff != "" {
				t.Errorf("repairs (-want +got):\n%s\nactions: %v", diff, rrep.Actions)
			}
			after, err := l.Verify(ctx, "t", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.fixed != after.OK() || tc.fixed != (len(rrep.Remaining) == 0) {
				t.Errorf("after Repair: problems %v, remaining %v; want fixed=%v", after.Problems, rrep.Remaining, tc.fixed)
			}
			if !tc.fixed && (len(rrep.Remaining) == 0 || rrep.Remaining[0].Kind != tc.remaining) {
				t.Errorf("remaining %v, want %v", rrep.Remaining, tc.remaining)
			}
			if tc.records >= 0 {
				got := readAvailable(t, l, "t")
				if len(got) != tc.records {
					t.Errorf("%d records readable after Repair, want %d", len(got), tc.records)
				}
				for i, r := range got {
					if r.Offset != int64(i) || string(r.Value) != string(payload(i, vfSize)) {
						t.Fatalf("record %d: offset %d value %.20q", i, r.Offset, r.Value)
					}
				}
				// A repaired log takes appends at the right offset.
				if tc.fixed {
					p, _ := l.Producer("t", nil)
					pos, err := p.Send(ctx, Record{Value: []byte("after")})
					if err != nil || pos.Offset != int64(tc.records) {
						t.Errorf("append after Repair: %+v, %v; want offset %d", pos, err, tc.records)
					}
				}
			}
		})
	}
}

func TestVerifyWhileWriting(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: 4 << 10})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2, SegmentBytes: minSegmentBytes, RetentionBytes: 4 * minSegmentBytes})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p, _ := l.Producer("t", nil)
		for i := 0; ctx.Err() == nil; i++ {
			p.SendAsync(Record{Value: payload(i, 300)}, nil)
			if i%50 == 0 {
				p.Flush(ctx)
			}
		}
	}()
	l2 := openTest(t, l.Dir(), &Options{RetentionInterval: -1})
	for range 20 {
		rep, err := l2.Verify(context.Background(), "t", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("Verify during appends and retention: %v", rep.Problems)
		}
	}
	cancel()
	<-done
}

func TestDump(t *testing.T) {
	dir, segs := vfLog(t)
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	from := segs[1].Base + 5
	var frames []DumpFrame
	var recs []int64
	for f, err := range l.Dump("t", 0, from) {
		if err != nil {
			t.Fatal(err)
		}
		if f.Problem != "" {
			t.Errorf("problem in a clean log: %+v", f)
		}
		frames = append(frames, f)
		for _, r := range f.Records {
			if string(r.Value) != string(payload(int(r.Offset), vfSize)) {
				t.Fatalf("record %d: %.20q", r.Offset, r.Value)
			}
			recs = append(recs, r.Offset)
		}
	}
	if len(recs) != vfRecords-int(from) || recs[0] != from {
		t.Fatalf("Dump from %d gave %d records from %v", from, len(recs), recs[:min(1, len(recs))])
	}
	if f := frames[0]; f.Kind != "records" || f.Base > from || f.Base+int64(f.Count) <= from || f.Path != segs[1].Path {
		t.Errorf("first frame %+v does not hold offset %d", f, from)
	}
	seals := 0
	for _, f := range frames {
		if f.Kind == "seal" {
			seals++
		}
	}
	if seals != len(segs)-2 {
		t.Errorf("%d seals from segment 1 of %d", seals, len(segs))
	}

	// Damage shows as a frame with a problem, and the dump goes on.
	f := segs[0].Frames[3]
	writeAt(t, segs[0].Path, f.Pos+frame.HeaderSize+1, []byte{'#'})
	var bad []DumpFrame
	n := 0
	for df, err := range l.Dump("t", 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if df.Problem != "" {
			bad = append(bad, df)
		}
		n += len(df.Records)
	}
	if len(bad) != 1 || bad[0].Pos != f.Pos || !strings.Contains(bad[0].Problem, "checksum") {
		t.Errorf("damaged frames: %+v", bad)
	}
	if want := vfRecords - int(f.Meta.Count); n != want {
		t.Errorf("dump of a damaged log gave %d records, want %d", n, want)
	}
	if _, err := func() (DumpFrame, error) {
		for f, err := range l.Dump("t", 7, 0) {
			return f, err
		}
		return DumpFrame{}, nil
	}(); err == nil {
		t.Error("Dump of partition 7 of a 1-partition topic succeeded")
	}
}
