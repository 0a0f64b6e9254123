package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A reader stopped at damage in the middle of a segment reports it even
// while a writer holds the writer lock: a writer that appends more often
// than holdIdle keeps the lock for as long as it runs (modelled here by
// stretching holdIdle), and a held lock explains only a frame at the tail.
func TestReaderReportsDamageBehindBusyWriter(t *testing.T) {
	old := holdIdle
	holdIdle = time.Hour
	t.Cleanup(func() { holdIdle = old }) // after the Logs' cleanups close them
	dir := t.TempDir()
	pdir := filepath.Join(dir, "topics", "t", "0")
	lw := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, lw, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, lw, "t", nil)
	sendSeq(t, p, 0, seqRecords(0, 20))
	seg := parseSegment(t, segmentPath(pdir, 0, logExt), 0)
	fr := seg.Frames[10]
	flipByte(t, seg.Path, fr.Pos+50)
	if _, err := p.Send(context.Background(), Record{Value: []byte("more")}); err != nil {
		t.Fatal(err)
	}
	if !writerHolds(pdir) {
		t.Fatal("the writer does not hold the writer lock")
	}

	lr := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	c := mustConsumer(t, lr, "t", &ConsumerOptions{Start: Earliest})
	defer c.Close()
	// The bound only keeps a failing test from hanging: the damage must
	// be reported at once, without waiting for anything.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := 0
	for {
		recs, err := c.Poll(ctx)
		var ce *CorruptError
		if errors.As(err, &ce) {
			if got != int(fr.Meta.Base) || ce.Offset != fr.Meta.Base {
				t.Fatalf("damage reported after %d records at offset %d, want after %d at offset %d: %v", got, ce.Offset, fr.Meta.Base, fr.Meta.Base, err)
			}
			break
		}
		if err != nil {
			t.Fatalf("after %d records: %v, want a *CorruptError at offset %d (the writer lock is held)", got, err, fr.Meta.Base)
		}
		got += len(recs)
	}
	if !writerHolds(pdir) {
		t.Fatal("the writer let go of the lock: the test proved nothing")
	}
}
