package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// delrecTopic makes topic of two partitions holding 10 records each,
// "p<partition>-<offset>".
func delrecTopic(t *testing.T, ts *testServer, topic string) {
	t.Helper()
	ts.createTopic(topic, 2)
	var recs []runnel.Record
	for p := range 2 {
		for i := range 10 {
			recs = append(recs, runnel.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	produceNative(t, ts.log, topic, recs)
}

// TestDeleteRecordsKadm: kadm's DeleteRecords moves the start of one
// partition to 6 and of the other to its end (-1); the low watermarks
// say so, ListOffsets' earliest answers them, a franz-go consumer from
// the earliest begins there, and fetches report the start.
func TestDeleteRecordsKadm(t *testing.T) {
	ts := startServer(t, nil)
	delrecTopic(t, ts, "dr")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 6})
	os.Add(kadm.Offset{Topic: "dr", Partition: 1, At: -1})
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 6, 1: 10} {
		if r, ok := resps.Lookup("dr", p); !ok || r.Err != nil || r.LowWatermark != want {
			t.Errorf("DeleteRecords of dr/%d: %+v, want low watermark %d", p, r, want)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 6, 1: 10} {
		if o, ok := starts.Lookup("dr", p); !ok || o.Err != nil || o.Offset != want {
			t.Errorf("ListOffsets earliest of dr/%d: %+v, want %d", p, o, want)
		}
	}
	produceNative(t, ts.log, "dr", []runnel.Record{{Partition: 1, Value: []byte("p1-10")}})
	cl := ts.client(kgo.ConsumeTopics("dr"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[int32][]int64{}
	for len(got[0]) < 4 || len(got[1]) < 1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v", got)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch error for %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r.Offset) })
	}
	if got[0][0] != 6 || got[1][0] != 10 {
		t.Errorf("a consumer from the earliest read %v, want dr/0 from 6 and dr/1 from 10", got)
	}
	rc := ts.raw()
	if rp := fetchOne(t, rc, "dr", 0, 6, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 6 {
		t.Errorf("fetch at the start: %v, log start %d; want no error and 6", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
	if rp := fetchOne(t, rc, "dr", 0, 2, 1<<20); rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 6 || len(fetchedValues(t, rp)) != 0 {
		t.Errorf("fetch below the start: %v, log start %d, %d records; want OFFSET_OUT_OF_RANGE, 6 and none",
			kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset, len(fetchedValues(t, rp)))
	}
}

// delrecEntry is one partition of a DeleteRecords request.
type delrecEntry struct {
	topic     string
	partition int32
	offset    int64
}

// delrecRequest is a DeleteRecords request of the entries, each in a topic
// entry of its own.
func delrecRequest(timeoutMillis int32, entries ...delrecEntry) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = timeoutMillis
	for _, e := range entries {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = e.topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = e.partition, e.offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// TestDeleteRecordsErrors: Kafka's per-partition answers, in one request:
// past the high watermark OFFSET_OUT_OF_RANGE, below -1 too, an unknown
// topic or partition UNKNOWN_TOPIC_OR_PARTITION, below the start the start
// as it is; a partition whose writer lock another Log keeps past the
// request's timeout REQUEST_TIMED_OUT.
func TestDeleteRecordsErrors(t *testing.T) {
	ts := startServer(t, nil)
	delrecTopic(t, ts, "dr")
	if _, err := ts.log.DeleteRecords(context.Background(), "dr", 1, 4); err != nil {
		t.Fatal(err)
	}
	req := delrecRequest(30000, delrecEntry{"dr", 0, 11}, delrecEntry{"dr", 0, -2}, delrecEntry{"dr", 5, 1},
		delrecEntry{"missing", 0, 1}, delrecEntry{"dr", 1, 2})
	type answer struct {
		code int16
		low  int64
	}
	want := []answer{
		{kerr.OffsetOutOfRange.Code, -1},
		{kerr.OffsetOutOfRange.Code, -1},
		{kerr.UnknownTopicOrPartition.Code, -1},
		{kerr.UnknownTopicOrPartition.Code, -1},
		{0, 4},
	}
	for _, v := range []int16{0, 1, 2} {
		req.Version = v
		resp := ts.raw().request(req).(*kmsg.DeleteRecordsResponse)
		for i, rt := range resp.Topics {
			rp := rt.Partitions[0]
			if got := (answer{rp.ErrorCode, rp.LowWatermark}); i >= len(want) || got != want[i] {
				t.Errorf("v%d: %s/%d: %v low %d, want %+v", v, rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode), rp.LowWatermark, want[i])
			}
		}
		if len(resp.Topics) != len(want) {
			t.Errorf("v%d: %d answers, want %d", v, len(resp.Topics), len(want))
		}
	}
	if start, end, err := ts.log.PartitionOffsets("dr", 0); err != nil || start != 0 || end != 10 {
		t.Errorf("dr/0 after the refusals: [%d, %d) %v; want [0, 10)", start, end, err)
	}

	// Another Log holds dr/0's writer lock (as a process stopped inside
	// an append would: its batch's note runs under the lock): the request
	// ends at its timeout, the start where it was.
	other, err := runnel.Open(ts.log.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	prod, err := other.Producer("dr", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var b runnel.RecordBatch
	if err := b.Add(runnel.Record{Value: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	held, release, stored := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	prod.SendRecordBatchAsyncNoted(0, &b, func(int64) {
		close(held)
		<-release
	}, nil, func(_ int64, err error) { stored <- err })
	<-held
	timed := delrecRequest(200, delrecEntry{"dr", 0, 5})
	code := ts.raw().request(timed).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode
	close(release)
	if code != kerr.RequestTimedOut.Code {
		t.Errorf("DeleteRecords behind another holder of the writer lock: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	if start, _, err := ts.log.PartitionOffsets("dr", 0); err != nil || start != 0 {
		t.Errorf("dr/0 after the timed-out request starts at %d (%v), want 0", start, err)
	}
}

// TestDeleteRecordsGroupResets: a group committed at 3, then kadm deletes
// the records below 6: the group's franz-go consumer (the default
// auto.offset.reset, earliest) fetches at 3, gets OFFSET_OUT_OF_RANGE,
// resets to the start and reads from 6, with no error for the
// application.
func TestDeleteRecordsGroupResets(t *testing.T) {
	ts := startServer(t, fastGroups)
	delrecTopic(t, ts, "dg")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	if _, err := adm.CommitOffsets(ctx, "dgg", kadm.Offsets{"dg": {0: {Topic: "dg", Partition: 0, At: 3}, 1: {Topic: "dg", Partition: 1, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "dg", Partition: 0, At: 6})
	if resps, err := adm.DeleteRecords(ctx, os); err != nil || resps.Error() != nil {
		t.Fatalf("DeleteRecords: %v, %v", err, resps.Error())
	}
	cl := ts.client(groupOpts("dgg", "dg")...)
	first := map[int32]int64{}
	for n := 0; n < 4+7; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records", n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch error for %s/%d: %v (want a silent reset to the log start)", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
			n++
		})
	}
	if first[0] != 6 || first[1] != 3 {
		t.Errorf("the group read dg/0 from %d and dg/1 from %d, want 6 and 3", first[0], first[1])
	}
}
