package runnel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/uring"
	"golang.org/x/sys/unix"
)

// TestRingPoisonKeepsWriterLock: when io_uring_enter fails while an
// append's operations may still be in the kernel, the partition refuses
// appends and keeps its writer lock — even past Close — until they have
// completed; only then may another writer append.
func TestRingPoisonKeepsWriterLock(t *testing.T) {
	if _, err := newRingAppender(); errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Backend: BackendIOURing, Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	if _, err := p.Send(ctx, Record{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}

	// From now on io_uring_enter fails, until release: the first call
	// submits the next append's chain and then fails, and its completions
	// are not seen either, so as far as the appender can tell the chain is
	// in the kernel with its outcome unknown.
	injected := errors.New("injected io_uring_enter failure")
	release := make(chan struct{})
	released := func() bool {
		select {
		case <-release:
			return true
		default:
			return false
		}
	}
	var submitted atomic.Bool
	real, realPeek := ringEnter, ringPeek
	ringEnter = func(r *uring.Ring, n uint32) error {
		if released() {
			return real(r, n)
		}
		if !submitted.Swap(true) {
			if err := real(r, 0); err != nil {
				return err
			}
		}
		return injected
	}
	ringPeek = func(r *uring.Ring) (uring.CQE, bool) {
		if released() {
			return realPeek(r)
		}
		return uring.CQE{}, false
	}
	// The hooks go back only once the ring retired by the failed append
	// stopped reaping (its goroutine reads them); the test's look at the
	// writer lock is no ordering the race detector knows of.
	var drained <-chan struct{}
	t.Cleanup(func() {
		if drained != nil {
			if !released() {
				close(release)
			}
			<-drained
		}
		ringPeek, ringEnter = realPeek, real
	})

	_, err := p.Send(ctx, Record{Value: []byte("in flight")})
	if !errors.Is(err, injected) {
		t.Fatalf("Send: %v, want the injected failure", err)
	}
	var inFlight *inFlightError
	if !errors.As(err, &inFlight) {
		t.Fatalf("Send: %v, want it to say writes may be in flight", err)
	}
	drained = inFlight.drained
	probe := writerProbe(t, dir, "t")
	if !heldByOther(t, probe) {
		t.Fatal("the writer lock was released with the failed append still in flight")
	}
	if _, err := p.Send(ctx, Record{Value: []byte("refused")}); err == nil {
		t.Fatal("a poisoned partition accepted an append")
	}
	if err := l.Close(); err != nil && !errors.Is(err, injected) {
		t.Logf("Close: %v", err)
	}
	if !heldByOther(t, probe) {
		t.Fatal("Close released the writer lock with the failed append still in flight")
	}

	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for heldByOther(t, probe) {
		if time.Now().After(deadline) {
			t.Fatal("the writer lock is still held 30s after the operations could complete")
		}
		time.Sleep(time.Millisecond)
	}
	l2 := openTest(t, dir, &Options{Backend: BackendIOURing, Durability: Buffered})
	p2 := mustProducer(t, l2, "t", nil)
	if _, err := p2.Send(ctx, Record{Value: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l2, "t", 3, nil)
	// The chain ran to its end after all, so the frame reported as
	// failed is committed; the next writer's append follows it.
	for i, want := range []string{"before", "in flight", "after"} {
		if string(recs[i].Value) != want || recs[i].Offset != int64(i) {
			t.Fatalf("record %d: offset %d %q, want %q", i, recs[i].Offset, recs[i].Value, want)
		}
	}
}
