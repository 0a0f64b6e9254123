package runnel

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// TestLogCloseContextBehindStoppedSync: a Durable Log whose committed
// records wait for an fdatasync that a stopped process's sync lock holds
// back is closed with a bounded CloseContext. It returns once its ctx
// ends, with an error wrapping ctx.Err(); the records' callbacks and a
// Flush waiting for them get ErrClosed, and the records, committed, are
// in the log for the next Log.
func TestLogCloseContextBehindStoppedSync(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testOptions(t, &Options{Durability: Durable, RetentionInterval: -1}))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	holder := stoppedSyncLockHolder(t, l, "t", 0)
	syncWaits := l.Stats().SyncWaits
	done := make(chan error, 1)
	p.SendAsync(Record{Value: []byte("waits")}, func(_ Position, err error) { done <- err })
	waitFor(t, patience, "the syncer to wait for the stopped process's fdatasync", func() bool {
		return l.Stats().SyncWaits > syncWaits
	})
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(context.Background()) }()

	closeGivesUp(t, l)
	if err := inTime(t, "the callback", func() error { return <-done }); !errors.Is(err, ErrClosed) {
		t.Errorf("the waiting record's callback: %v, want ErrClosed", err)
	}
	if err := inTime(t, "Flush", func() error { return <-flushed }); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush of the waiting record: %v, want ErrClosed", err)
	}

	if recs := readAfterKill(t, holder, dir, "t", 2); string(recs[1].Value) != "waits" {
		t.Errorf("after reopening: %q, want the committed record", recs[1].Value)
	}
}

// TestLogCloseContextBehindStoppedSyncUnsynced: a Buffered or Periodic
// Log fdatasyncs what it committed as it closes. With a stopped process
// holding the partition's sync lock (and, in Periodic mode, the timer's
// sync waiting behind it first), a bounded CloseContext returns once its
// ctx ends, with an error wrapping ctx.Err(), and the record, acknowledged
// at commit, is in the log for the next Log. Close had waited for ever:
// neither wait for the sync lock had a bound.
func TestLogCloseContextBehindStoppedSyncUnsynced(t *testing.T) {
	for _, mode := range []Durability{Buffered, Periodic} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, testOptions(t, &Options{Durability: mode, SyncInterval: 10 * time.Millisecond, RetentionInterval: -1}))
			if err != nil {
				t.Fatal(err)
			}
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			holder := stoppedSyncLockHolder(t, l, "t", 0)
			syncWaits := l.Stats().SyncWaits
			if _, err := p.Send(context.Background(), Record{Value: []byte("acknowledged")}); err != nil {
				t.Fatal(err)
			}
			if mode == Periodic {
				waitFor(t, patience, "the periodic sync to wait for the stopped process's fdatasync", func() bool {
					return l.Stats().SyncWaits > syncWaits
				})
			}

			closeGivesUp(t, l)

			if recs := readAfterKill(t, holder, dir, "t", 1); string(recs[0].Value) != "acknowledged" {
				t.Errorf("after reopening: %q, want the acknowledged record", recs[0].Value)
			}
		})
	}
}

// closeGivesUp closes l with a bounded CloseContext, which a stopped
// process's sync lock keeps from syncing: it must return in time, with an
// error wrapping its ctx's.
func closeGivesUp(t *testing.T, l *Log) {
	t.Helper()
	err := inTime(t, "Log.CloseContext", func() error { return l.CloseContext(cancelSoon()) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CloseContext behind a stopped syncer: %v, want context.Canceled", err)
	}
}

// readAfterKill kills the stopped holder and reads the first n records
// of topic from a Log opened anew on dir.
func readAfterKill(t *testing.T, holder *exec.Cmd, dir, topic string, n int) []Record {
	t.Helper()
	holder.Process.Kill()
	holder.Wait()
	return readAll(t, openTest(t, dir, nil), topic, n, nil)
}
