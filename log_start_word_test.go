package runnel

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestLogStartWordAheadVerifyRepair: partition.meta's log start word set
// past the log-start file's start (damage: a DeleteRecords writes the file
// first, then raises the word) is a ProblemMeta at the word, which Repair
// sets back to the file's start; readers meanwhile read from the file's
// start. A word a DeleteRecords raised is no problem.
func TestLogStartWordAheadVerifyRepair(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := delrecSetup(t, dir, 50)
	if _, err := l.DeleteRecords(ctx, "d", 0, 10); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(ctx, "", nil); err != nil || !rep.OK() {
		t.Fatalf("Verify after DeleteRecords: %v, %v; want no problem", rep.Problems, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(dir, "topics", "d", "0", metaFileName)
	f, err := os.OpenFile(meta, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const damaged = 0xff00 << 32
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, damaged), metaLogStartOff); err != nil {
		t.Fatal(err)
	}
	f.Close()

	l = openTest(t, dir, nil)
	rep, err := l.Verify(ctx, "", nil)
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemMeta || rep.Problems[0].Path != meta || rep.Problems[0].Pos != metaLogStartOff {
		t.Fatalf("Verify: %v, %v; want one partition meta problem at %s byte %d", rep.Problems, err, meta, metaLogStartOff)
	}
	if got := readAll(t, l, "d", 40, nil); got[0].Offset != 10 {
		t.Errorf("a consumer read from offset %d, want 10 (the file's start)", got[0].Offset)
	}
	rr, err := l.Repair(ctx, "", nil)
	if err != nil || len(rr.Actions) != 1 || rr.Actions[0].Kind != RepairSetBackLogStart || rr.Actions[0].From != damaged || rr.Actions[0].To != 10 || len(rr.Remaining) > 0 {
		t.Fatalf("Repair: %+v, %v; want the word set back from %d to 10 and nothing left", rr, err, int64(damaged))
	}
	data, err := os.ReadFile(meta)
	if err != nil || binary.LittleEndian.Uint64(data[metaLogStartOff:]) != 10 {
		t.Errorf("the log start word after Repair: %v; want 10", err)
	}
	info, err := l.DescribeTopic("d")
	if err != nil || info.Partitions[0].StartOffset != 10 {
		t.Errorf("DescribeTopic after Repair: %+v, %v; want start 10", info.Partitions, err)
	}
}

// TestLogStartWordVerifyTopicDeleted: a DeleteTopic (in any process)
// while Verify checks a partition that a DeleteRecords moved takes the
// log-start file away after Verify read partition.meta: the word it read
// is then ahead of no file, which is no damage, and no problem.
func TestLogStartWordVerifyTopicDeleted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := delrecSetup(t, dir, 50)
	if _, err := l.DeleteRecords(ctx, "d", 0, 10); err != nil {
		t.Fatal(err)
	}
	deleted := false
	rep, err := l.Verify(ctx, "d", &VerifyOptions{Progress: func(done, total int64) {
		if !deleted && done < total { // inside the partition's walk
			deleted = true
			if err := l.DeleteTopic("d"); err != nil {
				t.Errorf("DeleteTopic: %v", err)
			}
		}
	}})
	if err != nil || !deleted {
		t.Fatalf("Verify: %v (deleted mid-check: %v)", err, deleted)
	}
	for _, pr := range rep.Problems {
		if pr.Kind == ProblemMeta && pr.Pos == metaLogStartOff {
			t.Errorf("Verify across a DeleteTopic reported %v; want no log start word problem", pr)
		}
	}
}
