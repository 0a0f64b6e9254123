package runnel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// sendCancelledWhen runs p.Send of value with a ctx it cancels once
// waiting says the Send waits where the test wants it to, and returns
// what Send returned.
func sendCancelledWhen(t *testing.T, p *Producer, value string, what string, waiting func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, Record{Value: []byte(value)})
		res <- err
	}()
	waitFor(t, patience, what, waiting)
	cancel()
	return inTime(t, "Send", func() error { return <-res })
}

// A lone Send leads its batch, and gives it up when its ctx ends while
// another process keeps a lock it needs: the writer lock (the batch goes
// to the writer goroutine) or the sync lock (the sync rounds go to the
// background syncer). The record is written all the same once the lock
// is free, and whoever waits for it then is told so.

// TestSendContextEndsBehindStoppedWriter: a lone Send whose ctx ends while
// a stopped process holds the writer lock returns context.Canceled, as
// does a Flush with such a ctx; once the holder is gone, the record and
// one sent after it are written in order, a Flush returns nil after their
// callbacks, and the next Send leads again.
func TestSendContextEndsBehindStoppedWriter(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			if _, err := p.Send(context.Background(), Record{Value: []byte("first")}); err != nil {
				t.Fatal(err)
			}
			holder := stoppedWriterLockHolder(t, l, "t", 0)
			part := l.topics["t"].parts()[0]
			err := sendCancelledWhen(t, p, "led", "the writer to wait for the writer lock", func() bool {
				return part.shm.waiting.count().Load() > 0
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Send behind a stopped writer: %v, want context.Canceled", err)
			}
			var acked atomic.Int64
			p.SendAsync(Record{Value: []byte("after")}, func(pos Position, err error) {
				if err != nil || pos.Offset != 2 {
					t.Errorf("the record after: %+v, %v, want offset 2", pos, err)
				}
				acked.Add(1)
			})
			if err := inTime(t, "Flush", func() error { return p.Flush(cancelSoon()) }); !errors.Is(err, context.Canceled) {
				t.Fatalf("Flush behind a stopped writer: %v, want context.Canceled", err)
			}

			holder.Process.Kill()
			holder.Wait()
			if err := inTime(t, "Flush", func() error { return p.Flush(context.Background()) }); err != nil || acked.Load() != 1 {
				t.Fatalf("Flush once the holder is gone: %v, with %d of 1 callbacks run", err, acked.Load())
			}
			if pos, err := p.Send(context.Background(), Record{Value: []byte("last")}); err != nil || pos.Offset != 3 {
				t.Fatalf("Send once the holder is gone: %+v, %v, want offset 3", pos, err)
			}
			got := waitRecords(t, l, "t", 4)
			for i, want := range []string{"first", "led", "after", "last"} {
				if string(got[i].Value) != want {
					t.Errorf("record %d: %q, want %q", i, got[i].Value, want)
				}
			}
		})
	}
}

// TestSendContextEndsBehindStoppedSync: in a Durable Log, with a stopped
// process holding the sync lock (caught in its fdatasync), a lone
// AckDurability Send commits its record, runs the sync rounds itself and
// returns context.Canceled when its ctx ends; an AckCommitted Send returns
// its offset, and a SendRecordBatchAsyncCommit batch gets its committed
// callback and not its done; Flush waits as its producer's Acks say. Once
// the holder is gone, the background syncer makes them durable and done
// is called.
func TestSendContextEndsBehindStoppedSync(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Durable, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	durable := mustProducer(t, l, "t", nil)
	committed := mustProducer(t, l, "t", &ProducerOptions{Acks: AckCommitted})
	if _, err := durable.Send(context.Background(), Record{Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	holder := stoppedSyncLockHolder(t, l, "t", 0)
	syncWaits := l.Stats().SyncWaits
	err := sendCancelledWhen(t, durable, "durable", "the Send to wait for the stopped syncer", func() bool {
		return l.Stats().SyncWaits > syncWaits
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AckDurability Send behind a stopped syncer: %v, want context.Canceled", err)
	}
	err = inTime(t, "Send", func() error {
		pos, err := committed.Send(context.Background(), Record{Value: []byte("committed")})
		if err == nil && pos.Offset != 2 {
			t.Errorf("AckCommitted Send: offset %d, want 2", pos.Offset)
		}
		return err
	})
	if err != nil {
		t.Fatalf("AckCommitted Send behind a stopped syncer: %v", err)
	}
	var rb RecordBatch
	rb.Add(Record{Value: []byte("batch")})
	wasCommitted, done := make(chan int64, 1), make(chan error, 1)
	durable.SendRecordBatchAsyncCommit(0, &rb, func(base int64) { wasCommitted <- base }, func(_ int64, err error) { done <- err })
	if base := <-wasCommitted; base != 3 {
		t.Fatalf("the batch committed at %d, want 3", base)
	}
	if err := inTime(t, "Flush", func() error { return committed.Flush(context.Background()) }); err != nil {
		t.Fatalf("AckCommitted Flush behind a stopped syncer: %v", err)
	}
	if err := inTime(t, "Flush", func() error { return durable.Flush(cancelSoon()) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("AckDurability Flush behind a stopped syncer: %v, want context.Canceled", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the batch's done was called (%v) while the sync lock is held", err)
	default:
	}

	holder.Process.Kill()
	holder.Wait()
	if err := inTime(t, "done", func() error { return <-done }); err != nil {
		t.Fatalf("the batch's done once the holder is gone: %v", err)
	}
	if err := inTime(t, "Flush", func() error { return durable.Flush(context.Background()) }); err != nil {
		t.Fatalf("Flush once the holder is gone: %v", err)
	}
	if next, ok := l.topics["t"].parts()[0].shm.durableNext(); !ok || next != 4 {
		t.Fatalf("durable up to %d (%v), want 4", next, ok)
	}
	if pos, err := durable.Send(context.Background(), Record{Value: []byte("last")}); err != nil || pos.Offset != 4 {
		t.Fatalf("Send once the holder is gone: %+v, %v, want offset 4", pos, err)
	}
}
