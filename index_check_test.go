package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Index damage costs speed, never records: these tests damage index
// entries in the ways that would make a lookup start late (a time entry
// made older, an offset moved up, a seal's time made older than the
// segment) or make retention think a segment old, and check that every
// lookup still starts at the right record, and that no segment goes
// early.

// syncBuffer is a bytes.Buffer safe for a slog handler and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeTimeIndexFile(t testing.TB, path string, ents []timeEnt) {
	t.Helper()
	var b []byte
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.TS))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Rel))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeIndexFile(t testing.TB, path string, ents []idxEnt) {
	t.Helper()
	var b []byte
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Rel))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Pos))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAtTimeDamagedTimeIndex damages one segment's time index so that
// entries claim records older than they are, and starts consumers at
// the time of every record of the segment: each must start at the first
// record at or after its time, as with an intact index. The damage is
// logged, once.
func TestAtTimeDamagedTimeIndex(t *testing.T) {
	slowAlone(t)
	const n = 1000
	increasing := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	rng := rand.New(rand.NewPCG(3, 4))
	stamps := make([]time.Time, n)
	for i := range stamps {
		stamps[i] = testEpoch.Add(time.Duration(rng.IntN(100_000)) * time.Millisecond)
	}
	for i := 40; i < n; i += 90 {
		stamps[i] = testEpoch.Add(time.Duration(200_000+i) * time.Millisecond)
	}
	unordered := func(i int) time.Time { return stamps[i] }

	type damage struct {
		name string
		// seg picks the segment: 0, 1 (sealed) or -1 (the last, active).
		seg int
		// single: only one entry is changed. Lookups must then be right
		// whatever the timestamps; with more entries changed, when they
		// increase with offsets.
		single bool
		edit   func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt
	}
	lowered := func(ents []timeEnt) int {
		// The middle entry whose time is later than the one before.
		for j := len(ents) / 2; j < len(ents)-1; j++ {
			if ents[j].TS > ents[j-1].TS {
				return j
			}
		}
		return -1
	}
	damages := []damage{
		{"one entry left at a late offset", 0, false, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			// What the fuzzer found: 12 bytes that send a lookup for the
			// segment's first records to the middle of it.
			return []timeEnt{{TS: ents[0].TS, Rel: ents[len(ents)/2].Rel}}
		}},
		{"an entry made older", 0, true, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			j := lowered(ents)
			if j < 0 {
				t.Skip("no entry later than the one before it")
			}
			ents[j].TS = ents[j-1].TS
			return ents
		}},
		{"an entry made older, middle segment", 1, true, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			j := lowered(ents)
			if j < 0 {
				t.Skip("no entry later than the one before it")
			}
			ents[j].TS = ents[j-1].TS
			return ents
		}},
		{"an entry made older, active segment", -1, true, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			j := lowered(ents)
			if j < 0 {
				t.Skip("no entry later than the one before it")
			}
			ents[j].TS = ents[j-1].TS
			return ents
		}},
		{"the seal's entry made older", 0, true, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			k := len(ents) - 1
			ents[k].TS = ents[k-1].TS
			return ents
		}},
		{"an entry moved to a later frame", 0, true, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			// Entry j names the frame of entry j+1, which is gone: the
			// records between claim entry j's time.
			j := lowered(ents)
			if j < 0 {
				t.Skip("no entry later than the one before it")
			}
			j--
			ents[j].Rel = ents[j+1].Rel
			return slices.Delete(ents, j+1, j+2)
		}},
		{"every entry an hour older", 0, false, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			for j := range ents {
				ents[j].TS -= int64(time.Hour)
			}
			return ents
		}},
		{"the seal's entry alone, an hour older", 1, false, func(t *testing.T, s diskSeg, ents []timeEnt) []timeEnt {
			e := ents[len(ents)-1]
			return []timeEnt{{TS: e.TS - int64(time.Hour), Rel: e.Rel}}
		}},
	}
	for _, data := range []struct {
		name string
		ts   func(i int) time.Time
	}{{"increasing", increasing}, {"unordered", unordered}} {
		pristine := t.TempDir()
		sent, segs := buildIndexedSegments(t, pristine, n, data.ts)
		for _, d := range damages {
			if data.name == "unordered" && !d.single {
				continue
			}
			t.Run(data.name+"/"+d.name, func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, pristine, dir)
				pdir := filepath.Join(dir, "topics", "ix", "0")
				s := segs[(d.seg+len(segs))%len(segs)]
				end := s.recordFrames()[len(s.recordFrames())-1].Meta.End()
				var logged syncBuffer
				l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1,
					Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
				// A lookup past the segment while its index is intact: the
				// Log has checked its seal's entry before the damage.
				if end < n {
					checkTimeLookups(t, l, sent, []time.Time{sent[end].Time})
				}
				tpath := segmentPath(pdir, s.Base, timeIndexExt)
				ents := readTimeIndexFile(t, tpath)
				writeTimeIndexFile(t, tpath, d.edit(t, s, slices.Clone(ents)))

				var times []time.Time
				for off := s.Base; off < end; off++ {
					at := sent[off].Time
					times = append(times, at, at.Add(time.Nanosecond))
				}
				for _, e := range ents {
					times = append(times, time.Unix(0, e.TS), time.Unix(0, e.TS+1))
				}
				slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
				times = slices.CompactFunc(times, func(a, b time.Time) bool { return a.Equal(b) })
				checkTimeLookups(t, l, sent, times)

				if got := strings.Count(logged.String(), filepath.Base(tpath)); got > 1 || got == 0 && data.name == "increasing" {
					t.Errorf("the damage to %s was logged %d times, want once:\n%s", filepath.Base(tpath), got, logged.String())
				}
			})
		}
	}
}

