package runnel

import (
	"context"
	"path/filepath"
	"testing"
)

// TestLogStartPastEnd: a log-start file past the end, as a restore of an
// older copy of the segments beside a newer log-start file leaves, makes
// the partition start at its end for its readers as for describe, Verify
// and Backup (partStart): a consumer from the earliest waits there, and
// reads from the recorded start once the end passes it, where making it
// failed with "offset 150 ... is past its end".
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
	sendDelrec(t, l, 100, 153)
	if recs := pollUntil(t, resets, 3, patience); recs[0].Offset != 150 {
		t.Errorf("a consumer that resets read from %d, want 150", recs[0].Offset)
	}
	if got := firstOffset(t, l, nil); got != 150 {
		t.Errorf("a new consumer starts at %d, want 150", got)
	}
}
