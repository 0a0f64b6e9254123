package kafka

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsSpecialTimestamps: the queries Kafka 3.0 and later
// answer beside earliest and latest, as kadm (and Kafka's
// kafka-get-offsets.sh --time -3, -4 and -5) sends them: the record with
// the largest timestamp (KIP-734; the first of two in the same
// millisecond, none in an empty partition), the local log start (the log
// start without tiered storage) and the latest tiered offset (none without
// tiered storage).
func TestListOffsetsSpecialTimestamps(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("lo", 2)
	at := func(ms int64, us int64) time.Time {
		return time.UnixMilli(ms).Add(time.Duration(us) * time.Microsecond)
	}
	var recs []runnel.Record
	for _, tm := range []time.Time{at(1000, 0), at(5000, 700), at(3000, 0), at(5000, 200), at(2000, 0)} {
		recs = append(recs, runnel.Record{Partition: 0, Value: []byte("v"), Time: tm})
	}
	produceNative(t, ts.log, "lo", recs)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()

	type listed struct {
		Offset, Timestamp int64
		LeaderEpoch       int32
		Err               error
	}
	check := func(name string, list func(context.Context, ...string) (kadm.ListedOffsets, error), want map[int32]listed) {
		t.Helper()
		got, err := list(ctx, "lo")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gotm := map[int32]listed{}
		got.Each(func(o kadm.ListedOffset) {
			gotm[o.Partition] = listed{o.Offset, o.Timestamp, o.LeaderEpoch, o.Err}
		})
		if diff := cmp.Diff(want, gotm); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	check("ListMaxTimestampOffsets", adm.ListMaxTimestampOffsets, map[int32]listed{
		0: {Offset: 1, Timestamp: 5000, LeaderEpoch: 0},
		1: {Offset: -1, Timestamp: -1, LeaderEpoch: -1},
	})
	check("ListLocalLogStartOffsets", adm.ListLocalLogStartOffsets, map[int32]listed{
		0: {Offset: 0, Timestamp: -1, LeaderEpoch: 0},
		1: {Offset: 0, Timestamp: -1, LeaderEpoch: 0},
	})
	check("ListLatestRemoteOffsets", adm.ListLatestRemoteOffsets, map[int32]listed{
		0: {Offset: -1, Timestamp: -1, LeaderEpoch: -1},
		1: {Offset: -1, Timestamp: -1, LeaderEpoch: -1},
	})
	// A later record in the newest millisecond leaves the answer at the
	// first; a newer one moves it.
	produceNative(t, ts.log, "lo", []runnel.Record{{Value: []byte("v"), Time: at(5000, 900)}})
	check("ListMaxTimestampOffsets after a tie", adm.ListMaxTimestampOffsets, map[int32]listed{
		0: {Offset: 1, Timestamp: 5000, LeaderEpoch: 0},
		1: {Offset: -1, Timestamp: -1, LeaderEpoch: -1},
	})
	produceNative(t, ts.log, "lo", []runnel.Record{{Partition: 1, Value: []byte("v"), Time: at(4000, 0)}})
	check("ListMaxTimestampOffsets after a record in partition 1", adm.ListMaxTimestampOffsets, map[int32]listed{
		0: {Offset: 1, Timestamp: 5000, LeaderEpoch: 0},
		1: {Offset: 0, Timestamp: 4000, LeaderEpoch: 0},
	})
	// The newest record is not the newest in time: a run of records each
	// newer than the last, and then an old one.
	var skewed []runnel.Record
	for i := range 300 {
		skewed = append(skewed, runnel.Record{Partition: 1, Value: []byte("v"), Time: at(10_000+int64(i)*7_919, 0)})
	}
	produceNative(t, ts.log, "lo", append(skewed, runnel.Record{Partition: 1, Value: []byte("v"), Time: at(1, 0)}))
	check("ListMaxTimestampOffsets after an old record", adm.ListMaxTimestampOffsets, map[int32]listed{
		0: {Offset: 1, Timestamp: 5000, LeaderEpoch: 0},
		1: {Offset: 300, Timestamp: 10_000 + 299*7_919, LeaderEpoch: 0},
	})
}

// TestListOffsetsMaxTimestampGapAtEnd: a partition whose last offsets a
// salvage marked lost (its newest frame was damaged) still holds records
// before them, and the max-timestamp query finds the newest in time among
// them, not "no record".
func TestListOffsetsMaxTimestampGapAtEnd(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic("g", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	produceNative(t, l, "g", []runnel.Record{
		{Value: []byte("first"), Time: time.UnixMilli(3000)},
		{Value: []byte("second"), Time: time.UnixMilli(2000)},
		{Value: []byte("damaged-last"), Time: time.UnixMilli(1000)},
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "topics", "g", "0", fmt.Sprintf("%020d.log", 0))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte("damaged-last"))
	if at < 0 {
		t.Fatal("the last record's value is not in the segment")
	}
	data[at] ^= 0xff
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Repair(context.Background(), "g", &runnel.RepairOptions{Salvage: true})
	if err != nil || len(rep.Remaining) != 0 {
		t.Fatalf("salvage: %v, remaining %v", err, rep.Remaining)
	}
	if start, end, err := l.PartitionOffsets("g", 0); err != nil || start != 0 || end != 3 {
		t.Fatalf("after the salvage the partition holds [%d, %d) (%v), want [0, 3) with offset 2 lost", start, end, err)
	}
	ts := startServerOn(t, l, nil)
	got, err := kadm.NewClient(ts.client()).ListMaxTimestampOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := got.Lookup("g", 0)
	if !ok || o.Err != nil || o.Offset != 0 || o.Timestamp != 3000 {
		t.Errorf("max timestamp: %+v (listed %v), want offset 0 at 3000", o, ok)
	}
}

// TestListOffsetsErrorPartition: a partition answered with an error
// (a topic or partition there is not) has offset -1, timestamp -1 and
// leader epoch -1, as Kafka's broker answers every failed partition
// (ListOffsetsResponse's UNKNOWN_OFFSET, UNKNOWN_TIMESTAMP and the leader
// epoch's default), whatever the query, where it had leader epoch 0 (and
// offset 0 from the latest and earliest queries, where a topic deleted
// after its partition count was read failed the offsets' lookup).
func TestListOffsetsErrorPartition(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("le", 1)
	produceNative(t, ts.log, "le", []runnel.Record{{Value: []byte("v"), Time: time.UnixMilli(1000)}})
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 10, -1
	for _, topic := range []string{"le", "missing"} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for i, query := range []int64{listLatest, listEarliest, listMaxTimestamp, listEarliestLocal, 500} {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 3+int32(i), query // none the topic has
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := ts.raw().request(req).(*kmsg.ListOffsetsResponse)
	for i, rt := range resp.Topics {
		for j, p := range rt.Partitions {
			query := req.Topics[i].Partitions[j].Timestamp
			if p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.Offset != -1 || p.Timestamp != -1 || p.LeaderEpoch != -1 {
				t.Errorf("%s partition %d, query %d: code %d, offset %d, timestamp %d, leader epoch %d; want UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1",
					rt.Topic, p.Partition, query, p.ErrorCode, p.Offset, p.Timestamp, p.LeaderEpoch)
			}
		}
	}
}

// TestListOffsetsPartitionNamedTwice: a partition a ListOffsets request
// names twice, in one topic entry or in two, is answered INVALID_REQUEST
// in each entry, as Kafka's broker answers the partitions of its
// duplicatePartitions, and the others as usual; both entries were
// answered.
func TestListOffsetsPartitionNamedTwice(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("d", 3)
	produceNative(t, ts.log, "d", []runnel.Record{{Partition: 1, Value: []byte("v")}})
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 7, -1
	for _, parts := range [][]int32{{0, 0, 1}, {2, 1}} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "d"
		for _, p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, listLatest
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := ts.raw().request(req).(*kmsg.ListOffsetsResponse)
	var got []string
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got = append(got, fmt.Sprintf("%d: code %d offset %d", p.Partition, p.ErrorCode, p.Offset))
		}
	}
	invalid := fmt.Sprintf("code %d offset -1", kerr.InvalidRequest.Code)
	want := []string{"0: " + invalid, "0: " + invalid, "1: " + invalid, "2: code 0 offset 0", "1: " + invalid}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListOffsets (-want +got):\n%s", diff)
	}
}