// TestRetentionDamagedTimeIndex damages a sealed segment's time index so
// that it claims the segment's records are hours old; they are new, and
// retention by age must keep the segment.
func TestRetentionDamagedTimeIndex(t *testing.T) {
	const size, n = 1000, 200
	tests := []struct {
		name string
		edit func(ents []timeEnt) []timeEnt
	}{
		{"every entry three hours older", func(ents []timeEnt) []timeEnt {
			for j := range ents {
				ents[j].TS -= int64(3 * time.Hour)
			}
			return ents
		}},
		{"the seal's entry alone, three hours older", func(ents []timeEnt) []timeEnt {
			e := ents[len(ents)-1]
			return []timeEnt{{TS: e.TS - int64(3*time.Hour), Rel: e.Rel}}
		}},
		{"the seal's entry as old as the one before it", func(ents []timeEnt) []timeEnt {
			k := len(ents) - 1
			ents[k].TS = ents[k-1].TS
			return ents
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged syncBuffer
			l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1,
				Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionAge: time.Hour})
			now := time.Now()
			// Three hours old at first, then new: the newest record of
			// the first segment is its last.
			retProduce(t, l, "t", 0, n, size, func(i int) time.Time {
				if i < 10 {
					return now.Add(-3 * time.Hour).Add(time.Duration(i) * time.Millisecond)
				}
				return now.Add(time.Duration(i) * time.Millisecond)
			})
			dir := partDir(l, "t", 0)
			bases := retBases(t, l, "t")
			if len(bases) < 3 || bases[0] != 0 {
				t.Fatalf("test setup: segments %v", bases)
			}
			tpath := segmentPath(dir, 0, timeIndexExt)
			ents := readTimeIndexFile(t, tpath)
			if len(ents) < 2 || ents[len(ents)-1].Rel != bases[1] {
				t.Fatalf("test setup: time index %+v of a segment sealed at %d", ents, bases[1])
			}
			writeTimeIndexFile(t, tpath, tt.edit(slices.Clone(ents)))

			size0 := fileSize(t, segmentPath(dir, 0, logExt))
			newest, err := segmentNewest(dir, 0, bases[1], size0, nil)
			if want := now.Add(time.Duration(bases[1]-1) * time.Millisecond).UnixNano(); err != nil || newest != want {
				t.Errorf("segmentNewest: %d, %v; want %d, the segment's last record", newest, err, want)
			}
			if err := l.EnforceRetention(context.Background()); err != nil {
				t.Fatal(err)
			}
			if after := retBases(t, l, "t"); !slices.Equal(after, bases) {
				t.Errorf("segments %v after retention, want %v: a segment of new records was removed", after, bases)
			}
			retCheckFrom(t, l, "t", 0, n, size)
			if !strings.Contains(logged.String(), filepath.Base(tpath)) {
				t.Errorf("the damage to %s was not logged:\n%s", filepath.Base(tpath), logged.String())
			}
		})
	}
}

