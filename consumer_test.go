package runnel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustConsumer(t testing.TB, l *Log, topic string, opts *ConsumerOptions) *Consumer {
	t.Helper()
	c, err := l.Consumer(topic, opts)
	if err != nil {
		t.Fatalf("Consumer(%s): %v", topic, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seqRecords returns n records with values "v<first+i>" and increasing
// timestamps.
func seqRecords(first, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Value: fmt.Appendf(nil, "v%d", first+i), Time: testEpoch.Add(time.Duration(first+i) * time.Second)}
	}
	return recs
}

// pollN polls until it has n records, failing the test on error or after
// five seconds.
func pollN(t testing.TB, c *Consumer, n int) []rec {
	t.Helper()
	return recsOf(pollUntil(t, c, n, 5*time.Second))
}

func TestConsumerPollWakesPromptly(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "w", TopicConfig{Partitions: 3})
	p := mustProducer(t, l, "w", &ProducerOptions{Partitioner: ManualPartitioner})
	// A partition's first append records its first synced checkpoint
	// (two syncs): not what this test times.
	for part := range 3 {
		if _, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("warm-up")}); err != nil {
			t.Fatal(err)
		}
	}
	c := mustConsumer(t, l, "w", &ConsumerOptions{Start: Latest})
	type polled struct {
		recs []rec
		err  error
		at   time.Time
	}
	var lats []time.Duration
	for round := range 6 {
		res := make(chan polled, 1)
		go func() {
			// Poll has no timer of its own here: only the append can
			// end its sleep before this bound.
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			recs, err := c.Poll(ctx)
			res <- polled{recsOf(recs), err, time.Now()}
		}()
		select {
		case r := <-res:
			t.Fatalf("round %d: Poll returned %+v, %v before anything was appended", round, r.recs, r.err)
		case <-time.After(30 * time.Millisecond):
		}
		sent := Record{Value: fmt.Appendf(nil, "r%d", round), Partition: round % 3, Time: testEpoch}
		start := time.Now()
		if _, err := p.Send(context.Background(), sent); err != nil {
			t.Fatal(err)
		}
		r := <-res
		if r.err != nil {
			t.Fatalf("round %d: Poll: %v", round, r.err)
		}
		want := []rec{{Part: round % 3, Off: int64(round/3) + 1, Val: string(sent.Value), TS: testEpoch.UnixNano()}}
		if diff := cmp.Diff(want, r.recs); diff != "" {
			t.Fatalf("round %d: Poll (-want +got):\n%s", round, diff)
		}
		lats = append(lats, r.at.Sub(start))
	}
	// How promptly is measured by BenchmarkCrossProcessLatency;
	// a loaded machine can stretch any one wake-up.
	t.Logf("Poll woke %v after the Send began", lats)
}

func TestConsumerPollContext(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		want    error
		minWait time.Duration
	}{
		{"cancelled while waiting", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(40*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled, 40 * time.Millisecond},
		{"deadline while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 40*time.Millisecond)
		}, context.DeadlineExceeded, 40 * time.Millisecond},
		{"already cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled, 0},
	}
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "ctx", TopicConfig{Partitions: 2})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustConsumer(t, l, "ctx", nil)
			start := time.Now() // before the ctx's timer starts
			ctx, cancel := tt.ctx()
			defer cancel()
			recs, err := c.Poll(ctx)
			took := time.Since(start)
			if !errors.Is(err, tt.want) || len(recs) != 0 {
				t.Errorf("Poll: %d records, %v; want %v", len(recs), err, tt.want)
			}
			// Not before ctx ended. (How soon after is the scheduler's
			// business.)
			if took < tt.minWait {
				t.Errorf("Poll returned after %v, before its ctx ended at %v", took, tt.minWait)
			}
		})
	}
}

