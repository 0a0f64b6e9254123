package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

const (
	idxInterval   = 256
	lookupTimeout = 500 * time.Millisecond
)

// lookup reads the first k records a new consumer starting at start gets.
func lookup(l *Log, topic string, start StartPosition, k int) ([]rec, error) {
	c, err := l.Consumer(topic, &ConsumerOptions{Start: start})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	var out []Record
	for len(out) < k {
		recs, err := c.Poll(ctx)
		for _, r := range recs {
			out = append(out, cloneRecord(r))
		}
		if err != nil {
			return recsOf(out), err
		}
	}
	return recsOf(out[:k]), nil
}

// buildIndexedSegments is buildIndexed, also returning the partition's
// segments as parsed from disk, at least the three the index tests damage
// and pass over.
func buildIndexedSegments(t testing.TB, dir string, n int, ts func(i int) time.Time) ([]Record, []diskSeg) {
	t.Helper()
	sent := buildIndexed(t, dir, n, ts)
	segs := parsePartition(t, filepath.Join(dir, "topics", "ix", "0"), smallSegment)
	if len(segs) < 3 {
		t.Fatalf("test setup: %d segments", len(segs))
	}
	return sent, segs
}

// buildIndexed writes n records with timestamps ts(i) in batches of varying
// size (SendAsync, then Flush), so that frames hold several records.
func buildIndexed(t testing.TB, dir string, n int, ts func(i int) time.Time) []Record {
	t.Helper()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "ix", TopicConfig{Partitions: 1, SegmentBytes: smallSegment, IndexIntervalBytes: idxInterval})
	p, _ := l.Producer("ix", nil)
	sent := make([]Record, n)
	got := make([]int64, n)
	for i := 0; i < n; {
		for k := 1 + (i/7)%9; k > 0 && i < n; k-- {
			j := i
			sent[j] = Record{Value: payload(j, 150), Time: ts(j)}
			p.SendAsync(sent[j], func(pos Position, err error) {
				if err != nil {
					t.Errorf("SendAsync %d: %v", j, err)
				}
				got[j] = pos.Offset
			})
			i++
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i, off := range got {
		if off != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, off)
		}
	}
	if st := l.Stats(); st.FramesWritten >= st.RecordsWritten {
		t.Fatalf("test setup: %d frames for %d records, want batches", st.FramesWritten, st.RecordsWritten)
	}
	return sent
}

type idxEnt struct{ Rel, Pos int64 }
type timeEnt struct{ TS, Rel int64 }

// readEntries parses an index file into entries of size bytes each.
func readEntries[E any](t testing.TB, path string, size int, parse func([]byte) E) []E {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%size != 0 {
		t.Errorf("%s is %d bytes, not whole entries", path, len(data))
	}
	var out []E
	for ; len(data) >= size; data = data[size:] {
		out = append(out, parse(data))
	}
	return out
}

func readIndexFile(t testing.TB, path string) []idxEnt {
	return readEntries(t, path, indexEntrySize, func(b []byte) idxEnt {
		return idxEnt{int64(binary.LittleEndian.Uint32(b)), int64(binary.LittleEndian.Uint32(b[4:]))}
	})
}

func readTimeIndexFile(t testing.TB, path string) []timeEnt {
	return readEntries(t, path, timeIndexEntrySize, func(b []byte) timeEnt {
		return timeEnt{int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint32(b[8:]))}
	})
}

// wantIndex is the offset index the writer's rule gives a segment: an
// entry for the first frame at or past each IndexIntervalBytes.
func wantIndex(s diskSeg, interval int64) []idxEnt {
	var out []idxEnt
	for _, f := range s.recordFrames() {
		if f.Pos > 0 && (len(out) == 0 && f.Pos >= interval || len(out) > 0 && f.Pos-out[len(out)-1].Pos >= interval) {
			out = append(out, idxEnt{f.Meta.Base - s.Base, f.Pos})
		}
	}
	return out
}

