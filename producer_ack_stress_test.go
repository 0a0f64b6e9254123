package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The acknowledgement of a batch is a signal (signal.go) that a waiter
// may find fired, wait on before it fires, or race with its firing; these
// tests hold every way of waiting to what it promises while senders lead,
// hand over, share frames and fdatasyncs with another process, give up
// on their ctx and meet Close.

func init() { childMains["ack-rival"] = ackRivalMain }

// ackRivalMain is another process appending to partition 0 of topic "t"
// in $RUNNEL_ACK_DIR, with durability $RUNNEL_ACK_DURABILITY and backend
// $RUNNEL_ACK_BACKEND: $RUNNEL_ACK_N Sends, one at a time, so that the
// parent's senders find the writer lock and the sync lock taken at times.
func ackRivalMain() int {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_ACK_N"))
	d := Buffered
	if os.Getenv("RUNNEL_ACK_DURABILITY") == Durable.String() {
		d = Durable
	}
	l, err := Open(os.Getenv("RUNNEL_ACK_DIR"), &Options{Durability: d, Backend: os.Getenv("RUNNEL_ACK_BACKEND"), RetentionInterval: -1})
	if err != nil {
		return mpFail("ack rival", err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("ack rival", err)
	}
	for i := range n {
		if _, err := p.Send(context.Background(), Record{Value: fmt.Appendf(nil, "rival-%d", i)}); err != nil {
			return mpFail("ack rival", fmt.Errorf("Send %d: %w", i, err))
		}
	}
	if err := l.Close(); err != nil {
		return mpFail("ack rival", err)
	}
	return 0
}

// ackBackends returns the append backends this machine runs.
func ackBackends(t *testing.T) []string {
	backends := []string{BackendPwrite}
	if app, err := chooseBackend(Options{Backend: BackendIOURing}); err == nil {
		app.close()
		backends = append(backends, BackendIOURing)
	} else {
		t.Logf("io_uring left out: %v", err)
	}
	return backends
}

// sent is a record whose Send (or callback) reported it acknowledged.
type sent struct {
	value  string
	offset int64
}

// ackLedger collects what the test's senders were told, and their first
// broken promise.
type ackLedger struct {
	mu    sync.Mutex
	acked []sent
	err   error
}

func (g *ackLedger) add(s sent) {
	g.mu.Lock()
	g.acked = append(g.acked, s)
	g.mu.Unlock()
}

func (g *ackLedger) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

// endingCtx returns a ctx that another goroutine cancels after a few
// yields: it ends anywhere in the Send it is passed to, or before, or not
// at all during it. Each outcome has its promise; the test needs none of
// them to happen.
func endingCtx(i int) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range i % 7 {
			runtime.Gosched()
		}
		cancel()
	}()
	return ctx, cancel
}

// TestAcksUnderLoad: lone and concurrent Sends of AckDurability and
// AckCommitted producers, some with a ctx that ends at a random moment,
// SendAsync and SendRecordBatchAsyncCommit streams with Flushes, while
// another process appends to the same partition in the same mode. Every
// Send that returns nil finds its record committed (and, AckDurability in
// a Durable Log, within the durable point) when it returns, and there at
// its offset afterwards; every Send that fails says context.Canceled;
// every Flush that returns nil comes after the callbacks of the records
// sent before it; a batch's committed callback comes before its done.
func TestAcksUnderLoad(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		for _, backend := range ackBackends(t) {
			t.Run(d.String()+"/"+backend, func(t *testing.T) { ackStress(t, d, backend) })
		}
	}
}