func TestConsumerRecordsIterator(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "it", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "it", nil)
	sent := seqRecords(0, 10)
	sendSeq(t, p, 0, sent)

	t.Run("break", func(t *testing.T) {
		c := mustConsumer(t, l, "it", nil)
		var got []Record
		for r, err := range c.Records(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cloneRecord(r))
			if len(got) == 4 {
				break
			}
		}
		if diff := cmp.Diff(wantRecs(0, sent[:4]), recsOf(got)); diff != "" {
			t.Errorf("records before break (-want +got):\n%s", diff)
		}
		// Records fetched but not yielded are not lost: the consumer
		// resumes with the first one, as Position says.
		if pos := c.Position(0); pos != 4 {
			t.Errorf("Position after break at offset 3: %d, want 4", pos)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		recs, err := c.Poll(ctx)
		if diff := cmp.Diff(wantRecs(4, sent[4:]), recsOf(recs)); err != nil || diff != "" {
			t.Errorf("Poll after break: %v (-want +got):\n%s", err, diff)
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		c := mustConsumer(t, l, "it", nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got []Record
		var errs []error
		for r, err := range c.Records(ctx) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			got = append(got, cloneRecord(r))
			if len(got) == len(sent) {
				// Cancel while the iterator waits for more.
				time.AfterFunc(20*time.Millisecond, cancel)
			}
		}
		if diff := cmp.Diff(wantRecs(0, sent), recsOf(got)); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("iterator errors %v, want one context.Canceled, last", errs)
		}
	})

	t.Run("closed", func(t *testing.T) {
		c := mustConsumer(t, l, "it", nil)
		c.Close()
		var errs []error
		for _, err := range c.Records(context.Background()) {
			errs = append(errs, err)
		}
		if len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
			t.Errorf("Records on a closed consumer yielded %v, want one ErrClosed", errs)
		}
	})
}

func TestConsumerLatestSeekPosition(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "s", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "s", nil)
	sent := seqRecords(0, 20)
	sendSeq(t, p, 0, sent[:15])

	latest := mustConsumer(t, l, "s", &ConsumerOptions{Start: Latest})
	if pos := latest.Position(0); pos != 15 {
		t.Errorf("Latest consumer at %d, want 15", pos)
	}
	if recs, err := latest.TryPoll(); len(recs) != 0 || err != nil {
		t.Errorf("Latest consumer read %d old records, %v", len(recs), err)
	}
	sendSeq(t, p, 15, sent[15:])
	if diff := cmp.Diff(wantRecs(15, sent[15:]), pollN(t, latest, 5)); diff != "" {
		t.Errorf("Latest consumer (-want +got):\n%s", diff)
	}

	c := mustConsumer(t, l, "s", nil)
	if pos := c.Position(0); pos != 0 {
		t.Errorf("Earliest consumer at %d", pos)
	}
	if got := pollN(t, c, 20); len(got) != 20 || c.Position(0) != 20 {
		t.Errorf("read %d records, position %d; want 20, 20", len(got), c.Position(0))
	}
	if pos := c.Position(7); pos != -1 {
		t.Errorf("Position of a partition not read: %d, want -1", pos)
	}
	seeks := []struct {
		to   StartPosition
		want int64
	}{
		{AtOffset(12), 12},
		{Earliest, 0},
		{AtOffset(19), 19},
		{AtTime(sent[7].Time), 7},
		{AtTime(sent[7].Time.Add(time.Millisecond)), 8},
		{AtOffset(3), 3},
	}
	for _, s := range seeks {
		if err := c.Seek(0, s.to); err != nil {
			t.Fatalf("Seek(%+v): %v", s.to, err)
		}
		if pos := c.Position(0); pos != s.want {
			t.Errorf("Seek(%+v): position %d, want %d", s.to, pos, s.want)
		}
		if diff := cmp.Diff(wantRecs(s.want, sent[s.want:]), pollN(t, c, 20-int(s.want))); diff != "" {
			t.Errorf("after Seek(%+v) (-want +got):\n%s", s.to, diff)
		}
	}
	if err := c.Seek(0, Latest); err != nil || c.Position(0) != 20 {
		t.Errorf("Seek(Latest): %v, position %d", err, c.Position(0))
	}
	if err := c.Seek(1, Earliest); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Seek on a partition not read: %v, want ErrInvalidArgument", err)
	}
	if err := c.Seek(0, AtOffset(21)); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Seek past the end: %v, want ErrOutOfRange", err)
	}
}

