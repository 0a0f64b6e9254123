package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// encodedSample is what a RecordBatch must carry unchanged: nil and empty
// keys and values kept apart, headers, and timestamps that go back and
// forth.
func encodedSample(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{Time: testEpoch.Add(time.Duration(i%5-2) * time.Hour)}
		switch i % 4 {
		case 0:
			r.Key, r.Value = fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i)
		case 1:
			r.Value = []byte{}
		case 2:
			r.Key = []byte{}
			r.Headers = []Header{{Key: "h", Value: []byte("x")}, {Key: "nil"}, {Key: "empty", Value: []byte{}}}
		case 3:
			r.Value = fmt.Appendf(nil, "%0300d", i)
		}
		recs[i] = r
	}
	return recs
}

func encode(t testing.TB, b *RecordBatch, recs []Record) {
	t.Helper()
	for _, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
}

// encodeAt adds recs to b with AddAt, as a decoder of another format does.
func encodeAt(t testing.TB, b *RecordBatch, recs []Record) {
	t.Helper()
	for _, r := range recs {
		if err := b.AddAt(r.Time.UnixNano(), r.Key, r.Value, r.Headers); err != nil {
			t.Fatalf("AddAt: %v", err)
		}
	}
}

// TestRecordBatchRoundTrip sends RecordBatches, reusing one, and reads
// back exactly the records added (with Add, then AddAt), at consecutive
// offsets from each base.
func TestRecordBatchRoundTrip(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d})
			mustCreate(t, l, "rb", TopicConfig{Partitions: 2})
			p := mustProducer(t, l, "rb", nil)
			sent := encodedSample(40)
			var b RecordBatch
			if b.Len() != 0 || b.Size() != 48 {
				t.Fatalf("zero RecordBatch: Len %d, Size %d", b.Len(), b.Size())
			}
			encode(t, &b, sent[:25])
			if b.Len() != 25 {
				t.Fatalf("Len %d after 25 records", b.Len())
			}
			base, err := p.SendRecordBatch(context.Background(), 1, &b)
			if err != nil || base != 0 {
				t.Fatalf("SendRecordBatch = %d, %v", base, err)
			}
			if b.Len() != 0 {
				t.Fatalf("the batch holds %d records after it was sent", b.Len())
			}
			encodeAt(t, &b, sent[25:])
			acked := make(chan error, 1)
			p.SendRecordBatchAsync(1, &b, func(base int64, err error) {
				if err == nil && base != 25 {
					err = fmt.Errorf("base %d, want 25", base)
				}
				acked <- err
			})
			if err := <-acked; err != nil {
				t.Fatal(err)
			}
			got := readAll(t, l, "rb", len(sent), &ConsumerOptions{Partitions: []int{1}})
			checkStored(t, got, 1, 0, sent)
		})
	}
}

// TestRecordBatchJoinsPendingFrame: a RecordBatch sent while other records
// wait in the partition's pending frame joins that frame, and its records
// keep their own timestamps (re-based on the frame's first one). The
// write in flight is held on the partition's append mutex, so the pending
// frame is certainly not empty when the batch arrives.
func TestRecordBatchJoinsPendingFrame(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "j", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "j", nil)
	part := p.topic.parts()[0]

	part.wmu.Lock()
	first := Record{Value: []byte("in flight"), Time: testEpoch}
	p.SendAsync(first, nil)
	waitFor(t, 10*time.Second, "the write to start", func() bool {
		part.mu.Lock()
		defer part.mu.Unlock()
		return part.writing
	})
	pending := Record{Value: []byte("pending"), Time: testEpoch.Add(time.Hour)}
	p.SendAsync(pending, nil)
	var b RecordBatch
	batch := encodedSample(9)
	encode(t, &b, batch)
	var base int64 = -1
	p.SendRecordBatchAsync(0, &b, func(o int64, err error) {
		if err != nil {
			t.Errorf("SendRecordBatchAsync: %v", err)
		}
		base = o
	})
	frames := l.Stats().FramesWritten
	part.wmu.Unlock()
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if base != 2 {
		t.Errorf("base %d, want 2", base)
	}
	if n := l.Stats().FramesWritten - frames; n != 2 {
		t.Errorf("%d frames written, want 2: the one in flight, then the pending one with the batch", n)
	}
	want := append([]Record{first, pending}, batch...)
	checkStored(t, readAll(t, l, "j", len(want), nil), 0, 0, want)
}