// TestOffsetIndexDamagedEntries damages offset index entries so that they
// name the wrong frame: lookups by offset check the frame an entry points
// at, so each still starts at the right record, and so does Latest.
func TestOffsetIndexDamagedEntries(t *testing.T) {
	const n = 1000
	ts := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	pristine := t.TempDir()
	sent, segs := buildIndexedSegments(t, pristine, n, ts)
	// framePosAfter is the position of the first frame after rel.
	framePosAfter := func(s diskSeg, rel int64) (int64, int64) {
		for _, f := range s.recordFrames() {
			if f.Meta.Base-s.Base > rel {
				return f.Meta.Base - s.Base, f.Pos
			}
		}
		return -1, -1
	}
	tests := []struct {
		name string
		edit func(s diskSeg, ents []idxEnt) []idxEnt
	}{
		{"positions moved to the next frame", func(s diskSeg, ents []idxEnt) []idxEnt {
			for j := range ents {
				if _, pos := framePosAfter(s, ents[j].Rel); pos > 0 && (j == len(ents)-1 || pos < ents[j+1].Pos) {
					ents[j].Pos = pos
				}
			}
			return ents
		}},
		{"offsets moved to the next frame", func(s diskSeg, ents []idxEnt) []idxEnt {
			for j := range ents {
				if rel, _ := framePosAfter(s, ents[j].Rel); rel > 0 && (j == len(ents)-1 || rel < ents[j+1].Rel) {
					ents[j].Rel = rel
				}
			}
			return ents
		}},
		{"offsets one early", func(s diskSeg, ents []idxEnt) []idxEnt {
			for j := range ents {
				if j == 0 || ents[j].Rel-1 > ents[j-1].Rel {
					ents[j].Rel--
				}
			}
			return ents
		}},
		{"positions into the middle of frames", func(s diskSeg, ents []idxEnt) []idxEnt {
			for j := range ents {
				ents[j].Pos += 8
			}
			return ents
		}},
	}
	for _, tt := range tests {
		for _, seg := range []int{0, len(segs) - 1} {
			s := segs[seg]
			t.Run(tt.name+"/"+filepath.Base(s.Path), func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, pristine, dir)
				pdir := filepath.Join(dir, "topics", "ix", "0")
				ipath := segmentPath(pdir, s.Base, indexExt)
				ents := readIndexFile(t, ipath)
				edited := tt.edit(s, slices.Clone(ents))
				if slices.Equal(ents, edited) {
					t.Fatal("test setup: no entry could be changed")
				}
				writeIndexFile(t, ipath, edited)
				l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
				end := s.recordFrames()[len(s.recordFrames())-1].Meta.End()
				var offsets []int64
				for off := s.Base; off < end; off += 3 {
					offsets = append(offsets, off)
				}
				checkOffsetLookups(t, l, sent, append(offsets, end-1))
				c, err := l.Consumer("ix", &ConsumerOptions{Start: Latest})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := c.Position(0); got != n {
					t.Errorf("Latest: position %d, want %d", got, n)
				}
			})
		}
	}
}

