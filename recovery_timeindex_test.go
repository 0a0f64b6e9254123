package runnel

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// timedPartition writes records of 1000 bytes with strictly increasing
// timestamps to a one-partition topic t, with an index entry every 512
// bytes, until its first segment is sealed, and closes the Log. It
// returns the partition directory and the parsed first segment.
func timedPartition(t *testing.T, dir string) (string, diskSeg) {
	t.Helper()
	pdir := filepath.Join(dir, "topics", "t", "0")
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 512})
	p := mustProducer(t, l, "t", nil)
	for i := int64(0); ; i++ {
		if bases, err := listSegments(pdir); err != nil {
			t.Fatal(err)
		} else if len(bases) >= 2 {
			break
		}
		if _, err := p.Send(context.Background(), Record{Time: time.Unix(0, 1e18+i*1000), Value: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return pdir, parseSegment(t, segmentPath(pdir, 0, logExt), 0)
}

// lastTimeEntry returns the last entry of segment base's time index.
func lastTimeEntry(t *testing.T, pdir string, base int64) timeEntry {
	t.Helper()
	entries, err := readTimeIndex(segmentPath(pdir, base, timeIndexExt), 1<<20, 1<<31)
	if err != nil || len(entries) == 0 {
		t.Fatalf("time index of segment %d: %d entries, %v", base, len(entries), err)
	}
	return entries[len(entries)-1]
}

// A power loss right after a segment's seal was synced, but before the
// next segment's first sync, leaves the synced checkpoint at the seal.
// Recovery starts there, drops the seal's time entry (it is past the
// checkpoint) and adds it again as it walks over the seal: its timestamp
// must bound every record of the segment, the ones after the last offset
// entry included. (TestPowerLoss found it bounding only those before that
// entry: the catch-up walk moved past the seal, missed the checkpoint,
// fell back to rebuilding the index, and lost what it had read.)
func TestRecoveryCheckpointAtSealBoundsTimeIndex(t *testing.T) {
	dir := t.TempDir()
	pdir, seg0 := timedPartition(t, dir)
	seal := seg0.Frames[len(seg0.Frames)-1]
	if seal.Meta.Kind != frame.KindSeal {
		t.Fatalf("segment 0 ends in a frame of kind %v, want a seal", seal.Meta.Kind)
	}
	newest := int64(-1 << 63)
	for _, f := range seg0.Frames {
		if f.Meta.Kind == frame.KindRecords {
			newest = max(newest, f.Meta.MaxTime)
		}
	}
	want := timeEntry{ts: newest, rel: uint32(seal.Meta.Base)}
	if got := lastTimeEntry(t, pdir, 0); got != want {
		t.Fatalf("before the power loss the seal's time entry is %+v, want %+v", got, want)
	}
	writeMeta(t, pdir, fakeBootID, 0, seal.Pos, seal.Meta.Base)
	setBootIDForTest(t, [16]byte{1, 2, 3})

	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("after reboot")}); err != nil {
		t.Fatal(err)
	}
	if recs := l.Recoveries(); len(recs) != 1 || recs[0].FromSegment != 0 || recs[0].FromPos != seal.Pos {
		t.Fatalf("recoveries %+v, want one from segment 0 byte %d", recs, seal.Pos)
	}
	if got := lastTimeEntry(t, pdir, 0); got != want {
		t.Errorf("after recovery the seal's time entry is %+v, want %+v", got, want)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("Verify after recovery: %v", rep.Problems)
	}
}

// When the frames after the last index entry do not lead to the synced
// checkpoint (here the entry names the wrong offset, in both index files,
// so they agree), recovery rebuilds the index from the log. The rebuilt
// time index gives the newest timestamp only as of its last entry: the
// records from that entry to the checkpoint must be read again, or the
// entries appended after recovery claim too old a bound.
func TestRecoveryRebuiltIndexBoundsTimeIndex(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "topics", "t", "0")
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, IndexIntervalBytes: 512})
	p := mustProducer(t, l, "t", nil)
	const n = 20
	for i := range int64(n) {
		if _, err := p.Send(context.Background(), Record{Time: time.Unix(0, 1e18+i*1000), Value: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := parseSegment(t, segmentPath(pdir, 0, logExt), 0)
	last := seg.Frames[len(seg.Frames)-1]
	if last.Meta.Kind != frame.KindRecords || last.Meta.End() != n {
		t.Fatalf("segment 0 ends in %+v, want the records frame of offset %d", last.Meta, n-1)
	}
	// The last entry of each index file is the last frame's: make both say
	// it starts at the offset after it.
	offEntries, err := readIndex(segmentPath(pdir, 0, indexExt), seg.Size)
	if err != nil || len(offEntries) == 0 || int64(offEntries[len(offEntries)-1].pos) != last.Pos {
		t.Fatalf("index entries %+v, %v: want the last one at byte %d", offEntries, err, last.Pos)
	}
	k := int64(len(offEntries) - 1)
	writeAt(t, segmentPath(pdir, 0, indexExt), k*indexEntrySize, binary.LittleEndian.AppendUint32(nil, uint32(n)))
	writeAt(t, segmentPath(pdir, 0, timeIndexExt), k*timeIndexEntrySize+8, binary.LittleEndian.AppendUint32(nil, uint32(n)))
	writeMeta(t, pdir, fakeBootID, 0, seg.Size, n)
	setBootIDForTest(t, [16]byte{1, 2, 3})

	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p = mustProducer(t, l, "t", nil)
	if pos, err := p.Send(context.Background(), Record{Time: time.Unix(0, 1e18+n*1000), Value: []byte("after reboot")}); err != nil || pos.Offset != n {
		t.Fatalf("append after the reboot: offset %d, %v; want %d", pos.Offset, err, n)
	}
	want := timeEntry{ts: last.Meta.MaxTime, rel: n}
	if got := lastTimeEntry(t, pdir, 0); got != want {
		t.Errorf("the time entry of the append after recovery is %+v, want %+v", got, want)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("Verify after recovery: %v", rep.Problems)
	}
}