// checkTimeIndex checks what AtTime relies on: entries ordered, inside the
// segment, and each no older than every record before it.
func checkTimeIndex(t testing.TB, s diskSeg, ents []timeEnt, all []Record) {
	t.Helper()
	frames := s.recordFrames()
	count := int64(0)
	if len(frames) > 0 {
		count = frames[len(frames)-1].Meta.End() - s.Base
	}
	for i, e := range ents {
		if i > 0 && (e.Rel < ents[i-1].Rel || e.TS < ents[i-1].TS) {
			t.Errorf("segment %d time index entry %d %+v out of order after %+v", s.Base, i, e, ents[i-1])
		}
		if e.Rel > count {
			t.Errorf("segment %d time index entry %+v past its %d records", s.Base, e, count)
			continue
		}
		for off := s.Base; off < s.Base+e.Rel; off++ {
			if ts := all[off].Time.UnixNano(); ts > e.TS {
				t.Errorf("segment %d time index entry %+v, but offset %d before it has timestamp %d", s.Base, e, off, ts)
				return
			}
		}
	}
}

// firstAtOrAfter is the offset AtTime(ts) must start at, or -1.
func firstAtOrAfter(all []Record, ts time.Time) int {
	return slices.IndexFunc(all, func(r Record) bool { return !r.Time.Before(ts) })
}

// checkTimeLookups runs AtTime lookups and stops at the first wrong one
// (a wrong lookup often means waiting out lookupTimeout).
func checkTimeLookups(t *testing.T, l *Log, all []Record, times []time.Time) {
	t.Helper()
	for _, ts := range times {
		i := firstAtOrAfter(all, ts)
		if i < 0 {
			continue
		}
		k := min(3, len(all)-i)
		got, err := lookup(l, "ix", AtTime(ts), k)
		if diff := cmp.Diff(wantRecs(int64(i), all[i:i+k]), got); err != nil || diff != "" {
			t.Errorf("AtTime(%d): %v; want offset %d, diff (-want +got):\n%s", ts.UnixNano(), err, i, diff)
			return
		}
	}
}

func checkOffsetLookups(t *testing.T, l *Log, all []Record, offsets []int64) {
	t.Helper()
	for _, x := range offsets {
		k := min(4, len(all)-int(x))
		got, err := lookup(l, "ix", AtOffset(x), k)
		if diff := cmp.Diff(wantRecs(x, all[x:int(x)+k]), got); err != nil || diff != "" {
			t.Errorf("AtOffset(%d): %v; diff (-want +got):\n%s", x, err, diff)
		}
	}
}

// mutateIndexes applies f to every index file of a partition.
func mutateIndexes(t *testing.T, pdir string, f func(path string, segs map[string]diskSeg)) {
	segs := map[string]diskSeg{}
	for _, s := range parsePartition(t, pdir, smallSegment) {
		segs[segmentPath(pdir, s.Base, indexExt)] = s
		segs[segmentPath(pdir, s.Base, timeIndexExt)] = s
	}
	for path := range segs {
		f(path, segs)
	}
}