// TestTimeIndexDamageNotCarriedForward damages the last time entry of the
// active segment, which a writer continues from: the entries it adds after
// reopening must still bound every record before them, and lookups must
// find the late record the damaged entry hid.
func TestTimeIndexDamageNotCarriedForward(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "ix", TopicConfig{Partitions: 1, IndexIntervalBytes: idxInterval})
	p, _ := l.Producer("ix", nil)
	pdir := partDir(l, "ix", 0)
	tpath := segmentPath(pdir, 0, timeIndexExt)
	var all []Record
	send := func(at time.Time) {
		r := Record{Value: payload(len(all), 100), Time: at}
		sendSeq(t, p, int64(len(all)), []Record{r})
		all = append(all, r)
	}
	normal := func() time.Time { return testEpoch.Add(time.Duration(len(all)) * time.Second) }
	for len(all) < 20 {
		send(normal())
	}
	// A late record, and then records until an entry bounds it.
	spike := testEpoch.Add(1000 * time.Hour)
	send(spike)
	for ents := readTimeIndexFile(t, tpath); ents[len(ents)-1].TS != spike.UnixNano(); ents = readTimeIndexFile(t, tpath) {
		send(normal())
	}
	l.Close()
	ents := readTimeIndexFile(t, tpath)
	k := len(ents) - 1
	if k < 1 || ents[k].TS != spike.UnixNano() || ents[k-1].TS >= spike.UnixNano() {
		t.Fatalf("test setup: time index %+v, want it to end with the late record's entry", ents)
	}
	ents[k].TS = ents[k-1].TS
	writeTimeIndexFile(t, tpath, ents)

	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p, _ = l.Producer("ix", nil)
	for range 40 {
		send(normal())
	}
	seg := parsePartition(t, pdir, 0)[0]
	checkTimeIndex(t, seg, readTimeIndexFile(t, tpath), all)
	checkTimeLookups(t, l, all, []time.Time{spike, spike.Add(-time.Hour)})
	got, err := lookup(l, "ix", AtTime(spike), 1)
	if want := wantRecs(int64(slices.IndexFunc(all, func(r Record) bool { return r.Time.Equal(spike) })), []Record{{Value: payload(20, 100), Time: spike}}); err != nil || !cmp.Equal(got, want) {
		t.Errorf("AtTime(the late record): %+v, %v; want %+v", got, err, want)
	}
}

// TestAtTimeOneDamagedEntry changes one time index entry at random, over
// timestamps that go back and forth by more than an index interval holds:
// whatever that entry says, no lookup starts late.
func TestAtTimeOneDamagedEntry(t *testing.T) {
	const n = 1000
	rng := rand.New(rand.NewPCG(5, 6))
	stamps := make([]time.Time, n)
	for i := range stamps {
		stamps[i] = testEpoch.Add(time.Duration(i*10+rng.IntN(400)) * time.Millisecond)
	}
	pristine := t.TempDir()
	sent, segs := buildIndexedSegments(t, pristine, n, func(i int) time.Time { return stamps[i] })
	for round := range 16 {
		s := segs[rng.IntN(len(segs))]
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		tpath := segmentPath(filepath.Join(dir, "topics", "ix", "0"), s.Base, timeIndexExt)
		ents := readTimeIndexFile(t, tpath)
		j := 1 + rng.IntN(len(ents)-1)
		before := ents[j]
		switch {
		case round%2 == 0 && j+1 < len(ents) && ents[j+1].Rel-ents[j].Rel > 1:
			// A later offset, still before the next entry's.
			ents[j].Rel += 1 + rng.Int64N(ents[j+1].Rel-ents[j].Rel-1)
		case ents[j].TS > ents[j-1].TS:
			// An older time, still no older than the entry before.
			ents[j].TS = ents[j-1].TS + rng.Int64N(ents[j].TS-ents[j-1].TS)
		default:
			continue
		}
		writeTimeIndexFile(t, tpath, ents)
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		// The records around the entry, and its times.
		times := []time.Time{time.Unix(0, ents[j].TS+1), time.Unix(0, before.TS)}
		for off := s.Base + max(ents[j-1].Rel-40, 0); off < min(s.Base+ents[j].Rel+40, n); off++ {
			times = append(times, sent[off].Time)
		}
		t.Logf("round %d: segment %d entry %d %+v, damaged %+v", round, s.Base, j, before, ents[j])
		checkTimeLookups(t, l, sent, times)
		l.Close()
	}
}
