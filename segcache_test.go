package runnel

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// driveSweeps leaves the sweeps of the Logs the test opens to the test:
// their timer's would come in between its own.
func driveSweeps(t *testing.T) {
	saved := idleRelease
	idleRelease = time.Hour
	t.Cleanup(func() { idleRelease = saved })
}

// TestIdleReaderHoldsNoRemovedSegment: a consumer that stops polling
// without pausing or closing (its application busy elsewhere, or done
// with it for now) keeps its segment in the Log's cache only until the
// file was idle through a whole sweep (every 10 to 20 seconds): a
// segment retention removes meanwhile frees its space then, not when
// the consumer next polls, which may be never. Its next Poll finds the
// segment removed, as a reader whose file the cache closed for room.
func TestIdleReaderHoldsNoRemovedSegment(t *testing.T) {
	driveSweeps(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: 2 * minSegmentBytes})
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	p := mustProducer(t, l, "t", nil)
	sendKB(t, p, 1)
	if recs, err := c.TryPoll(); err != nil || len(recs) != 1 {
		t.Fatalf("TryPoll: %d records, %v", len(recs), err)
	}
	sendKB(t, p, 400) // several segments: the first ones removed, by the writer's rolls
	if _, err := os.Stat(segmentPath(partDir(l, "t", 0), 0, logExt)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment 0 still there (%v): retention did not remove it", err)
	}
	segment0 := filepath.Base(segmentPath(partDir(l, "t", 0), 0, logExt)) + " (deleted)"
	held := func() bool {
		return slices.ContainsFunc(removedFilesOpen(t, dir), func(f string) bool { return filepath.Base(f) == segment0 })
	}
	settleCheckpoints(l)
	if !held() {
		t.Fatalf("segment 0 not open in the consumer that read it (%v): the test needs it", removedFilesOpen(t, dir))
	}

	l.segs.sweep() // the file was read since the last sweep: kept
	if !held() {
		t.Fatal("a sweep closed a file read since the last one")
	}
	l.segs.sweep()
	if open := removedFilesOpen(t, dir); len(open) != 0 {
		t.Errorf("removed files open after the consumer's file was idle through a sweep: %v", open)
	}
	if _, err := c.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("TryPoll after the sweep: %v, want ErrOutOfRange (its next record was removed)", err)
	}
}
