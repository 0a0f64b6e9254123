package runnel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

func mustProducer(t testing.TB, l *Log, topic string, opts *ProducerOptions) *Producer {
	t.Helper()
	p, err := l.Producer(topic, opts)
	if err != nil {
		t.Fatalf("Producer(%s): %v", topic, err)
	}
	return p
}

// TestProducerConcurrentSend has many goroutines Send at once to one
// partition: offsets are dense and unique, each sender's are in its send
// order, and each offset holds what its sender sent.
func TestProducerConcurrentSend(t *testing.T) {
	tests := []struct {
		durability        Durability
		goroutines, sends int
	}{
		{Buffered, 64, 2000},
		{Durable, 16, 100},
	}
	for _, tt := range tests {
		t.Run(tt.durability.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: tt.durability})
			mustCreate(t, l, "c", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "c", nil)
			n := tt.goroutines * tt.sends
			offsets := make([][]int64, tt.goroutines)
			var wg sync.WaitGroup
			for g := range tt.goroutines {
				wg.Go(func() {
					for i := range tt.sends {
						pos, err := p.Send(context.Background(), Record{Key: fmt.Appendf(nil, "g%d", g), Value: fmt.Appendf(nil, "%d/%d", g, i)})
						if err != nil {
							t.Errorf("goroutine %d Send %d: %v", g, i, err)
							return
						}
						if pos.Partition != 0 {
							t.Errorf("goroutine %d Send %d: partition %d", g, i, pos.Partition)
						}
						offsets[g] = append(offsets[g], pos.Offset)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}

			want := make([]string, n) // offset -> "g/i"
			for g, offs := range offsets {
				for i, off := range offs {
					if i > 0 && off <= offs[i-1] {
						t.Fatalf("goroutine %d: Send %d got offset %d after %d", g, i, off, offs[i-1])
					}
					if off < 0 || off >= int64(n) {
						t.Fatalf("goroutine %d: offset %d outside [0, %d)", g, off, n)
					}
					if want[off] != "" {
						t.Fatalf("offset %d given to %q and %d/%d", off, want[off], g, i)
					}
					want[off] = fmt.Sprintf("%d/%d", g, i)
				}
			}
			bad := 0
			for i, r := range readAll(t, l, "c", n, nil) {
				if r.Offset != int64(i) || string(r.Value) != want[i] || string(r.Key) != "g"+strings.Split(want[i], "/")[0] {
					t.Errorf("record %d: offset %d key %q value %q, want value %q", i, r.Offset, r.Key, r.Value, want[i])
					if bad++; bad > 10 {
						t.FailNow()
					}
				}
			}
			// How many frames and fdatasyncs the senders shared depends on
			// how the scheduler ran them; TestDurableSendersShareSync makes
			// that sharing happen and checks it.
			st := l.Stats()
			if st.RecordsWritten != int64(n) {
				t.Errorf("Stats: %d records written, want %d", st.RecordsWritten, n)
			}
			if tt.durability == Durable && st.Syncs == 0 {
				t.Errorf("no fdatasync for %d durable records", n)
			}
		})
	}
}

type ack struct {
	Seq  int
	Part int
	Off  int64
}

// TestProducerSendAsyncCallbacks checks that every callback runs exactly
// once, in send order per partition, with the offsets a reader sees.
func TestProducerSendAsyncCallbacks(t *testing.T) {
	const n, parts = 3000, 3
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "a", TopicConfig{Partitions: parts})
	p := mustProducer(t, l, "a", nil)
	var mu sync.Mutex
	var acks [parts][]ack
	calls := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		p.SendAsync(Record{Key: fmt.Appendf(nil, "key-%d", i%50), Value: fmt.Appendf(nil, "%d", i)}, func(pos Position, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			calls[i]++
			if err != nil {
				t.Errorf("record %d: %v", i, err)
				return
			}
			acks[pos.Partition] = append(acks[pos.Partition], ack{i, pos.Partition, pos.Offset})
		})
	}
	waitTimeout(t, &wg, 20*time.Second)
	// A batch runs its callbacks before Flush can see it done: a
	// duplicate call would have happened by now.
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range calls {
		if c != 1 {
			t.Errorf("callback of record %d ran %d times", i, c)
		}
	}
	byOffset := map[[2]int64]int{}
	for part, as := range acks {
		for j, a := range as {
			if a.Off != int64(j) {
				t.Fatalf("partition %d: callback %d (record %d) got offset %d, want %d", part, j, a.Seq, a.Off, j)
			}
			if j > 0 && a.Seq <= as[j-1].Seq {
				t.Fatalf("partition %d: callback for record %d ran after record %d's", part, a.Seq, as[j-1].Seq)
			}
			byOffset[[2]int64{int64(part), a.Off}] = a.Seq
		}
	}
	for _, r := range readAll(t, l, "a", n, nil) {
		seq, ok := byOffset[[2]int64{int64(r.Partition), r.Offset}]
		if got := string(r.Value); !ok || got != fmt.Sprint(seq) {
			t.Errorf("partition %d offset %d holds %q, callback said record %d", r.Partition, r.Offset, got, seq)
		}
	}
}