func ackStress(t *testing.T, d Durability, backend string) {
	const senders, sends, rounds, rivalSends = 4, 150, 30, 300
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: d, Backend: backend, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	meta, err := openMeta(partDir(l, "t", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()

	rival := mpChild("ack-rival", "RUNNEL_ACK_DIR="+dir, "RUNNEL_ACK_DURABILITY="+d.String(),
		"RUNNEL_ACK_BACKEND="+backend, "RUNNEL_ACK_N="+strconv.Itoa(rivalSends))
	if err := rival.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rival.Process.Kill(); rival.Wait() })

	var g ackLedger
	var wg sync.WaitGroup
	for s := range senders {
		acks := []Acks{AckDurability, AckCommitted}[s%2]
		p := mustProducer(t, l, "t", &ProducerOptions{Acks: acks})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sends {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if i%3 == 0 {
					ctx, cancel = endingCtx(i)
				}
				value := fmt.Sprintf("s%d-%d", s, i)
				pos, err := p.Send(ctx, Record{Value: []byte(value)})
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						g.fail(fmt.Errorf("Send %s: %w", value, err))
					}
					continue
				}
				if err := ackHolds(meta, pos.Offset, d == Durable && acks == AckDurability); err != nil {
					g.fail(fmt.Errorf("Send %s returned %d: %w", value, pos.Offset, err))
				}
				g.add(sent{value, pos.Offset})
			}
		}()
	}
	for _, acks := range []Acks{AckDurability, AckCommitted} {
		p := mustProducer(t, l, "t", &ProducerOptions{Acks: acks})
		wg.Add(1)
		go func() {
			defer wg.Done()
			asyncRounds(p, rounds, acks, &g)
		}()
	}
	wg.Wait()
	if err := rival.Wait(); err != nil {
		t.Fatalf("the rival process: %v", err)
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	checkAcked(t, l, meta, g.acked)
}

// asyncRounds sends rounds of SendAsync records and a
// SendRecordBatchAsyncCommit batch, each round followed by a Flush (every
// other one with a ctx that ends at a random moment), and notes in g
// what the callbacks and Flushes broke.
func asyncRounds(p *Producer, rounds int, acks Acks, g *ackLedger) {
	var called atomic.Int64 // callbacks run
	queued := int64(0)      // callbacks due
	for r := range rounds {
		for i := range 5 {
			value := fmt.Sprintf("a%d-%d-%d", acks, r, i)
			queued++
			p.SendAsync(Record{Value: []byte(value)}, func(pos Position, err error) {
				if err != nil {
					g.fail(fmt.Errorf("SendAsync %s: %w", value, err))
				} else {
					g.add(sent{value, pos.Offset})
				}
				called.Add(1)
			})
		}
		value := fmt.Sprintf("b%d-%d", acks, r)
		var rb RecordBatch
		rb.Add(Record{Value: []byte(value)})
		var committed atomic.Bool
		queued++
		p.SendRecordBatchAsyncCommit(0, &rb, func(int64) { committed.Store(true) }, func(base int64, err error) {
			switch {
			case err != nil:
				g.fail(fmt.Errorf("SendRecordBatchAsyncCommit %s: %w", value, err))
			case !committed.Load():
				g.fail(fmt.Errorf("SendRecordBatchAsyncCommit %s: done before committed", value))
			default:
				g.add(sent{value, base})
			}
			called.Add(1)
		})
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if r%2 == 1 {
			ctx, cancel = endingCtx(r)
		}
		err := p.Flush(ctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			g.fail(fmt.Errorf("Flush of round %d: %w", r, err))
		case err == nil && called.Load() != queued:
			g.fail(fmt.Errorf("Flush of round %d returned with %d of %d callbacks run", r, called.Load(), queued))
		}
	}
	if err := p.Flush(context.Background()); err != nil || called.Load() != queued {
		g.fail(fmt.Errorf("the last Flush: %v, with %d of %d callbacks run", err, called.Load(), queued))
	}
}

// ackHolds checks, through a mapping of the partition's meta file of its
// own, that the record at off is committed, and with durable within the
// durable point.
func ackHolds(meta *metaMap, off int64, durable bool) error {
	next, err := metaWord("published tail", func() (int64, bool) {
		t, ok := meta.tail()
		return t.next, ok
	})
	if err != nil || next <= off {
		return fmt.Errorf("the published tail is %d (%v): not committed", next, err)
	}
	if !durable {
		return nil
	}
	next, err = metaWord("durable point", meta.durableNext)
	if err != nil || next <= off {
		return fmt.Errorf("the durable point is %d (%v): not durable", next, err)
	}
	return nil
}

