package runnel

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestSignal: a waiter that came before the event and one that comes after
// both see it; firing twice is harmless; a fired signal wins over an ended
// context.
func TestSignal(t *testing.T) {
	var s signal
	if s.fired() {
		t.Fatal("a new signal has fired")
	}
	early := s.wait()
	if s.wait() != early {
		t.Fatal("two waiters before the event got different channels")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-s.wait()
		}()
	}
	s.fire()
	s.fire()
	<-early
	wg.Wait()
	if !s.fired() {
		t.Fatal("fired reports false after fire")
	}
	<-s.wait()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := awaitSignal(ctx, &s); err != nil {
		t.Fatalf("awaitSignal on a fired signal with an ended ctx: %v", err)
	}
	var unfired signal
	if err := awaitSignal(ctx, &unfired); !errors.Is(err, context.Canceled) {
		t.Fatalf("awaitSignal on an unfired signal with an ended ctx: %v, want context.Canceled", err)
	}
}

// TestSignalRace: waiters racing fire each return, under -race.
func TestSignalRace(t *testing.T) {
	for range 200 {
		var s signal
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-s.wait()
			}()
		}
		s.fire()
		wg.Wait()
	}
}

// TestLoneSendAllocs: a lone Send writes its own frame and waits on no
// channel: one allocation, the next pending batch.
func TestLoneSendAllocs(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := Record{Value: []byte("v"), Time: time.Unix(1, 0)}
	ctx := context.Background()
	for range 100 { // past the segment's first extension and mapping
		if _, err := p.Send(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := p.Send(ctx, rec); err != nil {
			t.Fatal(err)
		}
	})
	// Under 1.5 rather than at most 1: AllocsPerRun counts the whole
	// process's allocations, the Log's background goroutines' too.
	if allocs >= 1.5 {
		t.Errorf("a lone Send allocates %.2f times, want 1 (the next batch)", allocs)
	}
}
