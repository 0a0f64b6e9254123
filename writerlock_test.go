package runnel

import (
	"context"
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
