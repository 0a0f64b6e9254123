package runnel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A lone sender's batch is reused for the next pending batch once it has
// read its outcome, unless something else may still read it
// (partition.recycle). These tests make every kind of lone send recycle,
// and hold every offset and record to what its sender was told while
// others flush, send with callbacks and close beside it.

// TestRecycleEachLoneSend: after a lone Send, SendBatch or SendRecordBatch
// in Buffered or Periodic mode the batch is kept for reuse and the next
// pending batch is it; in Durable mode (the sync stage has it), or after a
// Flush took it, it is not. Every send gets its offset, holding its record.
func TestRecycleEachLoneSend(t *testing.T) {
	ctx := context.Background()
	sends := map[string]func(p *Producer, i int) (int64, error){
		"Send": func(p *Producer, i int) (int64, error) {
			pos, err := p.Send(ctx, Record{Value: fmt.Appendf(nil, "r%d", i)})
			return pos.Offset, err
		},
		"SendBatch": func(p *Producer, i int) (int64, error) {
			return p.SendBatch(ctx, 0, []Record{{Value: fmt.Appendf(nil, "r%d", i)}, {Value: []byte("second")}})
		},
		"SendRecordBatch": func(p *Producer, i int) (int64, error) {
			var rb RecordBatch
			rb.Add(Record{Value: fmt.Appendf(nil, "r%d", i)})
			rb.Add(Record{Value: []byte("second")})
			return p.SendRecordBatch(ctx, 0, &rb)
		},
	}
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		for name, send := range sends {
			t.Run(d.String()+"/"+name, func(t *testing.T) {
				l := openTest(t, t.TempDir(), &Options{Durability: d})
				mustCreate(t, l, "t", TopicConfig{Partitions: 1})
				p := mustProducer(t, l, "t", nil)
				part := l.topics["t"].parts()[0]
				spare := func() *batch {
					part.mu.Lock()
					defer part.mu.Unlock()
					return part.spareBatch
				}
				pending := func() *batch {
					part.mu.Lock()
					defer part.mu.Unlock()
					return part.pending
				}
				next := int64(0)
				sendOne := func(i int) *batch {
					t.Helper()
					off, err := send(p, i)
					if err != nil || off != next {
						t.Fatalf("send %d: offset %d, %v; want %d", i, off, err, next)
					}
					recs := readAll(t, l, "t", 1, &ConsumerOptions{Start: AtOffset(off)})
					if recs[0].Offset != off || string(recs[0].Value) != fmt.Sprintf("r%d", i) {
						t.Fatalf("send %d: offset %d holds %q at %d", i, off, recs[0].Value, recs[0].Offset)
					}
					next = off + 1
					if name != "Send" {
						next++
					}
					return spare()
				}
				// A lone send may find this Log's own maintenance holding
				// the partition and hand its batch to the writer goroutine
				// (not reused): most are kept, not all.
				keptN := 0
				for i := range 20 {
					b := sendOne(i)
					if b == nil {
						continue
					}
					keptN++
					if d == Durable {
						t.Fatalf("send %d: a Durable batch was kept for reuse", i)
					}
					// The next send takes the pending batch; the kept
					// one becomes the pending batch after it.
					sendOne(100 + i)
					if pending() != b {
						t.Fatalf("send %d: the kept batch is not the next pending one", i)
					}
				}
				if d != Durable && keptN == 0 {
					t.Fatal("no lone send's batch was kept for reuse")
				}
				// A batch a Flush took to wait on is pinned: the lone
				// sender that writes it does not give it back.
				for i := range 5 {
					part.mu.Lock()
					part.spareBatch = nil
					part.pending.pinned = true // the next send's batch, as Flush pins it
					part.mu.Unlock()
					if sendOne(200+i) != nil {
						t.Fatalf("send %d: a pinned batch was kept for reuse", 200+i)
					}
				}
			})
		}
	}
}

// TestRecycleUnderMixedSenders: one goroutine sends alone most of the time
// (Send, SendBatch, SendRecordBatch, and Send of an AckCommitted
// producer, so its batches are reused), while others flush, send with
// callbacks, and send through a producer that is closed meanwhile, in
// every durability mode with each backend, in 64 KiB segments. Every
// acknowledged record must be read back at the offset it was given, no
// offset given twice, and nothing else be in the log.
func TestRecycleUnderMixedSenders(t *testing.T) {
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		for _, backend := range ackBackends(t) {
			t.Run(d.String()+"/"+backend, func(t *testing.T) { recycleMixed(t, d, backend) })
		}
	}
}

