package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A fetch after an error starts afresh, as each of Kafka's fetches does:
// after OFFSET_OUT_OF_RANGE (the client then resets by its policy) and
// after the topic was deleted and made again under its name.

// fetchOne sends one fetch of one partition of topic at offset, of at
// most partMax bytes, and returns that partition's response.
func fetchOne(t *testing.T, rc *rawConn, topic string, p int32, offset int64, partMax int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, 0, 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = p, offset, partMax, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return rc.request(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

// fetchedValues decodes the values of a partition's fetched records.
func fetchedValues(t *testing.T, rp kmsg.FetchResponseTopicPartition) []string {
	t.Helper()
	if len(rp.RecordBatches) == 0 {
		return nil
	}
	_, recs, err := readAll(rp.RecordBatches, 1<<30, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

// TestFetchAfterOutOfRange: a fetch at an offset the partition does
// not hold gets OFFSET_OUT_OF_RANGE; the client then resets (to the start
// or the end, by its auto.offset.reset) and fetches again, on the same
// connection. In Kafka every fetch stands alone: a fetch at an offset in
// [log start, high watermark] returns its records with no error, whatever
// the connection fetched before. The connection's consumer keeps a failed
// seek's error, and a fetch at the offset it was already at got
// UNKNOWN_SERVER_ERROR.
func TestFetchAfterOutOfRange(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("oor", 1)
	produceNative(t, ts.log, "oor", []runnel.Record{{Value: []byte("a")}, {Value: []byte("b")}})
	rc := ts.raw()
	if rp := fetchOne(t, rc, "oor", 0, 7, 1<<20); rp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(rp.ErrorCode))
	}
	// The client resets to the start, 0, and fetches again.
	rp := fetchOne(t, rc, "oor", 0, 0, 1<<20)
	if got := fetchedValues(t, rp); rp.ErrorCode != 0 || strings.Join(got, ",") != "a,b" {
		t.Fatalf("fetch at 0 after an OFFSET_OUT_OF_RANGE on the connection: %v, records %q; want no error and [a b]",
			kerr.ErrorForCode(rp.ErrorCode), got)
	}
}

// TestGroupResetsBelowLogStart: the most common OFFSET_OUT_OF_RANGE
// in practice. A group's committed offset fell below the log start
// (retention removed the segments); its consumer, with
// auto.offset.reset=earliest, must reset to the log start and go on
// reading, with no error reaching the application. franz-go fetches at the
// committed offset, gets OFFSET_OUT_OF_RANGE, lists the start offset and
// fetches there on the same connection, which got UNKNOWN_SERVER_ERROR
// here (franz-go hands that to the application as a fetch error).
func TestGroupResetsBelowLogStart(t *testing.T) {
	ts := startServer(t, fastGroups)
	start, end := trimmedTopic(t, ts, "gone")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	if _, err := adm.CommitOffsets(ctx, "gonegrp", kadm.Offsets{"gone": {0: {Topic: "gone", Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}

	cl := ts.client(groupOpts("gonegrp", "gone")...)
	var got []*kgo.Record
	for int64(len(got)) < end-start {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of the %d records left", len(got), end-start)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch error for %s/%d: %v (want a silent reset to the log start %d)", topic, p, err, start)
		})
		if t.Failed() {
			t.FailNow()
		}
		got = append(got, fs.Records()...)
	}
	if got[0].Offset != start {
		t.Fatalf("first record read at offset %d, want the log start %d", got[0].Offset, start)
	}
}

// TestFetchAfterTopicRecreated: a topic is deleted and created again
// under the same name while a client fetches it. Kafka never serves the
// deleted topic's records again: a fetch after the deletion gets an error
// (UNKNOWN_TOPIC_OR_PARTITION, or OFFSET_OUT_OF_RANGE in the new topic) or
// the new topic's records. The connection's consumer keeps records it read
// ahead (fetchTopic.rest), and the next fetches at their offsets were
// answered from them: the client read deleted records at offsets that now
// hold other ones.
func TestFetchAfterTopicRecreated(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("again", 1)
	produce := func(tag string) {
		var recs []runnel.Record
		for i := range 10 {
			recs = append(recs, runnel.Record{Value: []byte(fmt.Sprintf("%s-%d", tag, i))})
		}
		produceNative(t, ts.log, "again", recs)
	}
	produce("old")
	rc := ts.raw()
	// A partition limit of one byte: the response holds the first record,
	// and the server keeps the others its consumer read for the next fetch.
	fetch := func(offset int64) kmsg.FetchResponseTopicPartition { return fetchOne(t, rc, "again", 0, offset, 1) }
	if got := fetchedValues(t, fetch(0)); len(got) != 1 || got[0] != "old-0" {
		t.Fatalf("first fetch: %q, want [old-0]", got)
	}
	if err := ts.log.DeleteTopic("again"); err != nil {
		t.Fatal(err)
	}
	ts.createTopic("again", 1)
	produce("new")

	// The client goes on at offset 1, and retries there after an error.
	for range 5 {
		rp := fetch(1)
		got := fetchedValues(t, rp)
		for _, v := range got {
			if strings.HasPrefix(v, "old-") {
				t.Fatalf("a fetch of the re-created topic at offset 1 returned %q, a record of the deleted topic (error %v)", got, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
		if rp.ErrorCode == 0 && len(got) > 0 {
			if got[0] != "new-1" {
				t.Fatalf("fetch at 1: %q, want new-1 first", got)
			}
			return
		}
	}
	t.Fatal("five fetches at offset 1 of the re-created topic returned no records")
}

// trimmedTopic makes topic, of one partition of 400 records of 1 KB in
// 64 KiB segments, and has retention remove all but the last 100 KiB or
// so, which leaves offset 3 below its start; it returns the partition's
// start and end.
func trimmedTopic(t *testing.T, ts *testServer, topic string) (start, end int64) {
	t.Helper()
	if err := ts.log.CreateTopic(topic, runnel.TopicConfig{Partitions: 1, SegmentBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	val := strings.Repeat("x", 1000)
	var recs []runnel.Record
	for i := range 400 {
		recs = append(recs, runnel.Record{Value: []byte(fmt.Sprintf("%04d%s", i, val))})
	}
	produceNative(t, ts.log, topic, recs)
	if err := ts.log.AlterTopic(topic, func(c *runnel.TopicConfig) { c.RetentionBytes = 100 << 10 }); err != nil {
		t.Fatal(err)
	}
	if err := ts.log.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	start, end, err := ts.log.PartitionOffsets(topic, 0)
	if err != nil || start <= 3 {
		t.Fatalf("retention left [%d, %d) (%v); the test needs offset 3 below the start", start, end, err)
	}
	return start, end
}

// TestFetchOutOfRangeSparesOthers: a fetch of two partitions of one topic,
// one at an offset past its end. Kafka answers that partition
// OFFSET_OUT_OF_RANGE and serves the other one; the client resets only
// the one out of range.
func TestFetchOutOfRangeSparesOthers(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("two", 2)
	produceNative(t, ts.log, "two", []runnel.Record{{Partition: 0, Value: []byte("a")}, {Partition: 0, Value: []byte("b")},
		{Partition: 1, Value: []byte("c")}})
	rc := ts.raw()
	for round := range 2 {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, 1, 200
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "two"
		for p, off := range []int64{0, 7} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = int32(p), off, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := rc.request(req).(*kmsg.FetchResponse)
		for _, rp := range resp.Topics[0].Partitions {
			switch rp.Partition {
			case 0:
				if got := fetchedValues(t, rp); rp.ErrorCode != 0 || strings.Join(got, ",") != "a,b" {
					t.Errorf("round %d: partition 0 at 0 (in range): %v, records %q; want NONE and [a b]", round, codeName(rp.ErrorCode), got)
				}
			case 1:
				if rp.ErrorCode != kerr.OffsetOutOfRange.Code {
					t.Errorf("round %d: partition 1 at 7: %v, want OFFSET_OUT_OF_RANGE", round, codeName(rp.ErrorCode))
				}
			}
		}
	}
}

// TestResetSparesOtherPartition: franz-go consumes two
// partitions, one from an offset past its end, with reset to latest. The
// other partition's records (from 0, in range) must be delivered: the
// out-of-range seek left its error in the connection's consumer, whose
// next poll failed the whole topic, and the server's OFFSET_OUT_OF_RANGE
// for the partition in range made franz-go skip its records.
func TestResetSparesOtherPartition(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("two", 2)
	produceNative(t, ts.log, "two", []runnel.Record{{Partition: 0, Value: []byte("a")}, {Partition: 0, Value: []byte("b")},
		{Partition: 1, Value: []byte("c")}})
	cl := ts.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"two": {
		0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(7),
	}}), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []string
	for ctx.Err() == nil && len(got) < 2 {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, fmt.Sprintf("%d:%s", r.Partition, r.Value)) })
	}
	if strings.Join(got, ",") != "0:a,0:b" {
		t.Fatalf("records from partition 0 (fetched from 0, in range): %q, want [0:a 0:b]", got)
	}
}
