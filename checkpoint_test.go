package runnel

import (
	"context"
	"fmt"
	"testing"
)

// TestCheckpointKeepsWriterLock: recording a checkpoint leaves a writer
// lock this Log kept across appends kept, with the zeros extended ahead of
// the tail (lockForCheckpoint): the appends after it go on under the same
// lock, where letting it go made the next one take it again, find the
// tail and extend the segment anew.
func TestCheckpointKeepsWriterLock(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	// Buffered with the pwrite backend: frames through the mapping, into
	// zeros extended ahead of the tail (io_uring's writer extends none).
	l := openTest(t, dir, &Options{Durability: Buffered, Backend: BackendPwrite, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := p.Send(ctx, Record{Value: fmt.Appendf(nil, "r%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 100)
	tp, _ := l.topic("t")
	part := tp.parts[0]
	part.wmu.Lock()
	tail, extended := part.w.tail(), part.w.extended
	part.wmu.Unlock()
	if extended <= tail.pos {
		t.Fatalf("no zeros extended ahead of the tail at byte %d (extended to %d): the test needs them", tail.pos, extended)
	}

	if err := part.takeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if cp, ok := part.shm.checkpoint(); !ok || cp.next != tail.next {
		t.Fatalf("checkpoint %v (%v), want one at offset %d", cp, ok, tail.next)
	}
	part.wmu.Lock()
	held, exact, after := part.held, part.exact, part.w.extended
	part.wmu.Unlock()
	if !held || !exact || after != extended {
		t.Fatalf("after the checkpoint: held %v, tail known %v, extended to %d; want the lock kept and the zeros to %d", held, exact, after, extended)
	}
	if !heldByOther(t, writerProbe(t, dir, "t")) {
		t.Fatal("the writer lock was let go for the checkpoint")
	}
	send(100, 120)
	if st := l.Stats(); st.WriterLocks != 1 || st.RecordsWritten != 120 {
		t.Fatalf("Stats %+v: want 120 records under one writer lock", st)
	}
	if recs := readAll(t, l, "t", 120, nil); string(recs[119].Value) != "r119" {
		t.Fatalf("last record %q", recs[119].Value)
	}
}
