package runnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLogStartPastEnd: a log-start file past the end, as a restore of an
// older copy of the segments beside a newer log-start file leaves, makes
// the partition start at its end for its readers as for describe, Verify
// and Backup (partStart): a consumer from the earliest waits there, where
// making it failed with "offset 150 ... is past its end". Appends go on
// at the recorded start, as Kafka's broker goes on at its log start
// offset: the first writer removes the segments, which hold only records
// below the start, and begins one there. Every record acknowledged is
// read; appends had been given offsets 100 and up, below the start, and
// were never read.
func TestLogStartPastEnd(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	if _, err := l.DeleteRecords(context.Background(), "d", 0, DeleteToEnd); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := writeLogStart(filepath.Join(dir, "topics", "d", "0"), 150); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, nil)
	if s, n := describeStart(t, l); s != 100 || n != 100 {
		t.Fatalf("describe: [%d, %d), want [100, 100)", s, n)
	}
	strict := mustConsumer(t, l, "d", &ConsumerOptions{})
	if recs, err := strict.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("poll at the end: %d records, %v", len(recs), err)
	}
	resets := mustConsumer(t, l, "d", &ConsumerOptions{OutOfRange: OutOfRangeEarliest})
	if recs, err := resets.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("poll at the end: %d records, %v", len(recs), err)
	}
	sendDelrec(t, l, 150, 153)
	if recs := pollUntil(t, resets, 3, patience); recs[0].Offset != 150 {
		t.Errorf("a consumer that resets read from %d, want 150", recs[0].Offset)
	}
	if got := firstOffset(t, l, nil); got != 150 {
		t.Errorf("a new consumer starts at %d, want 150", got)
	}
	if s, n := describeStart(t, l); s != 150 || n != 153 {
		t.Errorf("describe after the appends: [%d, %d), want [150, 153)", s, n)
	}
	if _, err := strict.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("poll of a consumer waiting at 100, below the start now: %v, want ErrOutOfRange", err)
	}
	if bases, err := listSegments(filepath.Join(dir, "topics", "d", "0")); err != nil || !slices.Equal(bases, []int64{150}) {
		t.Errorf("segments %v, %v: want one, at the start", bases, err)
	}
	if rep, err := l.Verify(context.Background(), "d", nil); err != nil || !rep.OK() || len(rep.Notes) != 0 {
		t.Errorf("Verify after the appends: %+v, %v", rep, err)
	}
}

// TestLogStartPastEndCrash: a writer that dies after it began a segment
// at a start past the end and before it removed the segments below,
// leaves them; the next writer removes them, where Verify had reported the
// last of them, unsealed, as cut short of records known committed.
func TestLogStartPastEndCrash(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "topics", "d", "0")
	if err := writeLogStart(pdir, 150); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentPath(pdir, 150, logExt), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, nil)
	sendDelrec(t, l, 150, 152)
	if bases, err := listSegments(pdir); err != nil || !slices.Equal(bases, []int64{150}) {
		t.Errorf("segments %v, %v: want one, at the start", bases, err)
	}
	if rep, err := l.Verify(context.Background(), "d", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep.Problems, err)
	}
	if got := firstOffset(t, l, nil); got != 150 {
		t.Errorf("a new consumer starts at %d, want 150", got)
	}
}