func waitTimeout(t testing.TB, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("timed out after %v", d)
	}
}

// TestProducerFlush checks that Flush returns only once every record sent
// before it is acknowledged: stored, and its callback run.
func TestProducerFlush(t *testing.T) {
	const n = 500
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "f", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "f", nil)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush with nothing sent: %v", err)
	}
	var acked atomic.Int64
	for i := range n {
		p.SendAsync(Record{Key: fmt.Appendf(nil, "%d", i), Value: []byte("v")}, func(_ Position, err error) {
			if i == n-1 {
				time.Sleep(20 * time.Millisecond) // a slow callback
			}
			if err == nil {
				acked.Add(1)
			}
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := acked.Load(); got != n {
		t.Errorf("Flush returned with %d of %d callbacks run", got, n)
	}
	info, _ := l.DescribeTopic("f")
	if got := info.Partitions[0].NextOffset + info.Partitions[1].NextOffset; got != n {
		t.Errorf("after Flush the topic holds %d of %d records", got, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.SendAsync(Record{Value: []byte("late")}, nil)
	if err := p.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a cancelled ctx: %v", err)
	}
}

func TestProducerKeyPartitioning(t *testing.T) {
	const parts, keys = 5, 200
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "k", TopicConfig{Partitions: parts})
	p := mustProducer(t, l, "k", nil)
	seen := map[string]int{}
	for round := range 3 {
		for k := range keys {
			key := fmt.Sprintf("user-%d", k)
			pos, err := p.Send(context.Background(), Record{Key: []byte(key), Value: []byte(key)})
			if err != nil {
				t.Fatal(err)
			}
			if want := int(xxhash.Sum64String(key) % parts); pos.Partition != want {
				t.Fatalf("key %q went to partition %d, want xxhash64 %% %d = %d", key, pos.Partition, parts, want)
			}
			if round > 0 && seen[key] != pos.Partition {
				t.Fatalf("key %q moved from partition %d to %d", key, seen[key], pos.Partition)
			}
			seen[key] = pos.Partition
		}
	}
	used := map[int]bool{}
	for _, r := range readAll(t, l, "k", 3*keys, nil) {
		if want := seen[string(r.Key)]; r.Partition != want {
			t.Errorf("key %q read from partition %d, sent to %d", r.Key, r.Partition, want)
		}
		used[r.Partition] = true
	}
	if len(used) != parts {
		t.Errorf("%d keys used only partitions %v", keys, used)
	}
}

func TestProducerKeylessSpread(t *testing.T) {
	const parts = 4
	n := parts*spreadStickiness + 100
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "s", TopicConfig{Partitions: parts})
	p := mustProducer(t, l, "s", nil)
	for range n {
		p.SendAsync(Record{Value: []byte("x")}, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, err := l.DescribeTopic("s")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, pi := range info.Partitions {
		if pi.NextOffset == 0 {
			t.Errorf("partition %d got no keyless record of %d", pi.Partition, n)
		}
		total += pi.NextOffset
	}
	if total != int64(n) {
		t.Errorf("%d records stored, sent %d", total, n)
	}
}

// TestProducerKeylessStartsAtRandom: short-lived producers, one keyless
// record each, land in several partitions, as with Kafka's sticky
// partitioner, not all in partition 0. 16 producers over 4 partitions all
// pick one with a chance of 4^-15.
func TestProducerKeylessStartsAtRandom(t *testing.T) {
	const parts, producers = 4, 16
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "r", TopicConfig{Partitions: parts})
	used := map[int]bool{}
	for range producers {
		pos, err := mustProducer(t, l, "r", nil).Send(context.Background(), Record{Value: []byte("job")})
		if err != nil {
			t.Fatal(err)
		}
		used[pos.Partition] = true
	}
	if len(used) < 2 {
		t.Errorf("%d producers of one keyless record each used partitions %v", producers, used)
	}
}

func TestProducerManualPartitioner(t *testing.T) {
	const parts = 3
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "m", TopicConfig{Partitions: parts})
	p := mustProducer(t, l, "m", &ProducerOptions{Partitioner: ManualPartitioner})
	for i := range 9 {
		part := (i * 2) % parts
		pos, err := p.Send(context.Background(), Record{Key: []byte("same key"), Value: []byte("v"), Partition: part})
		if err != nil || pos.Partition != part {
			t.Fatalf("Send to partition %d: %+v, %v", part, pos, err)
		}
	}
	for _, bad := range []int{-1, parts, 1 << 20} {
		_, err := p.Send(context.Background(), Record{Value: []byte("v"), Partition: bad})
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Send to partition %d: %v, want ErrInvalidArgument", bad, err)
		}
		var asyncErr error
		called := 0
		p.SendAsync(Record{Value: []byte("v"), Partition: bad}, func(_ Position, err error) { asyncErr = err; called++ })
		if called != 1 || !errors.Is(asyncErr, ErrInvalidArgument) {
			t.Errorf("SendAsync to partition %d: %d calls, %v; want one ErrInvalidArgument before it returns", bad, called, asyncErr)
		}
	}
	p.Flush(context.Background())
	if st := l.Stats(); st.RecordsWritten != 9 {
		t.Errorf("%d records written, want 9", st.RecordsWritten)
	}
}