// untilStopped runs body with 0, 1, 2, … on a goroutine counted in wg
// until stop is closed or body returns false.
func untilStopped(wg *sync.WaitGroup, stop <-chan struct{}, body func(i int) bool) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if !body(i) {
				return
			}
		}
	}()
}

func recycleMixed(t *testing.T, d Durability, backend string) {
	l := openTest(t, t.TempDir(), &Options{Durability: d, Backend: backend})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", nil)
	q := mustProducer(t, l, "t", &ProducerOptions{Acks: AckCommitted})
	ctx := context.Background()
	var g ackLedger
	loneN := 1500
	if d == Durable {
		loneN = 400 // a sync each
	}

	// Each of the others must have had its turns while the lone sender
	// sent: it sends on until they did.
	var flushes, asyncs, closes atomic.Int64
	enough := func() bool { return flushes.Load() >= 50 && asyncs.Load() >= 10 && closes.Load() >= 10 }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	untilStopped(&wg, stop, func(int) bool { // flushes
		for _, pr := range []*Producer{p, q} {
			if err := pr.Flush(ctx); err != nil {
				g.fail(fmt.Errorf("Flush: %w", err))
				return false
			}
		}
		flushes.Add(1)
		runtime.Gosched()
		return true
	})
	untilStopped(&wg, stop, func(i int) bool { // callbacks now and then, some waited for by a Flush
		if i%40 == 0 {
			v := fmt.Sprintf("async-%d", i)
			var called atomic.Bool
			p.SendAsync(Record{Value: []byte(v)}, func(pos Position, err error) {
				called.Store(true)
				if err != nil {
					g.fail(fmt.Errorf("SendAsync %s: %w", v, err))
					return
				}
				g.add(sent{v, pos.Offset})
				asyncs.Add(1)
			})
			if i%80 == 0 {
				if err := p.Flush(ctx); err != nil {
					g.fail(fmt.Errorf("Flush: %w", err))
					return false
				}
				if !called.Load() {
					g.fail(fmt.Errorf("Flush returned before the callback of %s, sent before it", v))
					return false
				}
			}
		}
		if i%97 == 0 {
			v := fmt.Sprintf("rbasync-%d", i)
			var rb RecordBatch
			rb.Add(Record{Value: []byte(v)})
			q.SendRecordBatchAsync(0, &rb, func(base int64, err error) {
				if err != nil {
					g.fail(fmt.Errorf("SendRecordBatchAsync %s: %w", v, err))
					return
				}
				g.add(sent{v, base})
			})
		}
		runtime.Gosched()
		return true
	})
	untilStopped(&wg, stop, func(i int) bool { // a producer closed while it sends, again and again
		r := mustProducer(t, l, "t", nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; ; j++ {
				v := fmt.Sprintf("closing-%d-%d", i, j)
				pos, err := r.Send(ctx, Record{Value: []byte(v)})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					g.fail(fmt.Errorf("Send %s: %w", v, err))
					return
				}
				g.add(sent{v, pos.Offset})
			}
		}()
		for range i % 5 {
			runtime.Gosched()
		}
		if err := r.Close(); err != nil {
			g.fail(fmt.Errorf("Producer.Close: %w", err))
		}
		<-done
		closes.Add(1)
		return true
	})

	prev := int64(-1)
	deadline := time.Now().Add(patience)
	for i := 0; i < loneN || !enough(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d lone sends: %d flushes, %d callbacks, %d producers closed", i, flushes.Load(), asyncs.Load(), closes.Load())
		}
		v := fmt.Sprintf("lone-%d", i)
		var off int64
		var err error
		switch i % 4 {
		case 0:
			var pos Position
			pos, err = p.Send(ctx, Record{Value: []byte(v)})
			off = pos.Offset
		case 1:
			off, err = p.SendBatch(ctx, 0, []Record{{Value: []byte(v)}, {Value: []byte(v + "+1")}})
		case 2:
			var rb RecordBatch
			rb.Add(Record{Value: []byte(v)})
			rb.Add(Record{Value: []byte(v + "+1")})
			off, err = p.SendRecordBatch(ctx, 0, &rb)
		case 3:
			var pos Position
			pos, err = q.Send(ctx, Record{Value: []byte(v)})
			off = pos.Offset
		}
		if err != nil {
			t.Fatalf("lone send %d: %v", i, err)
		}
		if off <= prev {
			t.Fatalf("lone send %d got offset %d after %d", i, off, prev)
		}
		g.add(sent{v, off})
		prev = off
		if i%4 == 1 || i%4 == 2 {
			g.add(sent{v + "+1", off + 1})
			prev = off + 1
		}
	}
	close(stop)
	wg.Wait()
	for _, pr := range []*Producer{p, q} {
		if err := pr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	want := map[int64]string{}
	for _, s := range g.acked {
		if v, dup := want[s.offset]; dup {
			t.Fatalf("offset %d given to %q and %q", s.offset, v, s.value)
		}
		want[s.offset] = s.value
	}
	c, err := l.Consumer("t", &ConsumerOptions{Start: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := 0
	for {
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if v, ok := want[r.Offset]; !ok || v != string(r.Value) || r.Offset != int64(read) {
				t.Fatalf("record %d read holds %q at offset %d; its sender was told %q (%v)", read, r.Value, r.Offset, v, ok)
			}
			read++
		}
	}
	if read != len(want) {
		t.Fatalf("read %d records, %d were acknowledged", read, len(want))
	}
}

// TestRecycleNotAfterHandOff: a lone sender that finds the writer lock
// held elsewhere hands its batch to the writer goroutine, which still
// reads the batch after the acknowledgement that ends the Send (committed
// recycles its callback slice): that batch must not be reused. The Send
// gets its offset, the batch is not kept, and the records sent after it
// with callbacks into the next batches are all called back at offsets
// that hold them.
func TestRecycleNotAfterHandOff(t *testing.T) {
	for _, d := range []Durability{Buffered, Periodic} {
		for _, backend := range ackBackends(t) {
			t.Run(d.String()+"/"+backend, func(t *testing.T) {
				dir := t.TempDir()
				l := openTest(t, dir, &Options{Durability: d, Backend: backend})
				mustCreate(t, l, "t", TopicConfig{Partitions: 1})
				p := mustProducer(t, l, "t", nil)
				ctx := context.Background()
				if _, err := p.Send(ctx, Record{Value: []byte("first")}); err != nil {
					t.Fatal(err)
				}
				part := l.topics["t"].parts()[0]
				other := writerProbe(t, dir, "t")
				takeWhenLetGo(t, other)
				type result struct {
					pos Position
					err error
				}
				sentc := make(chan result, 1)
				go func() {
					pos, err := p.Send(ctx, Record{Value: []byte("handed")})
					sentc <- result{pos, err}
				}()
				waitFor(t, patience, "the writer goroutine to wait for the lock with the handed batch", func() bool {
					return part.shm.waiting.count().Load() != 0
				})
				part.mu.Lock()
				handed := part.last
				part.mu.Unlock()
				other.Unlock(writerLockByte)
				res := <-sentc
				if res.err != nil || res.pos.Offset != 1 {
					t.Fatalf("the handed Send: %+v, %v; want offset 1", res.pos, res.err)
				}
				part.mu.Lock()
				kept := part.spareBatch
				part.mu.Unlock()
				if kept != nil && kept == handed {
					t.Fatal("the batch handed to the writer goroutine was kept for reuse")
				}
				// Records with callbacks, into the next batches (one of
				// them the handed batch, were it reused), and lone Sends.
				const n = 200
				var mu sync.Mutex
				got := map[int64]string{}
				for i := range n {
					v := fmt.Sprintf("after-%d", i)
					p.SendAsync(Record{Value: []byte(v)}, func(pos Position, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							t.Errorf("%s: %v", v, err)
							return
						}
						got[pos.Offset] = v
					})
					if i%10 == 0 {
						v := fmt.Sprintf("lone-%d", i)
						pos, err := p.Send(ctx, Record{Value: []byte(v)})
						if err != nil {
							t.Fatal(err)
						}
						mu.Lock()
						got[pos.Offset] = v
						mu.Unlock()
					}
				}
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(got) != n+n/10 {
					t.Fatalf("%d records acknowledged at distinct offsets, want %d", len(got), n+n/10)
				}
				for _, r := range readAll(t, l, "t", 2+len(got), &ConsumerOptions{Start: Earliest})[2:] {
					if got[r.Offset] != string(r.Value) {
						t.Fatalf("offset %d holds %q, its sender was told %q", r.Offset, r.Value, got[r.Offset])
					}
				}
			})
		}
	}
}
