package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syncHookAppender wraps a Log's backend so that a test decides when (and
// whether) an fdatasync of the sync stage happens.
type syncHookAppender struct {
	appender
	onSync func() error // runs before each sync; an error replaces it
}

func (h *syncHookAppender) sync(fd int) error {
	if err := h.onSync(); err != nil {
		return err
	}
	return h.appender.sync(fd)
}

// blockSyncs makes every sync of l's sync stage report on entered and then
// wait until release is closed. Call it before l's first append.
func blockSyncs(l *Log) (entered <-chan struct{}, release chan struct{}) {
	ent := make(chan struct{}, 100)
	release = make(chan struct{})
	l.app = &syncHookAppender{appender: l.app, onSync: func() error {
		ent <- struct{}{}
		<-release
		return nil
	}}
	return ent, release
}

// sendInBackground runs p.Send of value in a goroutine; the returned
// channel gets its error.
func sendInBackground(p *Producer, value string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), Record{Value: []byte(value)})
		done <- err
	}()
	return done
}

// expectDone waits (generously) for an error from done and fails the
// test unless it is nil.
func expectDone(t testing.TB, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return within 20s", what)
	}
}

func expectSignal(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not happen within 20s", what)
	}
}

// waitRecords polls a fresh consumer until the topic holds n records.
func waitRecords(t testing.TB, l *Log, topic string, n int) []Record {
	t.Helper()
	return readAll(t, l, topic, n, &ConsumerOptions{Start: Earliest})
}

// TestAckCommittedBeforeSync: an AckCommitted send is acknowledged once
// its frame is committed, while the fdatasync that follows is still
// blocked; an AckDurability send is not acknowledged before that sync.
func TestAckCommittedBeforeSync(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Durable})
	entered, release := blockSyncs(l)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	ctx := context.Background()

	committed := mustProducer(t, l, "t", &ProducerOptions{Acks: AckCommitted})
	pos, err := committed.Send(ctx, Record{Value: []byte("a")})
	if err != nil || pos.Offset != 0 {
		t.Fatalf("AckCommitted Send: %+v, %v", pos, err)
	}
	// The Send returned; the fdatasync it is followed by is blocked.
	expectSignal(t, entered, "the fdatasync after the committed send")
	if got := waitRecords(t, l, "t", 1); string(got[0].Value) != "a" {
		t.Fatalf("read %q", got[0].Value)
	}
	acked := make(chan Position, 1)
	committed.SendAsync(Record{Value: []byte("b")}, func(pos Position, err error) {
		if err != nil {
			t.Error(err)
		}
		acked <- pos
	})
	if err := committed.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case pos := <-acked:
		if pos.Offset != 1 {
			t.Fatalf("callback got offset %d", pos.Offset)
		}
	default:
		t.Fatal("Flush of an AckCommitted producer returned before its callback ran")
	}

	done := sendInBackground(mustProducer(t, l, "t", nil), "c")
	waitRecords(t, l, "t", 3) // committed, and no sync has completed since
	select {
	case err := <-done:
		t.Fatalf("durable Send returned (%v) while every fdatasync was blocked", err)
	default:
	}
	close(release)
	expectDone(t, done, "durable Send after the sync was released")
	if st := l.Stats(); st.Syncs == 0 {
		t.Fatalf("Stats %+v: no fdatasync recorded", st)
	}
}

// TestAcksValidated: an Acks value outside the two defined is refused.
func TestAcksValidated(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	for _, a := range []Acks{-1, 2} {
		if _, err := l.Producer("t", &ProducerOptions{Acks: a}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Acks %d: %v, want ErrInvalidArgument", a, err)
		}
	}
}

// TestDurablePipelined: while one frame's fdatasync is in flight, the next
// frame is written and committed; both are acknowledged once durable.
func TestDurablePipelined(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Durable})
	entered, release := blockSyncs(l)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	acks := make(chan int64, 2)
	for _, v := range []string{"first", "second"} {
		p.SendAsync(Record{Value: []byte(v)}, func(pos Position, err error) {
			if err != nil {
				t.Error(err)
			}
			acks <- pos.Offset
		})
		if v == "first" {
			expectSignal(t, entered, "the first frame's fdatasync")
		}
	}
	// The first sync is still blocked, and the second frame is committed.
	waitRecords(t, l, "t", 2)
	if len(acks) != 0 {
		t.Fatal("a record was acknowledged before any fdatasync completed")
	}
	// The durable point, which recovery trusts after a reboot, moves only
	// once an fdatasync completed.
	m, err := openMeta(filepath.Join(l.Dir(), "topics", "t", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if d, _ := m.durableNext(); d != 0 {
		t.Fatalf("durable point at offset %d before any fdatasync completed", d)
	}
	close(release)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, b := <-acks, <-acks; a != 0 || b != 1 {
		t.Fatalf("acknowledged offsets %d, %d", a, b)
	}
	if d, ok := m.durableNext(); !ok || d != 2 {
		t.Fatalf("durable point at offset %d (ok %v) after both were acknowledged, want 2", d, ok)
	}
}

// TestDurableSendersShareSync: senders that commit while an fdatasync is
// in flight are all made durable by the next one, however many frames
// they were written in (group commit).
func TestDurableSendersShareSync(t *testing.T) {
	const senders = 16
	l := openTest(t, t.TempDir(), &Options{Durability: Durable})
	entered, release := blockSyncs(l)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	first := sendInBackground(p, "first")
	expectSignal(t, entered, "the first frame's fdatasync")
	var done []<-chan error
	for i := range senders {
		done = append(done, sendInBackground(p, fmt.Sprint("sender ", i)))
	}
	// Every sender's frame is committed while the first sync is blocked.
	waitRecords(t, l, "t", 1+senders)
	before := l.Stats().Syncs
	close(release)
	expectDone(t, first, "the first Send")
	for i, d := range done {
		expectDone(t, d, fmt.Sprint("Send of sender ", i))
	}
	// The blocked sync covered the first frame; one more covers the rest.
	if syncs := l.Stats().Syncs - before; syncs > 2 {
		t.Fatalf("%d fdatasyncs after the first for %d senders committed behind it, want at most 2", syncs, senders)
	}
}

// TestSyncFailureRefusesAppends: a failed fdatasync fails the sends it was
// to make durable, and the partition refuses appends until reopened.
func TestSyncFailureRefusesAppends(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Durable})
	injected := errors.New("injected fdatasync failure")
	l.app = &syncHookAppender{appender: l.app, onSync: func() error { return injected }}
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); !errors.Is(err, injected) {
		t.Fatalf("Send: %v, want the sync's error", err)
	}
	if _, err := p.Send(context.Background(), Record{Value: []byte("b")}); !errors.Is(err, injected) {
		t.Fatalf("Send after a failed sync: %v, want it refused", err)
	}
	l.Close()
	l2 := openTest(t, dir, &Options{Durability: Durable})
	p2 := mustProducer(t, l2, "t", nil)
	if _, err := p2.Send(context.Background(), Record{Value: []byte("c")}); err != nil {
		t.Fatalf("Send after reopening: %v", err)
	}
}

