package kafka

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDeleteRecordsManyTopics: one kadm request over three topics of four
// partitions each, at various offsets (-1 among them), and an
// offset past the end after; a partition named twice in one raw request.
func TestDeleteRecordsManyTopics(t *testing.T) {
	ts := startServer(t, nil)
	for _, topic := range []string{"m0", "m1", "m2"} {
		ts.createTopic(topic, 4)
		var recs []runnel.Record
		for p := range 4 {
			for i := range 10 {
				recs = append(recs, runnel.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
			}
		}
		produceNative(t, ts.log, topic, recs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	var os kadm.Offsets
	want := map[string]map[int32]int64{}
	for ti, topic := range []string{"m0", "m1", "m2"} {
		want[topic] = map[int32]int64{}
		for p := range int32(4) {
			at := int64(ti+int(p)) % 11
			if p == 3 {
				at = -1
			}
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
			want[topic][p] = at
			if at == -1 {
				want[topic][p] = 10
			}
		}
	}
	// An unknown partition or topic never reaches the server through
	// kadm: franz-go finds no leader for it in the metadata and fails its
	// shard (kadm answers the others); TestDeleteRecordsErrors sends them.
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	for topic, ps := range want {
		for p, w := range ps {
			if r, ok := resps.Lookup(topic, p); !ok || r.Err != nil || r.LowWatermark != w {
				t.Errorf("%s/%d: %+v, want low watermark %d", topic, p, r, w)
			}
			if start, _, err := ts.log.PartitionOffsets(topic, int(p)); err != nil || start != w {
				t.Errorf("%s/%d starts at %d (%v), want %d", topic, p, start, err, w)
			}
		}
	}
	var past kadm.Offsets
	past.Add(kadm.Offset{Topic: "m1", Partition: 0, At: 11})
	resps, err = adm.DeleteRecords(ctx, past)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.Lookup("m1", 0); r.Err != kerr.OffsetOutOfRange {
		t.Errorf("past the end: %+v, want OFFSET_OUT_OF_RANGE", r)
	}

	// A partition named twice in one request: each entry answered, in order.
	dup := delrecRequest(30000, delrecEntry{"m2", 0, 5}, delrecEntry{"m2", 0, 3})
	resp := ts.raw().request(dup).(*kmsg.DeleteRecordsResponse)
	var got []string
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			got = append(got, fmt.Sprintf("%s/%d:%v:%d", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode), rp.LowWatermark))
		}
	}
	t.Logf("partition named twice: %v", got)
	if start, _, _ := ts.log.PartitionOffsets("m2", 0); start != 5 {
		t.Errorf("m2/0 after DeleteRecords 5 then 3 starts at %d, want 5", start)
	}
}

// TestDeleteRecordsListOffsetsAndSizes: after DeleteRecords, ListOffsets
// by a timestamp before every record answers the start, and
// DescribeLogDirs' sizes are DescribeTopic's.
func TestDeleteRecordsListOffsetsAndSizes(t *testing.T) {
	ts := startServer(t, nil)
	if err := ts.log.CreateTopic("lo", runnel.TopicConfig{Partitions: 1, SegmentBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	var recs []runnel.Record
	for i := range 2000 {
		recs = append(recs, runnel.Record{Value: make([]byte, 1000), Time: time.UnixMilli(int64(1000000 + i))})
	}
	produceNative(t, ts.log, "lo", recs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	before, _ := ts.log.DescribeTopic("lo")
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "lo", Partition: 0, At: 1500})
	if r, err := adm.DeleteRecords(ctx, os); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	for _, ms := range []int64{0, 1000000, 1000100} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, ms, "lo")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup("lo", 0); o.Err != nil || o.Offset != 1500 {
			t.Errorf("ListOffsets by timestamp %d: %+v, want 1500", ms, o)
		}
	}
	if lo, err := adm.ListOffsetsAfterMilli(ctx, 1001600, "lo"); err != nil {
		t.Fatal(err)
	} else if o, _ := lo.Lookup("lo", 0); o.Err != nil || o.Offset != 1600 {
		t.Errorf("ListOffsets by timestamp 1001600: %+v, want 1600", o)
	}
	info, _ := ts.log.DescribeTopic("lo")
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := all[0][ts.log.Dir()].Topics.Lookup("lo", 0)
	t.Logf("sizes: before %d, after %d, log dirs %d", before.Partitions[0].Bytes, info.Partitions[0].Bytes, p.Size)
	if p.Size != info.Partitions[0].Bytes || p.Size >= before.Partitions[0].Bytes {
		t.Errorf("size after deletion %d, DescribeTopic %d, before %d", p.Size, info.Partitions[0].Bytes, before.Partitions[0].Bytes)
	}
}