// checkStored compares records read back from partition with those sent
// from offset base on: keys, values (nil and empty apart), headers and
// timestamps.
func checkStored(t *testing.T, got []Record, partition int, base int64, sent []Record) {
	t.Helper()
	want := make([]Record, len(sent))
	for i, r := range sent {
		r.Partition, r.Offset = partition, base+int64(i)
		want[i] = r
	}
	nilAware := cmp.Comparer(func(a, b []byte) bool { return (a == nil) == (b == nil) && string(a) == string(b) })
	if diff := cmp.Diff(want, got, nilAware, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("records stored (-want +got):\n%s", diff)
	}
}

func TestRecordBatchRejects(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxRecordBytes: 1 << 10})
	mustCreate(t, l, "r", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "r", nil)

	var b RecordBatch
	encode(t, &b, seqRecords(0, 2))
	if err := b.Add(Record{Headers: make([]Header, 5000)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Add of a record with 5000 headers: %v, want ErrTooLarge", err)
	}
	if err := b.AddAt(0, nil, nil, make([]Header, 5000)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("AddAt of a record with 5000 headers: %v, want ErrTooLarge", err)
	}
	if b.Len() != 2 {
		t.Errorf("a refused Add left %d records, want 2", b.Len())
	}
	b.Reset()

	value := make([]byte, 1000)
	tests := []struct {
		name      string
		partition int
		recs      []Record
		want      error
	}{
		{"empty", 0, nil, ErrInvalidArgument},
		{"bad partition", 1, seqRecords(0, 1), ErrInvalidArgument},
		{"record over MaxRecordBytes", 0, []Record{{Value: []byte("small")}, {Value: make([]byte, 2<<10)}}, ErrTooLarge},
		{"more than one frame", 0, make([]Record, MaxFrameBytes/len(value)+1), ErrTooLarge},
	}
	for i := range tests[3].recs {
		tests[3].recs[i].Value = value
	}
	for _, tt := range tests {
		encode(t, &b, tt.recs)
		if _, err := p.SendRecordBatch(context.Background(), tt.partition, &b); !errors.Is(err, tt.want) {
			t.Errorf("%s: SendRecordBatch = %v, want %v", tt.name, err, tt.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: the refused batch keeps %d records", tt.name, b.Len())
		}
		encode(t, &b, tt.recs)
		called := false
		p.SendRecordBatchAsync(tt.partition, &b, func(_ int64, err error) {
			called = true
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: SendRecordBatchAsync: %v, want %v", tt.name, err, tt.want)
			}
		})
		if !called {
			t.Errorf("%s: the error did not come before SendRecordBatchAsync returned", tt.name)
		}
	}
	if _, err := p.SendRecordBatch(context.Background(), 0, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SendRecordBatch of a nil batch: %v, want ErrInvalidArgument", err)
	}
	var nilErr error
	p.SendRecordBatchAsync(0, nil, func(_ int64, err error) { nilErr = err })
	if !errors.Is(nilErr, ErrInvalidArgument) {
		t.Errorf("SendRecordBatchAsync of a nil batch: %v before it returned, want ErrInvalidArgument", nilErr)
	}
	// Nothing refused was stored.
	encode(t, &b, seqRecords(0, 1))
	if base, err := p.SendRecordBatch(context.Background(), 0, &b); err != nil || base != 0 {
		t.Fatalf("SendRecordBatch after the refusals = %d, %v; want base 0", base, err)
	}
	p.Close()
	encode(t, &b, seqRecords(0, 1))
	if _, err := p.SendRecordBatch(context.Background(), 0, &b); !errors.Is(err, ErrClosed) {
		t.Errorf("SendRecordBatch after Close: %v, want ErrClosed", err)
	}
}