// metaWord reads a word of the meta file that read may find in the middle
// of an update (other processes' appends and syncs update it all the
// time): it tries again until read is sure of it.
func metaWord(what string, read func() (int64, bool)) (int64, error) {
	deadline := time.Now().Add(patience)
	for {
		v, ok := read()
		if ok {
			return v, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no %s", what)
		}
		runtime.Gosched()
	}
}

// checkAcked reads the whole partition and checks every acknowledged
// record at its offset.
func checkAcked(t *testing.T, l *Log, meta *metaMap, acked []sent) {
	t.Helper()
	next, err := metaWord("published tail", func() (int64, bool) {
		t, ok := meta.tail()
		return t.next, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l, "t", int(next), &ConsumerOptions{Start: Earliest})
	for _, s := range acked {
		if s.offset >= int64(len(recs)) || string(recs[s.offset].Value) != s.value || recs[s.offset].Offset != s.offset {
			t.Errorf("%s was acknowledged at %d; the partition of %d records holds something else there", s.value, s.offset, len(recs))
		}
	}
	t.Logf("%d records, %d acknowledged to this process's senders", len(recs), len(acked))
}

// TestLogCloseWithSendsInFlight: Log.Close while Sends of both Acks and a
// SendAsync stream keep coming. Close returns; every Send returns, nil or
// ErrClosed; every callback runs; and every record acknowledged is there
// at its offset when the directory is opened again.
func TestLogCloseWithSendsInFlight(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		for _, backend := range ackBackends(t) {
			t.Run(d.String()+"/"+backend, func(t *testing.T) { closeWithSends(t, d, backend) })
		}
	}
}

func closeWithSends(t *testing.T, d Durability, backend string) {
	const senders, before = 4, 20 // acknowledgements each sender has before Close
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: d, Backend: backend, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	var g ackLedger
	var running sync.WaitGroup
	var warm sync.WaitGroup
	for s := range senders {
		p := mustProducer(t, l, "t", &ProducerOptions{Acks: []Acks{AckDurability, AckCommitted}[s%2]})
		running.Add(1)
		warm.Add(1)
		go func() {
			defer running.Done()
			for i := 0; ; i++ {
				value := fmt.Sprintf("s%d-%d", s, i)
				pos, err := p.Send(context.Background(), Record{Value: []byte(value)})
				if i == before {
					warm.Done()
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						g.fail(fmt.Errorf("Send %s: %w", value, err))
					}
					if i < before {
						warm.Done()
					}
					return
				}
				g.add(sent{value, pos.Offset})
			}
		}()
	}
	var queued, called atomic.Int64
	async := mustProducer(t, l, "t", nil)
	running.Add(1)
	go func() {
		defer running.Done()
		for i := 0; ; i++ {
			value := fmt.Sprintf("a-%d", i)
			var closed atomic.Bool
			queued.Add(1)
			async.SendAsync(Record{Value: []byte(value)}, func(pos Position, err error) {
				switch {
				case errors.Is(err, ErrClosed):
					closed.Store(true)
				case err != nil:
					g.fail(fmt.Errorf("SendAsync %s: %w", value, err))
				default:
					g.add(sent{value, pos.Offset})
				}
				called.Add(1)
			})
			if closed.Load() { // refused at once: the Log is closed
				return
			}
			if i%64 == 63 {
				// Paced by the writes, not ahead of them by a
				// hundred thousand records for checkAcked to read.
				async.Flush(context.Background())
			}
		}
	}()
	warm.Wait()
	if err := inTime(t, "Log.Close", l.Close); err != nil {
		t.Fatalf("Close with sends in flight: %v", err)
	}
	inTime(t, "the senders", func() error { running.Wait(); return nil })
	if called.Load() != queued.Load() {
		t.Errorf("%d of %d SendAsync callbacks ran", called.Load(), queued.Load())
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	l = openTest(t, dir, &Options{Durability: d, Backend: backend, RetentionInterval: -1})
	meta, err := openMeta(partDir(l, "t", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()
	checkAcked(t, l, meta, g.acked)
}
