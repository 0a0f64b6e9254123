package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stretchHold makes a Log keep the writer lock between appends for as
// long as the test runs, unless someone waits for it, and remember
// contention for as long.
func stretchHold(t *testing.T) {
	idle, contended := holdIdle, contendedHold
	holdIdle, contendedHold = time.Hour, time.Hour
	t.Cleanup(func() { holdIdle, contendedHold = idle, contended })
}

// takeWhenLetGo takes the writer lock through lf once the Log that keeps
// it between appends lets it go (after holdIdle).
func takeWhenLetGo(t *testing.T, lf *lockFile) {
	t.Helper()
	waitFor(t, patience, "the Log to let its kept writer lock go", func() bool {
		got, err := lf.TryLock(writerLockByte)
		if err != nil {
			t.Fatal(err)
		}
		return got
	})
}

func writerProbe(t testing.TB, dir, topic string) *lockFile {
	t.Helper()
	lf, err := openLockFile(filepath.Join(dir, "topics", topic, "0", metaFileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	return lf
}

func heldByOther(t testing.TB, lf *lockFile) bool {
	t.Helper()
	held, err := lf.HeldByOther(writerLockByte)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// TestWriterLockKeptBetweenAppends: a lone sender takes the writer lock
// once for many appends; another Log (as another process would) that
// wants it gets it at once, and from then on both let it go after every
// append.
func TestWriterLockKeptBetweenAppends(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	a := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, a, "t", TopicConfig{Partitions: 1})
	pa := mustProducer(t, a, "t", nil)
	ctx := context.Background()
	for i := range 100 {
		if _, err := pa.Send(ctx, Record{Value: fmt.Appendf(nil, "a%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if st := a.Stats(); st.WriterLocks != 1 || st.FramesWritten != 100 {
		t.Fatalf("Stats %+v: want 100 frames under one writer lock", st)
	}
	probe := writerProbe(t, dir, "t")
	if !heldByOther(t, probe) {
		t.Fatal("the writer lock was released between appends with nobody waiting")
	}

	b := openTest(t, dir, &Options{Durability: Buffered})
	expectDone(t, sendInBackground(mustProducer(t, b, "t", nil), "b"), "a second Log's Send while the first kept the writer lock")
	if heldByOther(t, probe) {
		t.Fatal("the Log that waited for the writer lock kept it after its append")
	}
	if _, err := pa.Send(ctx, Record{Value: []byte("a-again")}); err != nil {
		t.Fatal(err)
	}
	if heldByOther(t, probe) {
		t.Fatal("the Log that was made to let the lock go kept it after its next append")
	}
	if st := a.Stats(); st.WriterLocks != 2 {
		t.Fatalf("first Log took the writer lock %d times, want 2", st.WriterLocks)
	}
	recs := readAll(t, a, "t", 102, nil)
	if string(recs[100].Value) != "b" || string(recs[101].Value) != "a-again" {
		t.Fatalf("last records %q, %q", recs[100].Value, recs[101].Value)
	}
}

func init() {
	childMains["hold-writer"] = holdWriterMain
}

// holdWriterMain appends one record to topic "t" in $RUNNEL_HOLD_DIR,
// keeping the writer lock afterwards, says "held" and waits to be killed.
func holdWriterMain() int {
	holdIdle = time.Hour
	l, err := Open(os.Getenv("RUNNEL_HOLD_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("hold writer", err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("hold writer", err)
	}
	if _, err := p.Send(context.Background(), Record{Value: []byte("child")}); err != nil {
		return mpFail("hold writer", err)
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	return 0
}

// TestWriterLockDiesWithHolder: a process killed while it keeps the
// writer lock between appends does not keep it: the kernel drops it.
func TestWriterLockDiesWithHolder(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	cmd := mpChild("hold-writer", "RUNNEL_HOLD_DIR="+dir)
	_, stdout := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if s := mpExpectLine(t, mpLines(stdout), 30*time.Second); s != "held" {
		t.Fatalf("child said %q", s)
	}
	if !heldByOther(t, writerProbe(t, dir, "t")) {
		t.Fatal("the child does not hold the writer lock")
	}
	cmd.Process.Kill()
	cmd.Wait()
	p := mustProducer(t, l, "t", nil)
	pos, err := p.Send(context.Background(), Record{Value: []byte("parent")})
	if err != nil || pos.Offset != 1 {
		t.Fatalf("Send after the holder died: %+v, %v", pos, err)
	}
}

// TestSendCtxWhileWriterLockHeld: with the writer lock held by another
// process (stopped in a debugger, say), a lone Send, which would write its
// own frame, still gives up when its ctx ends; the record is appended once
// the lock is free, as Send's contract allows.
func TestSendCtxWhileWriterLockHeld(t *testing.T) {
	for _, mode := range []Durability{Durable, Buffered} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: mode})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); err != nil {
				t.Fatal(err)
			}
			other := writerProbe(t, dir, "t")
			takeWhenLetGo(t, other)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			sent := make(chan error, 1)
			go func() {
				_, err := p.Send(ctx, Record{Value: []byte("b")})
				sent <- err
			}()
			select {
			case err := <-sent:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Send with the writer lock held elsewhere: %v, want %v", err, context.DeadlineExceeded)
				}
			case <-time.After(patience):
				other.Unlock(writerLockByte)
				t.Fatalf("Send did not return within %v of its ctx's end while the writer lock was held elsewhere", patience)
			}
			other.Unlock(writerLockByte)
			recs := waitRecords(t, l, "t", 2)
			if string(recs[1].Value) != "b" {
				t.Fatalf("second record %q, want the one whose Send gave up", recs[1].Value)
			}
			if pos, err := p.Send(context.Background(), Record{Value: []byte("c")}); err != nil || pos.Offset != 2 {
				t.Fatalf("Send after the lock came free: %+v, %v", pos, err)
			}
		})
	}
}