func TestIndexLookups(t *testing.T) {
	const n = 1000
	ts := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	pristine := t.TempDir()
	sent := buildIndexed(t, pristine, n, ts)
	pdir := filepath.Join(pristine, "topics", "ix", "0")
	segs := parsePartition(t, pdir, smallSegment)
	if len(segs) < 3 {
		t.Fatalf("test setup: %d segments", len(segs))
	}

	// Offsets at every boundary the lookup path has.
	offsets := []int64{0, n - 1}
	times := []time.Time{ts(0).Add(-time.Hour), ts(0), ts(n - 1)}
	multi := 0
	for _, s := range segs {
		idx := readIndexFile(t, segmentPath(pdir, s.Base, indexExt))
		if s.Base != segs[len(segs)-1].Base && len(idx) < 10 {
			t.Fatalf("test setup: segment %d has only %d index entries", s.Base, len(idx))
		}
		frames := s.recordFrames()
		last := frames[len(frames)-1].Meta.End() - 1
		offsets = append(offsets, s.Base, s.Base+1, last)
		times = append(times, ts(int(s.Base)), ts(int(s.Base)).Add(-time.Microsecond), ts(int(last)))
		for _, e := range idx[:min(5, len(idx))] {
			offsets = append(offsets, s.Base+e.Rel-1, s.Base+e.Rel, s.Base+e.Rel+1)
		}
		// The middle of the first and of a later multi-record frame.
		var batches []diskFrame
		for _, f := range frames {
			if f.Meta.Count >= 3 {
				batches = append(batches, f)
			}
		}
		multi += len(batches)
		if len(batches) > 0 {
			for _, f := range []diskFrame{batches[0], batches[len(batches)/2]} {
				mid := f.Meta.Base + int64(f.Meta.Count)/2
				offsets = append(offsets, mid)
				times = append(times, ts(int(mid)), ts(int(mid)).Add(-time.Microsecond))
			}
		}
	}
	if multi == 0 {
		t.Fatal("test setup: no frame holds three or more records")
	}
	slices.Sort(offsets)
	offsets = slices.Compact(offsets)

	tests := []struct {
		name   string
		mutate func(path string, s diskSeg)
	}{
		{"intact", func(string, diskSeg) {}},
		{"offset index missing", func(path string, _ diskSeg) {
			if filepath.Ext(path) == indexExt {
				os.Remove(path)
			}
		}},
		{"time index missing", func(path string, _ diskSeg) {
			if filepath.Ext(path) == timeIndexExt {
				os.Remove(path)
			}
		}},
		{"both missing", func(path string, _ diskSeg) { os.Remove(path) }},
		{"odd length", func(path string, _ diskSeg) {
			if st, err := os.Stat(path); err == nil && st.Size() > 5 {
				os.Truncate(path, st.Size()-5)
			}
		}},
		{"garbage", func(path string, _ diskSeg) {
			size := max(sizeOr0(path), 96)
			os.WriteFile(path, bytes.Repeat([]byte{0xAB}, int(size)), 0o644)
		}},
		{"offsets shifted", func(path string, _ diskSeg) {
			if filepath.Ext(path) != indexExt {
				return
			}
			data, _ := os.ReadFile(path)
			for i := 0; i+indexEntrySize <= len(data); i += indexEntrySize {
				binary.LittleEndian.PutUint32(data[i:], binary.LittleEndian.Uint32(data[i:])+3)
			}
			os.WriteFile(path, data, 0o644)
		}},
		{"entries past the log", func(path string, s diskSeg) {
			frames := s.recordFrames()
			end := frames[len(frames)-1].Meta.End()
			var e []byte
			if filepath.Ext(path) == indexExt {
				e = binary.LittleEndian.AppendUint32(e, uint32(end-s.Base+1000))
				e = binary.LittleEndian.AppendUint32(e, uint32(s.Size+64))
			} else {
				e = binary.LittleEndian.AppendUint64(e, uint64(sent[end-1].Time.UnixNano()+1))
				e = binary.LittleEndian.AppendUint32(e, uint32(end-s.Base+1000))
			}
			writeAt(t, path, sizeOr0(path), e)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, pristine, dir)
			pdir := filepath.Join(dir, "topics", "ix", "0")
			mutateIndexes(t, pdir, func(path string, segs map[string]diskSeg) { tt.mutate(path, segs[path]) })

			l := openTest(t, dir, &Options{Durability: Buffered})
			all := slices.Clone(sent)
			times := times
			if tt.name != "intact" {
				// Without a usable time index each lookup scans from the
				// segment start: a sample keeps the test fast.
				times = sample(times, 4)
			}
			checkOffsetLookups(t, l, all, offsets)
			checkTimeLookups(t, l, all, times)
			checkNothingAfter(t, l, ts(n), n)
			if _, err := lookup(l, "ix", AtOffset(n+1), 1); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("AtOffset(n+1): %v, want ErrOutOfRange", err)
			}

			// An append reopens the writer on the active segment, which
			// trims or rebuilds its indexes.
			p, _ := l.Producer("ix", nil)
			extra := Record{Value: []byte("extra"), Time: ts(n)}
			sendSeq(t, p, n, []Record{extra})
			all = append(all, extra)
			after := parsePartition(t, pdir, smallSegment)
			active := after[len(after)-1]
			gotIdx := readIndexFile(t, segmentPath(pdir, active.Base, indexExt))
			if diff := cmp.Diff(wantIndex(active, idxInterval), gotIdx); diff != "" {
				t.Errorf("active segment %d index after the append (-want +got):\n%s", active.Base, diff)
			}
			checkTimeIndex(t, active, readTimeIndexFile(t, segmentPath(pdir, active.Base, timeIndexExt)), all)
			checkOffsetLookups(t, l, all, append(offsets, n))
			checkTimeLookups(t, l, all, append(times, ts(n)))
			checkNothingAfter(t, l, ts(n+1), n+1)

			// The exact end: the consumer waits there for the next record.
			end, err := l.Consumer("ix", &ConsumerOptions{Start: AtOffset(n + 1)})
			if err != nil {
				t.Fatalf("AtOffset(end): %v", err)
			}
			defer end.Close()
			if recs, err := end.TryPoll(); len(recs) != 0 || err != nil {
				t.Fatalf("TryPoll at the end: %d records, %v", len(recs), err)
			}
			for _, x := range []int64{n + 2, n + 1000, -1} {
				if _, err := lookup(l, "ix", AtOffset(x), 1); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("AtOffset(%d) past the end %d: %v, want ErrOutOfRange", x, n+1, err)
				}
			}
			last := Record{Value: []byte("last"), Time: ts(n + 1)}
			sendSeq(t, p, n+1, []Record{last})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			recs, err := end.Poll(ctx)
			if diff := cmp.Diff(wantRecs(n+1, []Record{last}), recsOf(recs)); err != nil || diff != "" {
				t.Errorf("Poll at the end: %v, diff (-want +got):\n%s", err, diff)
			}
		})
	}
}