func TestProducerTooLarge(t *testing.T) {
	const limit = 4096
	// value returns a value that makes a record with key and headers
	// encode to exactly size bytes.
	value := func(key []byte, hdrs []Header, size int) []byte {
		v := make([]byte, size-frame.RecordSize(key, nil, frameHeaders(hdrs)))
		for frame.RecordSize(key, v, frameHeaders(hdrs)) > size {
			v = v[:len(v)-1]
		}
		return v
	}
	big := []Header{{Key: "h", Value: make([]byte, limit)}}
	tests := []struct {
		name string
		rec  Record
		ok   bool
	}{
		{"exactly the limit", Record{Key: []byte("k"), Value: value([]byte("k"), nil, limit)}, true},
		{"one byte over", Record{Key: []byte("k"), Value: append(value([]byte("k"), nil, limit), 'x')}, false},
		{"large value", Record{Value: make([]byte, 2*limit)}, false},
		{"large key", Record{Key: make([]byte, limit), Value: []byte("v")}, false},
		{"large header", Record{Value: []byte("v"), Headers: big}, false},
	}
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxRecordBytes: limit})
	mustCreate(t, l, "big", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "big", nil)
	var want []rec
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frame.RecordSize(tt.rec.Key, tt.rec.Value, frameHeaders(tt.rec.Headers)); tt.ok != (got <= limit) || tt.ok && got != limit {
				t.Fatalf("test setup: record of %d bytes", got)
			}
			_, err := p.Send(context.Background(), tt.rec)
			acks := make(chan error, 2)
			p.SendAsync(tt.rec, func(_ Position, err error) { acks <- err })
			if tt.ok {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				select {
				case err := <-acks:
					if err != nil {
						t.Fatalf("SendAsync: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("SendAsync callback never ran")
				}
				want = append(want, rec{Off: int64(len(want)), Key: string(tt.rec.Key), Val: string(tt.rec.Value)}, rec{Off: int64(len(want) + 1), Key: string(tt.rec.Key), Val: string(tt.rec.Value)})
				return
			}
			var asyncErr error
			calls := len(acks)
			if calls > 0 {
				asyncErr = <-acks
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("Send: %v, want ErrTooLarge", err)
			}
			if calls != 1 || !errors.Is(asyncErr, ErrTooLarge) {
				t.Errorf("SendAsync: %d calls, %v; want one ErrTooLarge before it returns", calls, asyncErr)
			}
		})
	}
	p.Flush(context.Background())
	if st := l.Stats(); st.RecordsWritten != int64(len(want)) {
		t.Errorf("%d records written, want %d", st.RecordsWritten, len(want))
	}
	got := recsOf(readAll(t, l, "big", len(want), nil))
	for i := range got {
		got[i].TS = 0
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored records (-want +got):\n%s", diff)
	}
}

func TestProducerCancelledContext(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "ctx", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "ctx", nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for range 20 {
		if _, err := p.Send(cancelled, Record{Value: []byte("v")}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Send with a cancelled ctx: %v, want context.Canceled", err)
		}
		if _, err := p.Send(expired, Record{Value: []byte("v")}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send with an expired ctx: %v, want context.DeadlineExceeded", err)
		}
	}
	if pos, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
		t.Fatalf("Send after cancelled sends: %+v, %v", pos, err)
	}
}