// TestRecordBatchCommitCallback: SendRecordBatchAsyncCommit's committed
// callback runs with the batch's offset once it is committed, while the
// fdatasync a Durable Log's acknowledgement waits for is still blocked,
// and before done; a batch that fails calls done alone.
func TestRecordBatchCommitCallback(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Durable})
	entered, release := blockSyncs(l)
	mustCreate(t, l, "c", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "c", nil)
	var b RecordBatch
	encode(t, &b, seqRecords(0, 2)) // offsets 0 and 1
	p.SendRecordBatchAsync(0, &b, nil)
	encode(t, &b, seqRecords(2, 3))
	committed := make(chan int64, 1)
	done := make(chan int64, 1)
	p.SendRecordBatchAsyncCommit(0, &b, func(base int64) {
		select {
		case <-done:
			t.Error("done ran before committed")
		default:
		}
		committed <- base
	}, func(base int64, err error) {
		if err != nil {
			t.Errorf("done: %v", err)
		}
		done <- base
	})
	expectSignal(t, entered, "the fdatasync")
	select {
	case base := <-committed:
		if base != 2 {
			t.Errorf("committed with base %d, want 2", base)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("committed did not run within 20s while the fdatasync was blocked")
	}
	select {
	case <-done:
		t.Fatal("done ran while every fdatasync was blocked")
	default:
	}
	close(release)
	select {
	case base := <-done:
		if base != 2 {
			t.Errorf("done with base %d, want 2", base)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("done did not run within 20s of the fdatasync's release")
	}

	// A refused batch: done gets the error, committed is never called.
	encode(t, &b, nil)
	var failed error
	p.SendRecordBatchAsyncCommit(0, &b, func(int64) { t.Error("committed called for a refused batch") },
		func(_ int64, err error) { failed = err })
	if !errors.Is(failed, ErrInvalidArgument) {
		t.Errorf("an empty batch: done got %v, want ErrInvalidArgument", failed)
	}
}

// TestRecordBatchNoteBeforeCommit: SendRecordBatchAsyncNoted's note runs
// with the batch's offset before any process can read the batch (another
// Log on the directory reads only the records before it then), and before
// committed; each batch's note, committed and done agree on its offset,
// whether or not batches sent together share a frame.
func TestRecordBatchNoteBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "n", TopicConfig{Partitions: 1})
	other := openTest(t, dir, &Options{Durability: Buffered})
	p := mustProducer(t, l, "n", nil)
	// readable counts the records the other Log reads from offset 0.
	readable := func() int {
		c, err := other.Consumer("n", &ConsumerOptions{Start: Earliest})
		if err != nil {
			t.Error(err)
			return -1
		}
		defer c.Close()
		n := 0
		for {
			recs, err := c.TryPoll()
			if err != nil {
				t.Error(err)
				return -1
			}
			if len(recs) == 0 {
				return n
			}
			n += len(recs)
		}
	}
	var b RecordBatch
	encode(t, &b, seqRecords(0, 2))
	if _, err := p.SendRecordBatch(context.Background(), 0, &b); err != nil {
		t.Fatal(err)
	}
	const batches = 3
	type seen struct {
		note, committed, done int64
		readableAtNote        int
		order                 string
	}
	var mu sync.Mutex
	got := make([]seen, batches)
	var wg sync.WaitGroup
	for i := range batches {
		encode(t, &b, seqRecords(2+2*i, 2))
		wg.Add(1)
		p.SendRecordBatchAsyncNoted(0, &b, func(base int64) {
			n := readable()
			mu.Lock()
			defer mu.Unlock()
			got[i].note, got[i].readableAtNote = base, n
			got[i].order += "n"
		}, func(base int64) {
			mu.Lock()
			defer mu.Unlock()
			got[i].committed = base
			got[i].order += "c"
		}, func(base int64, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("batch %d: %v", i, err)
			}
			mu.Lock()
			defer mu.Unlock()
			got[i].done = base
			got[i].order += "d"
		})
	}
	wg.Wait()
	for i, s := range got {
		want := int64(2 + 2*i)
		if s.note != want || s.committed != want || s.done != want || s.order != "ncd" {
			t.Errorf("batch %d: note %d, committed %d, done %d, in the order %q; want %d each, in the order ncd", i, s.note, s.committed, s.done, s.order, want)
		}
		if int64(s.readableAtNote) > s.note {
			t.Errorf("batch %d: another Log read %d records at its note, its own among them (offset %d)", i, s.readableAtNote, s.note)
		}
	}
	if n := readable(); n != 2+2*batches {
		t.Errorf("%d records readable at the end, want %d", n, 2+2*batches)
	}
}
