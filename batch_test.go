package runnel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// TestLoneSenderLeads: a sender alone on a partition writes its own
// frames (Send and SendBatch alike): one frame per call, and the
// partition's writer goroutine is never started.
//
// "Alone" means nothing else in the Log holds the partition's append
// mutex (p.wmu) when a sender tries it: a sender that finds it taken hands
// its frame to the writer goroutine, by design. Two background holders
// would take it at times the test does not choose: the watcher of the kept
// writer lock (watchHold), which takes p.wmu every holdIdle (2 ms) for as
// long as appends keep coming, so a durable sender, whose fdatasync takes
// longer than that, met it whenever the watcher was descheduled holding
// it (under -race and CPU load, a few runs in a few hundred); and the
// retention loop. So the watcher sleeps through the test (holdIdle
// stretched, as in TestReaderReportsDamageBehindBusyWriter) and retention
// is off. (No checkpoint runs here: a new partition records its first at
// offset 0, and these records are far from the next.)
func TestLoneSenderLeads(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			old := holdIdle
			holdIdle = time.Hour
			t.Cleanup(func() { holdIdle = old }) // after the Log's cleanup closes it
			l := openTest(t, t.TempDir(), &Options{Durability: d, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			ctx := context.Background()
			for i := range 20 {
				pos, err := p.Send(ctx, Record{Value: fmt.Appendf(nil, "s%d", i)})
				if err != nil || pos.Offset != int64(i) {
					t.Fatalf("Send %d: %+v, %v", i, pos, err)
				}
			}
			for i := range 5 {
				recs := []Record{{Value: fmt.Appendf(nil, "b%d.0", i)}, {Value: fmt.Appendf(nil, "b%d.1", i)}, {Value: fmt.Appendf(nil, "b%d.2", i)}}
				base, err := p.SendBatch(ctx, 0, recs)
				if want := int64(20 + 3*i); err != nil || base != want {
					t.Fatalf("SendBatch %d: base %d, %v; want %d", i, base, err, want)
				}
			}
			if st := l.Stats(); st.FramesWritten != 25 || st.RecordsWritten != 35 {
				t.Fatalf("Stats %+v: want 25 frames of 35 records", st)
			}
			tp, _ := l.topic("t")
			part := tp.parts()[0]
			part.mu.Lock()
			started := part.started
			part.mu.Unlock()
			if started {
				t.Fatal("a lone sender's records went through the writer goroutine")
			}
			if d == Durable && l.Stats().Syncs < 25 {
				t.Fatalf("Stats %+v: a lone durable sender needs an fdatasync per frame", l.Stats())
			}
			got := readAll(t, l, "t", 35, nil)
			if string(got[19].Value) != "s19" || string(got[34].Value) != "b4.2" {
				t.Fatalf("records 19 and 34: %q, %q", got[19].Value, got[34].Value)
			}
		})
	}
}

// TestDurableStreamWaitsForSyncs: in Durable mode a SendAsync stream runs
// at most four MaxBatchBytes of written frames ahead of its fdatasyncs
// (syncBehind), plus the pending batch. With every fdatasync held back,
// the writer stops taking batches once that much is written and the sender
// blocks on the full pending batch; once the syncs go on, so does the
// stream, and every record is acknowledged in order.
func TestDurableStreamWaitsForSyncs(t *testing.T) {
	const maxBatch, n = 4096, 2000
	l := openTest(t, t.TempDir(), &Options{Durability: Durable, MaxBatchBytes: maxBatch, RetentionInterval: -1})
	entered, release := blockSyncs(l)
	stop := make(chan struct{})
	go func() { // take blockSyncs' signals, however many syncs there are
		for {
			select {
			case <-entered:
			case <-stop:
				return
			}
		}
	}()
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() { open(); close(stop) }) // before the Log's cleanup closes it
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	value := make([]byte, 100)

	var sent, acked atomic.Int64
	var firstErr error
	done := func(pos Position, err error) { // callbacks of one partition run one at a time
		if want := acked.Load(); (err != nil || pos.Offset != want) && firstErr == nil {
			firstErr = fmt.Errorf("callback %d: %+v, %v", want, pos, err)
		}
		acked.Add(1)
	}
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for range n {
			p.SendAsync(Record{Value: value}, done)
			sent.Add(1)
		}
	}()

	// Held: the writer waits for the sync stage, and the pending batch has
	// no room for the next record (reserve's test).
	tp, _ := l.topic("t")
	part := tp.parts()[0]
	size := frame.RecordSize(nil, value, nil)
	for held := false; !held; {
		select {
		case <-streamed:
			t.Fatalf("all %d records sent with no fdatasync done; %+v", n, l.Stats())
		case <-time.After(time.Millisecond):
		}
		part.mu.Lock()
		held = part.syncBehind() && part.pending.fb.Count() > 0 && part.pending.fb.Len()+size > maxBatch
		part.mu.Unlock()
	}
	// Four MaxBatchBytes taken, then one more batch that crossed the
	// bound: at most a record over MaxBatchBytes, and its frame header.
	most := int64(5*maxBatch + frame.HeaderSize + size)
	if st := l.Stats(); st.BytesWritten > most || acked.Load() != 0 {
		t.Fatalf("with no fdatasync done: %+v, %d acknowledged; want at most %d bytes written, none acknowledged", st, acked.Load(), most)
	}
	if got := sent.Load(); got >= n {
		t.Fatalf("the sender was not held: %d of %d sent", got, n)
	}

	open()
	<-streamed
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil || acked.Load() != n {
		t.Fatalf("%d of %d acknowledged, first error %v", acked.Load(), n, firstErr)
	}
	if st := l.Stats(); st.RecordsWritten != n {
		t.Fatalf("Stats %+v: want %d records written", st, n)
	}
}