// checkNothingAfter starts a consumer at a time after every record of a
// partition that ends at offset end: it must read to the end and get nothing.
func checkNothingAfter(t *testing.T, l *Log, at time.Time, end int64) {
	t.Helper()
	c, err := l.Consumer("ix", &ConsumerOptions{Start: AtTime(at)})
	if err != nil {
		t.Errorf("AtTime(%d) after every record: %v", at.UnixNano(), err)
		return
	}
	defer c.Close()
	for range 100 {
		recs, err := c.TryPoll()
		if err != nil || len(recs) != 0 {
			t.Errorf("AtTime(%d) after every record: TryPoll got %d records (%+v), %v; want none", at.UnixNano(), len(recs), recsOf(recs), err)
			return
		}
		if c.Position(0) == end {
			return
		}
	}
	t.Errorf("AtTime(%d) after every record: position %d, never reached the end %d", at.UnixNano(), c.Position(0), end)
}

// sample returns every k-th element of s.
func sample[T any](s []T, k int) []T {
	var out []T
	for i := 0; i < len(s); i += k {
		out = append(out, s[i])
	}
	return out
}

// TestAtTimeAfterEverything starts a consumer at a time no record reaches:
// it gets nothing until a record that new is appended.
func TestAtTimeAfterEverything(t *testing.T) {
	const n = 1000
	ts := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	dir := t.TempDir()
	buildIndexed(t, dir, n, ts)
	l := openTest(t, dir, &Options{Durability: Buffered})
	at := ts(n).Add(time.Hour)
	c, err := l.Consumer("ix", &ConsumerOptions{Start: AtTime(at)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 100 {
		recs, err := c.TryPoll()
		if err != nil || len(recs) != 0 {
			t.Fatalf("TryPoll: %d records (first %+v), %v; want none", len(recs), recsOf(recs), err)
		}
		if c.Position(0) == n {
			break
		}
	}
	p, _ := l.Producer("ix", nil)
	older := Record{Value: []byte("older"), Time: at.Add(-time.Minute)}
	newer := Record{Value: []byte("newer"), Time: at}
	sendSeq(t, p, n, []Record{older, newer})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := c.Poll(ctx)
	if diff := cmp.Diff(wantRecs(n+1, []Record{newer}), recsOf(recs)); err != nil || diff != "" {
		t.Errorf("Poll: %v, diff (-want +got):\n%s", err, diff)
	}
}

// TestAtTimeBeyondNanoseconds: a time that int64 nanoseconds cannot
// hold (after 2262, before 1678: a mistyped year, milliseconds given as
// microseconds) is still after, or before, every record, instead of
// wrapping around to the other end.
func TestAtTimeBeyondNanoseconds(t *testing.T) {
	const n = 300
	ts := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	dir := t.TempDir()
	all := buildIndexed(t, dir, n, ts)
	l := openTest(t, dir, &Options{Durability: Buffered})
	checkNothingAfter(t, l, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), n)
	checkNothingAfter(t, l, time.UnixMilli(1_733_443_200_000_000), n)
	got, err := lookup(l, "ix", AtTime(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)), 3)
	if diff := cmp.Diff(wantRecs(0, all[:3]), got); err != nil || diff != "" {
		t.Errorf("AtTime(1600): %v; want offset 0, diff (-want +got):\n%s", err, diff)
	}
}

