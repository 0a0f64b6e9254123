package runnel

import (
	"context"
	"sync"
	"testing"
)

// TestDeletedBelowBesidePoll: DeletedBelow may be called from any
// goroutine, also while Poll runs, as the Kafka server's fetches and a
// consumer's own loop may: both record what they learned of the log start
// (run with -race). DeleteRecords moves the start meanwhile.
func TestDeletedBelowBesidePoll(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := delrecSetup(t, dir, 200)
	c, err := l.Consumer("d", &ConsumerOptions{Start: Earliest, OutOfRange: OutOfRangeEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.TryPoll(); err != nil {
				t.Error(err)
				return
			}
			c.Seek(0, Earliest)
		}
	})
	last := int64(0)
	for to := int64(10); to <= 190; to += 10 {
		if _, err := l.DeleteRecords(ctx, "d", 0, to); err != nil {
			t.Fatal(err)
		}
		got := c.DeletedBelow(0)
		if got < last || got > to {
			t.Fatalf("DeletedBelow after deleting below %d: %d (before: %d)", to, got, last)
		}
		last = got
	}
	close(done)
	wg.Wait()
	if got := c.DeletedBelow(0); got != 190 {
		t.Errorf("DeletedBelow at the end: %d, want 190", got)
	}
}
