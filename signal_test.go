package runnel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
	// Under 0.5 rather than none: AllocsPerRun counts the whole
	// process's allocations, the Log's background goroutines' too.
	if allocs >= 0.5 {
		t.Errorf("a lone Send allocates %.2f times, want none (its batch is reused)", allocs)
	}
}

// TestLoneSendRecycleBesideFlush: a lone sender's batches are reused, one
// after the other, while another goroutine flushes the producer and a
// third sends with a callback now and then. Each Send must get its own
// offset, in order, and each record must be read back at it. Under -race,
// a batch reused while a Flush still reads it is a reported race.
func TestLoneSendRecycleBesideFlush(t *testing.T) {
	for _, b := range ackBackends(t) {
		t.Run(b, func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: Buffered, Backend: b})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			ctx := context.Background()
			const n = 3000
			stop := make(chan struct{})
			var wg sync.WaitGroup
			untilStopped(&wg, stop, func(int) bool {
				if err := p.Flush(ctx); err != nil {
					t.Error(err)
					return false
				}
				return true
			})
			async := make(chan Position, n)
			untilStopped(&wg, stop, func(i int) bool {
				if i%50 == 0 {
					p.SendAsync(Record{Value: []byte("async")}, func(pos Position, err error) {
						if err != nil {
							t.Error(err)
						}
						select {
						case async <- pos:
						default:
						}
					})
				}
				runtime.Gosched()
				return true
			})
			sent := map[int64]string{}
			prev := int64(-1)
			for i := range n {
				v := fmt.Sprintf("lone-%d", i)
				pos, err := p.Send(ctx, Record{Value: []byte(v)})
				if err != nil {
					t.Fatal(err)
				}
				if pos.Offset <= prev {
					t.Fatalf("send %d got offset %d after %d", i, pos.Offset, prev)
				}
				if _, dup := sent[pos.Offset]; dup {
					t.Fatalf("offset %d given twice", pos.Offset)
				}
				sent[pos.Offset], prev = v, pos.Offset
			}
			close(stop)
			wg.Wait()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			close(async)
			for pos := range async {
				if _, dup := sent[pos.Offset]; dup {
					t.Fatalf("offset %d given to a lone Send and a SendAsync", pos.Offset)
				}
			}
			c, err := l.Consumer("t", &ConsumerOptions{Partitions: []int{0}, Start: Earliest})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for found := 0; found < len(sent); {
				recs, err := c.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if want, ok := sent[r.Offset]; ok {
						if string(r.Value) != want {
							t.Fatalf("offset %d holds %q, its Send wrote %q", r.Offset, r.Value, want)
						}
						found++
					}
				}
			}
		})
	}
}