// TestAtTimeUnordered checks AtTime on timestamps that go back and forth:
// it starts at the first record in offset order at or after the time.
func TestAtTimeUnordered(t *testing.T) {
	const n = 1500
	rng := rand.New(rand.NewPCG(1, 2))
	stamps := make([]time.Time, n)
	for i := range stamps {
		stamps[i] = testEpoch.Add(time.Duration(rng.IntN(100_000)) * time.Millisecond)
	}
	// A late spike near the start of each segment-sized stretch.
	for i := 100; i < n; i += 450 {
		stamps[i] = testEpoch.Add(time.Duration(200_000+i) * time.Millisecond)
	}
	dir := t.TempDir()
	all, _ := buildIndexedSegments(t, dir, n, func(i int) time.Time { return stamps[i] })
	l := openTest(t, dir, &Options{Durability: Buffered})
	times := []time.Time{testEpoch.Add(-time.Second)}
	for i := 0; i < n; i += 97 {
		times = append(times, stamps[i], stamps[i].Add(time.Nanosecond), stamps[i].Add(-time.Nanosecond))
	}
	for i := 100; i < n; i += 450 {
		times = append(times, stamps[i], stamps[i].Add(-time.Millisecond))
	}
	checkTimeLookups(t, l, all, times)
}

// TestTimeIndexRebuiltAfterLoss loses time index entries that carry a late
// timestamp, then appends: the entries the writer adds next must still be
// no older than every record before them.
func TestTimeIndexRebuiltAfterLoss(t *testing.T) {
	const n, spike = 40, 5
	tests := []struct {
		name string
		lose func(path string)
	}{
		{"time index deleted", func(path string) { os.Remove(path) }},
		{"last time entry lost", func(path string) {
			// As if the writer died between its .index and .timeindex writes.
			os.Truncate(path, sizeOr0(path)-timeIndexEntrySize)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered})
			mustCreate(t, l, "ix", TopicConfig{Partitions: 1, IndexIntervalBytes: idxInterval})
			p, _ := l.Producer("ix", nil)
			all := make([]Record, n)
			for i := range all {
				all[i] = Record{Value: payload(i, 100), Time: testEpoch.Add(time.Duration(i) * time.Second)}
			}
			all[spike].Time = testEpoch.Add(1000 * time.Hour)
			sendSeq(t, p, 0, all)
			l.Close()

			pdir := filepath.Join(dir, "topics", "ix", "0")
			tpath := segmentPath(pdir, 0, timeIndexExt)
			ents := readTimeIndexFile(t, tpath)
			if n := len(ents); n == 0 || ents[n-1].TS != all[spike].Time.UnixNano() {
				t.Fatalf("test setup: time index %+v does not end with the spike", ents)
			}
			tt.lose(tpath)

			l = openTest(t, dir, &Options{Durability: Buffered})
			p, _ = l.Producer("ix", nil)
			more := make([]Record, 20)
			for i := range more {
				more[i] = Record{Value: payload(n+i, 100), Time: testEpoch.Add(time.Duration(n+i) * time.Second)}
			}
			sendSeq(t, p, n, more)
			all = append(all, more...)
			seg := parsePartition(t, pdir, 0)[0]
			checkTimeIndex(t, seg, readTimeIndexFile(t, tpath), all)
			checkTimeLookups(t, l, all, []time.Time{all[spike].Time.Add(-time.Hour), all[n].Time})
		})
	}
}

// TestAtTimeScanCost starts by time in a segment whose time index is gone,
// so the reader walks frames from the segment start. The walk must read
// headers through one window, not allocate and read a window per frame.
func TestAtTimeScanCost(t *testing.T) {
	const frames = 2000
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "ix", TopicConfig{Partitions: 1})
	var seg []byte
	var fb frame.Builder
	for i := range frames {
		fb.Reset()
		fb.Add(testEpoch.Add(time.Duration(i)*time.Millisecond).UnixNano(), nil, payload(i, 100), nil)
		data := fb.Finish(int64(i))
		data[frame.OffState] = frame.StateCommitted
		seg = append(seg, data...)
	}
	if err := os.WriteFile(segmentPath(partDir(l, "ix", 0), 0, logExt), seg, 0o644); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := l.Consumer("ix", &ConsumerOptions{Start: AtTime(testEpoch.Add((frames - 1) * time.Millisecond))})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if pos := c.Position(0); pos != frames-1 {
		t.Errorf("AtTime of the last record: position %d, want %d", pos, frames-1)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("starting by time over %d frames (%d KiB) allocated %d MiB", frames, len(seg)>>10, alloc>>20)
	}
}