func init() {
	childMains["gc-sender"] = gcSenderMain
}

// gcSenderMain opens $RUNNEL_GC_DIR in Durable mode, waits for a line on
// stdin, sends one record to topic "t", printing "waiting" once the send
// sleeps on another's sync, and then "sent <offset> syncs <fdatasyncs of
// this process> waits <sleeps on another's sync>".
func gcSenderMain() int {
	l, err := Open(os.Getenv("RUNNEL_GC_DIR"), mpOptions(Options{Durability: Durable}))
	if err != nil {
		return mpFail("gc sender", err)
	}
	defer l.Close()
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("gc sender", err)
	}
	fmt.Println("ready")
	var line string
	fmt.Scanln(&line)
	go func() {
		for l.Stats().SyncWaits == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Println("waiting")
	}()
	pos, err := p.Send(context.Background(), Record{Value: []byte("child")})
	if err != nil {
		return mpFail("gc sender", err)
	}
	st := l.Stats()
	fmt.Printf("sent %d syncs %d waits %d\n", pos.Offset, st.Syncs, st.SyncWaits)
	return 0
}

// TestGroupCommitAcrossProcesses: frames that two processes committed
// before one fdatasync began are both made durable by it. The test holds
// the partition's sync lock, as a syncer busy in fdatasync would, while a
// child process and this one each send a durable record; then it lets go.
// Between the two processes exactly one fdatasync runs, and both sends
// are acknowledged.
func TestGroupCommitAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	if _, err := p.Send(ctx, Record{Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "topics", "t", "0")
	syncer, err := openLockFile(filepath.Join(pdir, metaFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer syncer.Close()
	m, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()

	cmd := mpChild("gc-sender", "RUNNEL_GC_DIR="+dir)
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := mpLines(stdout)
	if s := mpExpectLine(t, lines, 30*time.Second); s != "ready" {
		t.Fatalf("child said %q", s)
	}
	if got, err := syncer.TryLock(syncLockByte); err != nil || !got {
		t.Fatalf("taking the sync lock: %v, %v", got, err)
	}
	before := l.Stats()
	fmt.Fprintln(stdin, "send")
	// Both senders asleep on the busy sync lock before it is let go, so
	// that the one fdatasync after it is what both wait for, however slow
	// the machine: not a race either of them may lose.
	if s := mpExpectLine(t, lines, patience); s != "waiting" {
		t.Fatalf("child said %q", s)
	}
	waitRecords(t, l, "t", 2) // the child's frame is committed
	done := sendInBackground(p, "parent")
	waitRecords(t, l, "t", 3) // and so is this process's
	waitFor(t, patience, "this process's send to sleep on the sync lock", func() bool {
		return l.Stats().SyncWaits > before.SyncWaits
	})

	// The stand-in syncer finishes without having covered them.
	syncer.Unlock(syncLockByte)
	m.durSeq().Add(1)
	wakeAll(m.durSeq())

	s := mpExpectLine(t, lines, 30*time.Second)
	var off, childSyncs, childWaits int64
	if _, err := fmt.Sscanf(s, "sent %d syncs %d waits %d", &off, &childSyncs, &childWaits); err != nil {
		t.Fatalf("child said %q", s)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := l.Stats()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	ours := after.Syncs - before.Syncs
	if ours+childSyncs != 1 {
		t.Fatalf("fdatasyncs: this process %d, the child %d; want one between them", ours, childSyncs)
	}
	if childWaits == 0 || after.SyncWaits == before.SyncWaits {
		t.Errorf("sync waits: child %d, this process %d: both should have slept on the busy sync lock", childWaits, after.SyncWaits-before.SyncWaits)
	}
	recs := waitRecords(t, l, "t", 3)
	var vals []string
	for _, r := range recs {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, ",") != "first,child,parent" || off != 1 {
		t.Fatalf("records %v, child's at offset %d", vals, off)
	}
	d, ok := m.durableNext()
	if !ok || d != 3 {
		t.Fatalf("durable point at %d (ok %v), want 3", d, ok)
	}
	t.Logf("the %s ran the shared fdatasync", map[bool]string{true: "child", false: "parent"}[childSyncs == 1])
}
