package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestSegmentCutUnderWriter cuts the active segment at a frame boundary
// while a Log that appended to it is open and no longer holds the writer
// lock (in Buffered mode nothing synced says what was committed): its next
// append finds the file shorter than what it wrote, and refuses, reporting
// the records gone, rather than handing their offsets to new records.
func TestSegmentCutUnderWriter(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	sendSeq(t, p, 0, seqRecords(0, 10))
	seg := parseSegment(t, segmentPath(filepath.Join(dir, "topics", "t", "0"), 0, logExt), 0)
	cut := seg.Frames[6]
	// The Log lets the writer lock go (as it does when another writer
	// asks, or after a moment idle): from then on it checks the tail.
	// (While it keeps the lock, nobody else can append, and it writes
	// without looking; a cut then leaves a hole, which readers report.)
	l.topics["t"].parts()[0].stopHold()
	truncateFile(t, seg.Path, cut.Pos)

	_, err := p.Send(context.Background(), Record{Value: []byte("after the cut")})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != seg.Path || ce.Pos != cut.Pos {
		t.Fatalf("Send after the cut: %v; want a *CorruptError at byte %d", err, cut.Pos)
	}
	reps := l.Recoveries()
	if st := l.Stats(); st.RecordsLost != 10-cut.Meta.Base || len(reps) != 1 || reps[0].LostFrom != cut.Meta.Base || reps[0].LostTo != 10 {
		t.Errorf("loss report: RecordsLost %d, Recoveries %+v; want offsets %d to 9", st.RecordsLost, reps, cut.Meta.Base)
	}
	if size := fileSize(t, seg.Path); size != cut.Pos {
		t.Errorf("the segment is %d bytes after the refused append, was cut to %d", size, cut.Pos)
	}
}
