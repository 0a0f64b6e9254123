package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pollN consumes n records with cl, failing the test after a generous
// bound.
func pollN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// produceNative stores records with the Go API, one per partition in
// turn, and returns them as stored.
func produceNative(t *testing.T, l *runnel.Log, topic string, recs []runnel.Record) []runnel.Record {
	t.Helper()
	p, err := l.Producer(topic, &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []runnel.Record
	for _, r := range recs {
		pos, err := p.Send(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		r.Partition, r.Offset = pos.Partition, pos.Offset
		out = append(out, r)
	}
	return out
}

// fromKafka is what the Go API's record looks like after a trip through
// a Kafka client: timestamps in milliseconds.
func fromKafka(r *kgo.Record) runnel.Record {
	return asNative(r)
}

func nativeSample(n int) []runnel.Record {
	base := time.Unix(1_700_000_000, 123_456_789)
	var recs []runnel.Record
	for i := range n {
		r := runnel.Record{Time: base.Add(time.Duration(i) * time.Millisecond)}
		switch i % 3 {
		case 0:
			r.Key, r.Value = []byte(fmt.Sprint(i)), []byte("value")
		case 1:
			r.Key, r.Value = nil, []byte{}
			r.Headers = []runnel.Header{{Key: "a", Value: []byte("1")}, {Key: "n", Value: nil}, {Key: "e", Value: []byte{}}}
		case 2:
			r.Key, r.Value = []byte{}, nil
		}
		recs = append(recs, r)
	}
	return recs
}

func TestNativeRecordsReachKafkaUnchanged(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("native", 1)
	want := produceNative(t, ts.log, "native", nativeSample(30))
	for i := range want {
		// Kafka carries milliseconds.
		want[i].Time = time.UnixMilli(want[i].Time.UnixMilli())
	}
	cl := ts.client(kgo.ConsumeTopics("native"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []runnel.Record
	for _, r := range pollN(t, cl, len(want)) {
		got = append(got, fromKafka(r))
	}
	if diff := cmp.Diff(want, got, nilAware, timeEqual); diff != "" {
		t.Errorf("records read over Kafka differ (-want +got):\n%s", diff)
	}
}

func TestConsumeFromEarliestLatestAndTime(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("c", 3)
	first := produceNative(t, ts.log, "c", []runnel.Record{
		{Value: []byte("p0-a"), Partition: 0, Time: time.UnixMilli(1000)},
		{Value: []byte("p1-a"), Partition: 1, Time: time.UnixMilli(2000)},
		{Value: []byte("p2-a"), Partition: 2, Time: time.UnixMilli(3000)},
		{Value: []byte("p0-b"), Partition: 0, Time: time.UnixMilli(4000)},
	})

	t.Run("earliest", func(t *testing.T) {
		cl := ts.client(kgo.ConsumeTopics("c"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if got := pollN(t, cl, len(first)); len(got) != len(first) {
			t.Fatalf("got %d records, want %d", len(got), len(first))
		}
	})
	t.Run("time", func(t *testing.T) {
		cl := ts.client(kgo.ConsumeTopics("c"), kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(2500)))
		got := pollN(t, cl, 2)
		values := map[string]bool{}
		for _, r := range got {
			values[string(r.Value)] = true
		}
		if !values["p2-a"] || !values["p0-b"] || len(got) != 2 {
			t.Fatalf("from time 2500ms got %v, want p2-a and p0-b", values)
		}
	})
	t.Run("latest", func(t *testing.T) {
		cl := ts.client(kgo.ConsumeTopics("c"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
		// The client lists the end offsets before it fetches; records
		// produced once it is fetching are the ones it must see.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if fs := cl.PollFetches(ctx); len(fs.Records()) > 0 {
			t.Fatalf("from latest got old records: %v", fs.Records())
		}
		cancel()
		produceNative(t, ts.log, "c", []runnel.Record{{Value: []byte("new"), Partition: 1}})
		got := pollN(t, cl, 1)
		if string(got[0].Value) != "new" || got[0].Offset != 1 || got[0].Partition != 1 {
			t.Fatalf("from latest got %q at %d/%d, want \"new\" at 1/1", got[0].Value, got[0].Partition, got[0].Offset)
		}
	})
}

// TestFetchWaitsForAppends checks long polling: a consumer at the end is
// woken by an append, within its max wait.
func TestFetchWaitsForAppends(t *testing.T) {
	// The server's own Log appends, then another Log on the directory (a
	// process of its own, as far as the files can tell): runnel's
	// cross-process wake-up ends the wait, not the minute of MaxWait.
	for _, byOther := range []bool{false, true} {
		ts := startServer(t, nil)
		ts.createTopic("w", 1)
		appender := ts.log
		if byOther {
			other, err := runnel.Open(ts.log.Dir(), &runnel.Options{Durability: runnel.Buffered})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			appender = other
		}
		cl := ts.client(kgo.ConsumeTopics("w"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Minute))
		got := make(chan []*kgo.Record, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var recs []*kgo.Record
			for len(recs) == 0 && ctx.Err() == nil {
				recs = cl.PollFetches(ctx).Records()
			}
			got <- recs
		}()
		waitFor(t, "a fetch to wait", func() bool { return ts.srv.waitingFetches.Load() > 0 })
		produceNative(t, appender, "w", []runnel.Record{{Value: []byte("wake")}})
		select {
		case recs := <-got:
			if len(recs) == 0 || string(recs[0].Value) != "wake" {
				t.Fatalf("appended by another Log %v: got %v", byOther, recs)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("a waiting fetch was not woken by an append (by another Log: %v)", byOther)
		}
	}
}

// fetched is one record of a raw fetch response.
type fetched struct {
	Offset int64
	Value  string
}

// rawFetch sends one sessionless fetch of topic at the given offsets and
// returns each partition's records, decoded from its record batch.
func rawFetch(t *testing.T, rc *rawConn, topic string, offsets map[int32]int64, partMax, minBytes, maxWaitMs int32) map[int32][]fetched {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, minBytes, maxWaitMs
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for p, off := range offsets {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := rc.request(req).(*kmsg.FetchResponse)
	out := map[int32][]fetched{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
			}
			if len(rp.RecordBatches) == 0 {
				continue
			}
			base := int64(binary.BigEndian.Uint64(rp.RecordBatches))
			_, recs, err := readAll(rp.RecordBatches, 1<<30, time.Now())
			if err != nil {
				t.Fatalf("partition %d: %v", rp.Partition, err)
			}
			for i, r := range recs {
				out[rp.Partition] = append(out[rp.Partition], fetched{base + int64(i), string(r.Value)})
			}
		}
	}
	return out
}

// TestFetchInSmallPieces reads frames of many records through fetches
// that hold a few each: every fetch continues exactly where the last one
// ended, from the records the server kept, whether the client goes on,
// goes back, or waits for more than is there.
func TestFetchInSmallPieces(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("pieces", 2)
	p, err := ts.log.Producer("pieces", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	const perPartition = 600
	value := func(p, i int) string { return fmt.Sprintf("p%d-%04d-%s", p, i, strings.Repeat("x", 90)) }
	for part := range 2 {
		for first := 0; first < perPartition; first += 300 { // two frames of 300 records
			var recs []runnel.Record
			for i := first; i < first+300; i++ {
				recs = append(recs, runnel.Record{Value: []byte(value(part, i))})
			}
			if _, err := p.SendBatch(context.Background(), part, recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc := ts.raw()
	next := map[int32]int64{0: 0, 1: 0}
	check := func(step string, got map[int32][]fetched) {
		t.Helper()
		for part, recs := range got {
			for _, r := range recs {
				if want := value(int(part), int(next[part])); r.Offset != next[part] || r.Value != want {
					t.Fatalf("%s: partition %d: record %d %.12q…, want %d %.12q…", step, part, r.Offset, r.Value, next[part], want)
				}
				next[part]++
			}
		}
	}
	for step := 0; next[0] < perPartition || next[1] < perPartition; step++ {
		switch {
		case step == 5:
			// Back to an earlier offset of partition 0.
			next[0] -= 17
		case step == 9:
			// Partition 1 at its end and more bytes wanted than exist:
			// the fetch waits, and must not lose partition 0's place.
			at := next[1]
			next[1] = perPartition
			check(fmt.Sprintf("step %d", step), rawFetch(t, rc, "pieces", map[int32]int64{0: next[0], 1: next[1]}, 1000, 1<<20, 50))
			next[1] = at
			continue
		}
		offsets := map[int32]int64{}
		for part, off := range next {
			if off < perPartition {
				offsets[part] = off
			}
		}
		got := rawFetch(t, rc, "pieces", offsets, 1000, 1, 100)
		if len(got) == 0 {
			t.Fatalf("step %d: nothing fetched at %v", step, offsets)
		}
		check(fmt.Sprintf("step %d", step), got)
		if step > 10*perPartition {
			t.Fatal("no end in sight")
		}
	}
}

// TestFetchBoundedByServer: a fetch that asks for 1 GiB gets at most
// Options.MaxFetchBytes of record batches over all its partitions, and
// the next fetches continue where it stopped; one whose first record is
// larger than the bound still gets that record. Each fetch also asks for
// at least 1 GiB, waiting up to ten minutes: a full response is answered
// at once all the same.
func TestFetchBoundedByServer(t *testing.T) {
	const bound = 64 << 10
	ts := startServer(t, &Options{MaxFetchBytes: bound})
	ts.createTopic("big", 2)
	p, err := ts.log.Producer("big", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 1000)
	const perPartition = 200 // 200 KB a partition: more than the bound
	for part := range 2 {
		recs := make([]runnel.Record, perPartition)
		for i := range recs {
			recs[i] = runnel.Record{Value: []byte(value)}
		}
		if _, err := p.SendBatch(context.Background(), part, recs); err != nil {
			t.Fatal(err)
		}
	}
	huge := runnel.Record{Value: bytes.Repeat([]byte("h"), 2*bound)}
	if _, err := p.SendBatch(context.Background(), 0, []runnel.Record{huge}); err != nil {
		t.Fatal(err)
	}

	rc := ts.raw()
	fetch := func(offsets map[int32]int64) (int, map[int32]int64) {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 1<<30, 1<<30, 600_000
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "big"
		for part, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, off, 1<<30
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		// A fetch that waits fails the raw connection's 30 s read.
		resp := rc.request(req).(*kmsg.FetchResponse)
		size, got := 0, map[int32]int64{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
				}
				size += len(rp.RecordBatches)
				if len(rp.RecordBatches) > 0 {
					_, recs, err := readAll(rp.RecordBatches, 1<<30, time.Now())
					if err != nil {
						t.Fatal(err)
					}
					got[rp.Partition] = int64(len(recs))
				}
			}
		}
		return size, got
	}
	next := map[int32]int64{0: 0, 1: 0}
	for fetches := 0; next[0] < perPartition || next[1] < perPartition; fetches++ {
		if fetches > 100 {
			t.Fatalf("100 fetches and at offsets %v", next)
		}
		size, got := fetch(next)
		// The bound, plus one record and its batch's header.
		if size == 0 || size > bound+len(value)+200 {
			t.Fatalf("a fetch of 1 GiB at %v carried %d bytes; want some, and at most about %d", next, size, bound)
		}
		for part, n := range got {
			next[part] += n
		}
	}
	if size, got := fetch(map[int32]int64{0: perPartition}); got[0] != 1 || size < len(huge.Value) {
		t.Fatalf("the record larger than the bound: %d records, %d bytes; want it alone", got[0], size)
	}
}

// TestFetchBuffersKeptBounded: the buffers a connection keeps between
// fetches stay within maxKeptFetchBuffers however the slots fill, and a
// slot given back a small buffer frees its large one.
func TestFetchBuffersKeptBounded(t *testing.T) {
	var fs fetchSession
	total := func() int {
		n := 0
		for _, b := range fs.bufs {
			n += cap(b)
		}
		return n
	}
	// A client that puts its one large partition at a new position in
	// every fetch.
	for fetch := range 32 {
		fs.used = 0
		for slot := range 32 {
			b := fs.buffer()
			if slot == fetch {
				b = append(b, make([]byte, maxKeptBuffer)...)
			}
			fs.keep(slot, b)
		}
		if n := total(); n != fs.kept || n > maxKeptFetchBuffers {
			t.Fatalf("after fetch %d: %d bytes kept, counted %d; want at most %d", fetch, n, fs.kept, maxKeptFetchBuffers)
		}
	}
	if fs.kept < maxKeptFetchBuffers/2 {
		t.Fatalf("%d bytes kept: the buffers are not reused at all", fs.kept)
	}
	fs.used = 0
	for slot := range 32 {
		fs.keep(slot, make([]byte, 0, 16))
	}
	if fs.kept != 32*16 || total() != fs.kept {
		t.Fatalf("small buffers given back: %d kept, counted %d; want %d", total(), fs.kept, 32*16)
	}
}

// TestFetchHoldsMoreThanOnePoll: a fetch gets every record there is up to
// its partition's limit, not one consumer poll's worth (MaxPollRecords,
// 500), also when it asks for one byte and no wait, as a client reading
// a backlog with a 1 MiB limit does. Two partitions of one topic, read
// by one consumer, both come whole.
func TestFetchHoldsMoreThanOnePoll(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("backlog", 2)
	p, err := ts.log.Producer("backlog", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	const perPartition = 2000
	for part := range 2 {
		var recs []runnel.Record
		for i := range perPartition {
			recs = append(recs, runnel.Record{Value: fmt.Appendf(nil, "%d-%d", part, i)})
		}
		if _, err := p.SendBatch(context.Background(), part, recs); err != nil {
			t.Fatal(err)
		}
	}
	got := rawFetch(t, ts.raw(), "backlog", map[int32]int64{0: 0, 1: 0}, 1<<20, 1, 0)
	for part := range int32(2) {
		if len(got[part]) != perPartition {
			t.Fatalf("partition %d: %d records in one fetch, want all %d", part, len(got[part]), perPartition)
		}
		for i, r := range got[part] {
			if want := fmt.Sprintf("%d-%d", part, i); r.Offset != int64(i) || r.Value != want {
				t.Fatalf("partition %d: record %d is %d %q, want %d %q", part, i, r.Offset, r.Value, i, want)
			}
		}
	}
}
