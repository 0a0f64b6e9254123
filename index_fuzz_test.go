package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzIndexLookups writes the fuzzer's bytes as one segment's .index and
// .timeindex in a copy of a log of three segments or more, and looks
// records up by offset and by time. The indexes are caches, and lookups
// check the entries they use against the log: whatever the bytes, offset
// and time lookups start at the right record (the log's timestamps
// increase, so checking the entry a time lookup uses against the frames
// since the entry before it suffices: see checkTimeEntry), nothing
// panics, and Verify names the file of every problem. Seeds: each
// segment's own index files, cut, shifted and garbage.
func FuzzIndexLookups(f *testing.F) {
	const n = 1000
	ts := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	pristine := f.TempDir()
	sent, segs := buildIndexedSegments(f, pristine, n, ts)
	for i, s := range segs {
		idx, _ := os.ReadFile(segmentPath(filepath.Dir(s.Path), s.Base, indexExt))
		tim, _ := os.ReadFile(segmentPath(filepath.Dir(s.Path), s.Base, timeIndexExt))
		f.Add(uint8(i), idx, tim)
		f.Add(uint8(i), idx[:len(idx)/2+3], tim[:len(tim)/2+5])
		f.Add(uint8(i), []byte{}, []byte{})
		f.Add(uint8(i), bytes.Repeat([]byte{0xab}, len(idx)), bytes.Repeat([]byte{0xab}, len(tim)))
		shifted, late := bytes.Clone(idx), bytes.Clone(tim)
		for j := 0; j+indexEntrySize <= len(shifted); j += indexEntrySize {
			binary.LittleEndian.PutUint32(shifted[j:], binary.LittleEndian.Uint32(shifted[j:])+3)
		}
		for j := 0; j+timeIndexEntrySize <= len(late); j += timeIndexEntrySize {
			binary.LittleEndian.PutUint64(late[j:], binary.LittleEndian.Uint64(late[j:])-uint64(time.Millisecond))
		}
		f.Add(uint8(i), shifted, late)
		// An entry past the end of the log in each, as a log cut short
		// under its indexes leaves.
		frames := s.recordFrames()
		end := frames[len(frames)-1].Meta.End()
		past := binary.LittleEndian.AppendUint32(bytes.Clone(idx), uint32(end-s.Base+1000))
		past = binary.LittleEndian.AppendUint32(past, uint32(s.Size+64))
		pastTime := binary.LittleEndian.AppendUint64(bytes.Clone(tim), uint64(sent[end-1].Time.UnixNano()+1))
		pastTime = binary.LittleEndian.AppendUint32(pastTime, uint32(end-s.Base+1000))
		f.Add(uint8(i), past, pastTime)
	}

	f.Fuzz(func(t *testing.T, which uint8, idx, tim []byte) {
		i := int(which) % len(segs)
		s := segs[i]
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		pdir := filepath.Join(dir, "topics", "ix", "0")
		idxPath, timPath := segmentPath(pdir, s.Base, indexExt), segmentPath(pdir, s.Base, timeIndexExt)
		if err := os.WriteFile(idxPath, idx, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(timPath, tim, 0o644); err != nil {
			t.Fatal(err)
		}
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})

		// Where the segment's frames start and end, and wherever the
		// first entries point.
		frames := s.recordFrames()
		end := frames[len(frames)-1].Meta.End()
		offsets := []int64{s.Base, s.Base + 1, end - 1}
		for j := 0; j+indexEntrySize <= len(idx) && j < 4*indexEntrySize; j += indexEntrySize {
			rel := int64(binary.LittleEndian.Uint32(idx[j:]))
			offsets = append(offsets, s.Base+rel-1, s.Base+rel, s.Base+rel+1)
		}
		times := []time.Time{ts(int(s.Base)), ts(int(s.Base)).Add(-time.Microsecond), ts(int(end - 1)), ts(min(int(end), n-1))}
		for j := 0; j+timeIndexEntrySize <= len(tim) && j < 3*timeIndexEntrySize; j += timeIndexEntrySize {
			at := time.Unix(0, int64(binary.LittleEndian.Uint64(tim[j:])))
			rel := int64(binary.LittleEndian.Uint32(tim[j+8:]))
			times = append(times, at, at.Add(1))
			if o := s.Base + rel; o >= 0 && o < n {
				times = append(times, ts(int(o)), ts(int(o)).Add(-time.Microsecond))
			}
		}

		for _, x := range offsets {
			if x < s.Base || x >= end {
				continue
			}
			k := min(3, n-int(x))
			got, err := tryLookup(l, AtOffset(x), k)
			if diff := cmp.Diff(wantRecs(x, sent[x:int(x)+k]), got); err != nil || diff != "" {
				t.Fatalf("AtOffset(%d) with segment %d's indexes replaced: %v; diff (-want +got):\n%s", x, s.Base, err, diff)
			}
		}

		rep, err := l.Verify(context.Background(), "ix", nil)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		for _, p := range rep.Problems {
			if p.Path != idxPath && p.Path != timPath {
				t.Errorf("Verify blames %s for damage to segment %d's indexes: %v", p.Path, s.Base, p)
			}
		}
		for _, at := range times {
			first := firstAtOrAfter(sent, at)
			if first < 0 {
				continue
			}
			k := min(2, n-first)
			got, err := tryLookup(l, AtTime(at), k)
			if err != nil {
				t.Fatalf("AtTime(%d): %v", at.UnixNano(), err)
			}
			if want := wantRecs(int64(first), sent[first:first+k]); !slices.Equal(got, want) {
				t.Fatalf("AtTime(%d) with segment %d's indexes replaced (Verify: %d problems): got %+v, want %+v",
					at.UnixNano(), s.Base, len(rep.Problems), got, want)
			}
		}
	})
}

// tryLookup reads the first k records a new consumer starting at start
// gets, without waiting: every record of the log is there to read.
func tryLookup(l *Log, start StartPosition, k int) ([]rec, error) {
	c, err := l.Consumer("ix", &ConsumerOptions{Start: start})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []Record
	for idle := 0; len(out) < k && idle < 3; {
		recs, err := c.TryPoll()
		for _, r := range recs {
			out = append(out, cloneRecord(r))
		}
		if err != nil {
			return recsOf(out), err
		}
		if len(recs) == 0 {
			idle++
		}
	}
	return recsOf(out[:min(k, len(out))]), nil
}