// TestDurableSendCtxWhileSyncLockHeld: a lone durable Send whose frame
// waits for another process's fdatasync (that process holds the sync lock)
// gives up when its ctx ends; the record is made durable once the lock is
// free, by the background syncer.
func TestDurableSendCtxWhileSyncLockHeld(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	other := writerProbe(t, dir, "t")
	if got, err := other.TryLock(syncLockByte); err != nil || !got {
		t.Fatalf("taking the sync lock: %v, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, Record{Value: []byte("b")})
		sent <- err
	}()
	select {
	case err := <-sent:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send waiting for another process's fdatasync: %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(patience):
		other.Unlock(syncLockByte)
		t.Fatalf("Send did not return within %v of its ctx's end while the sync lock was held elsewhere", patience)
	}
	other.Unlock(syncLockByte)
	part := l.topics["t"].parts()[0]
	waitFor(t, patience, "the record made durable", func() bool {
		d, ok := part.shm.durableNext()
		return ok && d >= 2
	})
	if pos, err := p.Send(context.Background(), Record{Value: []byte("c")}); err != nil || pos.Offset != 2 {
		t.Fatalf("Send after the sync lock came free: %+v, %v", pos, err)
	}
}

// TestStopHoldBeforeWatcherRuns: a stopHold that comes before the watcher
// goroutine first runs is not lost: the watcher sleeps on a stop word of
// its own, which stopHold set before the watcher first looked, so it
// ends at once instead of sleeping for holdIdle (here an hour) with Close
// waiting for it. (A watcher that read a shared cancel count when it
// first ran, after the stopHold that bumped it, made Log.Close hang:
// seen in TestLoneSenderLeads under load.)
func TestStopHoldBeforeWatcherRuns(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	part := l.topics["t"].parts()[0]
	started := make(chan struct{})
	release := make(chan struct{})
	testHookWatchHold = func() {
		close(started)
		<-release
	}
	t.Cleanup(func() { testHookWatchHold = nil })
	if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	<-started
	part.wmu.Lock()
	w := part.watch
	part.wmu.Unlock()
	stopped := make(chan struct{})
	go func() {
		part.stopHold()
		close(stopped)
	}()
	for w.stop.Load() == 0 {
		time.Sleep(time.Millisecond) // until stopHold has stopped it
	}
	close(release)
	inTime(t, "stopHold", func() error { <-stopped; return nil })
}