// delrecStarts holds, per partition, the highest start a DeleteRecords
// returned.
type delrecStarts [4]atomic.Int64

func (s *delrecStarts) raise(p int, start int64) {
	for {
		old := s[p].Load()
		if start <= old || s[p].CompareAndSwap(old, start) {
			return
		}
	}
}

// snapshot is the starts as they are now.
func (s *delrecStarts) snapshot() [4]int64 {
	var out [4]int64
	for p := range s {
		out[p] = s[p].Load()
	}
	return out
}

// offsetOfValue is the offset written in a value "p<p>-<offset>".
func offsetOfValue(t *testing.T, v string) int64 {
	_, o, _ := strings.Cut(v, "-")
	n, err := strconv.ParseInt(o, 10, 64)
	if err != nil {
		t.Fatalf("value %q", v)
	}
	return n
}

// TestDeleteRecordsWhileFetching: a producer appends, a goroutine deletes
// records repeatedly, and a raw fetcher (small partition limits, so the
// connection reads ahead) and a franz-go group consumer read on: the raw
// fetcher never gets a record below a start a DeleteRecords returned
// before its fetch was sent, and both keep going, resetting.
func TestDeleteRecordsWhileFetching(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("wf", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var next [4]int64
	produce := func(n int) {
		var recs []runnel.Record
		for p := range 4 {
			for range n {
				recs = append(recs, runnel.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, next[p]))})
				next[p]++
			}
		}
		produceNative(t, ts.log, "wf", recs)
	}
	produce(200)
	var starts delrecStarts
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var deletes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		adm := kadm.NewClient(ts.client())
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var os kadm.Offsets
			for p := range int32(4) {
				at := min(i*7, starts[p].Load()+int64(p+1)*3)
				if i%10 == 0 {
					at = -1 // the high watermark: every reader behind it resets
				}
				os.Add(kadm.Offset{Topic: "wf", Partition: p, At: at})
			}
			resps, err := adm.DeleteRecords(ctx, os)
			if err != nil {
				t.Errorf("DeleteRecords: %v", err)
				return
			}
			resps.Each(func(r kadm.DeleteRecordsResponse) {
				if r.Err == nil {
					starts.raise(int(r.Partition), r.LowWatermark)
				} else if r.Err != kerr.OffsetOutOfRange {
					t.Errorf("DeleteRecords %s/%d: %v", r.Topic, r.Partition, r.Err)
				}
			})
			deletes.Add(1)
		}
	}()

	// A group consumer and a plain one, both fetching little at a time
	// (so they fall behind the deletions and reset).
	readers := map[string]*kgoReader{"group": {}, "plain": {}}
	for name, opts := range map[string][]kgo.Opt{
		// A session far longer than groupOpts' 1.5 s: on a loaded
		// machine (load 6 on 2 CPUs) a heartbeat came too late once,
		// and this test is not about sessions.
		"group": append(groupOpts("wfg", "wf"), kgo.SessionTimeout(30*time.Second)),
		"plain": {kgo.ConsumeTopics("wf"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())},
	} {
		cl := ts.client(append(opts, kgo.FetchMaxPartitionBytes(200))...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			readers[name].read(ctx, t, name, cl, &starts, stop)
		}()
	}

	// The raw fetcher, on one connection.
	rc := ts.raw()
	var pos [4]int64
	var rawRead, resets int64
	enough := func() bool {
		for _, r := range readers {
			if r.records.Load() < 1000 || r.jumps.Load() < 5 {
				return false
			}
		}
		return rawRead >= 5000 && resets >= 5 && deletes.Load() >= 50
	}
	for round := 0; !enough(); round++ {
		if ctx.Err() != nil {
			t.Fatalf("raw fetcher read %d records, %d resets, %d deletes; group %d records, %d jumps; plain %d records, %d jumps",
				rawRead, resets, deletes.Load(), readers["group"].records.Load(), readers["group"].jumps.Load(),
				readers["plain"].records.Load(), readers["plain"].jumps.Load())
		}
		if round%4 == 0 {
			produce(20)
		}
		floor := starts.snapshot()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, 0, 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "wf"
		for p := range int32(4) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = p, pos[p], int32(1+round%3*40), -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := rc.request(req).(*kmsg.FetchResponse)
		for _, rp := range resp.Topics[0].Partitions {
			p := rp.Partition
			switch rp.ErrorCode {
			case 0:
				for _, v := range fetchedValues(t, rp) {
					o := offsetOfValue(t, v)
					if o < floor[p] {
						t.Fatalf("raw fetch of wf/%d at %d returned record %d, below start %d a DeleteRecords returned before", p, pos[p], o, floor[p])
					}
					if o != pos[p] {
						t.Fatalf("raw fetch of wf/%d: record %d, want %d", p, o, pos[p])
					}
					pos[p]++
					rawRead++
				}
			case kerr.OffsetOutOfRange.Code:
				if rp.LogStartOffset <= pos[p] {
					t.Fatalf("wf/%d at %d: OFFSET_OUT_OF_RANGE with log start %d", p, pos[p], rp.LogStartOffset)
				}
				pos[p] = rp.LogStartOffset
				resets++
			default:
				t.Fatalf("raw fetch of wf/%d: %v", p, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("raw: %d records, %d resets; %d deletes", rawRead, resets, deletes.Load())
	for name, r := range readers {
		t.Logf("%s: %d records, %d jumps, %d errors", name, r.records.Load(), r.jumps.Load(), r.errs.Load())
	}
}

// kgoReader counts what a franz-go consumer read.
type kgoReader struct {
	records, jumps, errs atomic.Int64
}

// read polls cl until stop, checking each record against the starts
// DeleteRecords returned.
func (kr *kgoReader) read(ctx context.Context, t *testing.T, name string, cl *kgo.Client, starts *delrecStarts, stop chan struct{}) {
	last := map[int32]int64{}
	// franz-go buffers one fetch response per broker and sends the next
	// fetch once a poll took it: records a poll returns came from a fetch
	// sent after the last poll that returned records began, so the
	// starts known then are a floor for them.
	var floor [4]int64
	for {
		select {
		case <-stop:
			return
		default:
		}
		nextFloor := starts.snapshot()
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded && err != context.Canceled {
				kr.errs.Add(1)
				t.Errorf("%s: fetch error %s/%d: %v", name, topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if o := offsetOfValue(t, string(r.Value)); o != r.Offset {
				t.Errorf("%s: record at %d holds %q", name, r.Offset, r.Value)
			}
			if l, ok := last[r.Partition]; ok && r.Offset <= l {
				t.Errorf("%s: %d after %d in %d", name, r.Offset, l, r.Partition)
			} else if ok && r.Offset > l+1 {
				kr.jumps.Add(1)
			}
			if r.Offset < floor[r.Partition] {
				t.Errorf("%s: record %d of wf/%d, below start %d a DeleteRecords returned before its fetch was sent", name, r.Offset, r.Partition, floor[r.Partition])
			}
			last[r.Partition] = r.Offset
			kr.records.Add(1)
		})
		if fs.NumRecords() > 0 {
			floor = nextFloor
		}
	}
}