func TestConsumerPartitions(t *testing.T) {
	const parts, n = 4, 400
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "mp", TopicConfig{Partitions: parts})
	p := mustProducer(t, l, "mp", nil)
	where := map[string]int{} // value -> partition
	for i := range n {
		pos, err := p.Send(context.Background(), Record{Key: fmt.Appendf(nil, "k%d", i%37), Value: fmt.Appendf(nil, "v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		where[fmt.Sprintf("v%d", i)] = pos.Partition
	}

	tests := []struct {
		name  string
		parts []int
	}{
		{"all", nil},
		{"subset", []int{3, 1}},
		{"one", []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustConsumer(t, l, "mp", &ConsumerOptions{Partitions: tt.parts})
			want := tt.parts
			if want == nil {
				want = []int{0, 1, 2, 3}
			}
			want = slices.Sorted(slices.Values(want))
			if diff := cmp.Diff(want, c.Partitions()); diff != "" {
				t.Errorf("Partitions (-want +got):\n%s", diff)
			}
			wantN := 0
			for _, part := range where {
				if slices.Contains(want, part) {
					wantN++
				}
			}
			got := pollN(t, c, wantN)
			next := map[int]int64{}
			for _, r := range got {
				if where[r.Val] != r.Part || !slices.Contains(want, r.Part) {
					t.Errorf("%s read from partition %d, sent to %d", r.Val, r.Part, where[r.Val])
				}
				if r.Off != next[r.Part] {
					t.Errorf("partition %d: offset %d after %d", r.Part, r.Off, next[r.Part]-1)
				}
				next[r.Part] = r.Off + 1
			}
			if len(got) != wantN || len(next) != len(want) {
				t.Errorf("read %d records from %d partitions, want %d from %d", len(got), len(next), wantN, len(want))
			}
			if recs, err := c.TryPoll(); len(recs) != 0 || err != nil {
				t.Errorf("extra records: %d, %v", len(recs), err)
			}
			for part := range parts {
				if pos := c.Position(part); slices.Contains(want, part) != (pos >= 0) {
					t.Errorf("Position(%d) = %d", part, pos)
				}
			}
		})
	}

	for _, bad := range [][]int{{}, {-1}, {parts}, {0, 0}, {1, 100}} {
		if _, err := l.Consumer("mp", &ConsumerOptions{Partitions: bad}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Consumer of partitions %v: %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := l.Consumer("mp", &ConsumerOptions{MaxPollBytes: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative MaxPollBytes: %v, want ErrInvalidArgument", err)
	}
	if _, err := l.Consumer("nope", nil); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Consumer of an unknown topic: %v, want ErrTopicNotFound", err)
	}
}

func TestLogCloseWakesPoll(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	c, err := l.Consumer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Poll(context.Background())
		done <- err
	}()
	// Close while Poll is asleep, not before.
	waitFor(t, patience, "Poll to fall asleep", func() bool { return c.metas[1].sleeping.count().Load() > 0 })
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Poll after Log.Close: %v, want ErrClosed", err)
		}
	case <-time.After(patience):
		t.Fatalf("Poll still asleep %v after Log.Close", patience)
	}
}

// TestConsumerAtTailListsRarely: a consumer that reads each record as it
// is appended, and finds nothing more before it sleeps, does not list the
// partition's directory each time to learn whether its segment is still
// the last: the fill that read up to the end saw the appends land in it.
// (Listing once per record took about a tenth of a consumer's CPU in
// BenchmarkCrossProcessLatency.)
func TestConsumerAtTailListsRarely(t *testing.T) {
	t.Run("zeros", func(t *testing.T) { consumerAtTailLists(t) })
	t.Run("no zeros", func(t *testing.T) {
		// The file ends where its data does, as with the io_uring
		// backend, or a writer whose fallocate fails.
		extendFileFn = func(fd int, off, n int64) error { return syscall.ENOSPC }
		t.Cleanup(func() { extendFileFn = extendFile })
		consumerAtTailLists(t)
	})
}

func consumerAtTailLists(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "tail", TopicConfig{Partitions: 1})
	p, err := l.Producer("tail", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := mustConsumer(t, l, "tail", nil)
	var lists atomic.Int32
	testHookLaterSegment = func() { lists.Add(1) }
	t.Cleanup(func() { testHookLaterSegment = nil })
	const rounds = 20
	for round := range rounds {
		if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		if recs, err := c.TryPoll(); err != nil || len(recs) != 1 {
			t.Fatalf("round %d: TryPoll after a Send: %d records, %v", round, len(recs), err)
		}
		if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
			t.Fatalf("round %d: TryPoll at the end: %d records, %v", round, len(recs), err)
		}
	}
	if n := lists.Load(); n > 2 {
		t.Errorf("the directory was listed %d times in %d rounds of a record and a look at the end; want once to begin with", n, rounds)
	}
}
