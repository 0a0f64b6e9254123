package runnel

import (
	"context"
	"errors"
	"testing"
)

// TestCommitAfterLogClose: a group member whose Log closed under it (not
// closed itself) left its group at once, as a member whose process dies
// does: its commits fail with ErrClosed and write nothing, as Log.Close
// promises of every later call (they were written), OnRevoked is not
// called, and its Close commits nothing either. The records it was handed
// go to the next owner again.
func TestCommitAfterLogClose(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 5)
	revoked := false
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g",
		OnRevoked: func(*Consumer, []int) { revoked = true }})
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, c, 5, patience)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Log.Close: %v, want ErrClosed", err)
	}
	if err := c.CommitMarked(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("CommitMarked after Log.Close: %v, want ErrClosed", err)
	}
	if err := c.CommitOffsets(ctx, map[int]int64{0: 3}); !errors.Is(err, ErrClosed) {
		t.Errorf("CommitOffsets after Log.Close: %v, want ErrClosed", err)
	}
	if _, err := c.Poll(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Poll after Log.Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after the Log's: %v", err)
	}
	if revoked {
		t.Error("OnRevoked was called after Log.Close")
	}
	info, err := openTest(t, dir, nil).DescribeGroup("g")
	if err != nil || len(info.Topics) != 1 {
		t.Fatalf("DescribeGroup: %+v, %v", info, err)
	}
	gt := info.Topics[0]
	if len(gt.Members) != 0 {
		t.Errorf("members after their Log closed: %+v", gt.Members)
	}
	if gp := gt.Partitions[0]; gp.Owned || gp.Committed != noCommit {
		t.Errorf("partition 0: owned %v, committed %d; want free, nothing committed", gp.Owned, gp.Committed)
	}
}
