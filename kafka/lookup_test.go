package kafka

import (
	"context"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPartitionLookups: the offsets Fetch, ListOffsets and
// OffsetForLeaderEpoch report, per partition, are the partition's own:
// a start that retention moved, an end, an empty partition's zeros, and
// UNKNOWN_TOPIC_OR_PARTITION for a partition the topic does not have.
func TestPartitionLookups(t *testing.T) {
	ts := startServer(t, nil)
	if err := ts.log.CreateTopic("pl", runnel.TopicConfig{Partitions: 3, SegmentBytes: 64 << 10, RetentionBytes: 128 << 10}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1000)
	var recs []runnel.Record
	for range 400 { // partition 0: about 6 segments, retention keeps 2 or 3
		recs = append(recs, runnel.Record{Partition: 0, Value: value})
	}
	recs = append(recs, runnel.Record{Partition: 1, Value: []byte("a")}, runnel.Record{Partition: 1, Value: []byte("b")})
	produceNative(t, ts.log, "pl", recs)
	if err := ts.log.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, err := ts.log.DescribeTopic("pl")
	if err != nil {
		t.Fatal(err)
	}
	start0 := info.Partitions[0].StartOffset
	if start0 == 0 || info.Partitions[0].NextOffset != 400 {
		t.Fatalf("partition 0: %+v; want a start past 0 and 400 records", info.Partitions[0])
	}
	starts, ends := []int64{start0, 0, 0}, []int64{400, 2, 0}
	rc := ts.raw()

	fetch := func(offsets []int64, partMax int32) []kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, 0, 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "pl"
		for p, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = int32(p), off, partMax
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := rc.request(req).(*kmsg.FetchResponse)
		return resp.Topics[0].Partitions
	}
	// From each start, partition 0 cut short by its byte limit: a
	// partition that returns records may report as its end any offset
	// past them and not past the real one.
	for _, rp := range fetch([]int64{start0, 0, 0}, 4<<10) {
		p := rp.Partition
		if rp.ErrorCode != 0 || rp.LogStartOffset != starts[p] || rp.HighWatermark > ends[p] || p == 2 && rp.HighWatermark != 0 {
			t.Errorf("fetch from the start, partition %d: error %d, start %d, end %d; want start %d, end at most %d", p, rp.ErrorCode, rp.LogStartOffset, rp.HighWatermark, starts[p], ends[p])
		}
		if p == 0 && (len(rp.RecordBatches) == 0 || rp.HighWatermark <= start0) {
			t.Errorf("partition 0 from its start: %d bytes of batches, end %d", len(rp.RecordBatches), rp.HighWatermark)
		}
	}
	// At each end: nothing to return, and the exact end.
	for _, rp := range fetch(ends, 4<<10) {
		p := rp.Partition
		if rp.ErrorCode != 0 || len(rp.RecordBatches) != 0 || rp.LogStartOffset != starts[p] || rp.HighWatermark != ends[p] {
			t.Errorf("fetch at the end, partition %d: error %d, %d bytes, start %d, end %d; want start %d, end %d", p, rp.ErrorCode, len(rp.RecordBatches), rp.LogStartOffset, rp.HighWatermark, starts[p], ends[p])
		}
	}
	if got := fetch([]int64{start0, 0, 0, 0}, 4<<10)[3]; got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch of partition 3 of 3: error %d, want UNKNOWN_TOPIC_OR_PARTITION", got.ErrorCode)
	}

	// A request for each query: Kafka refuses a partition named twice.
	for _, at := range []int64{listEarliest, listLatest} {
		list := kmsg.NewPtrListOffsetsRequest()
		list.Version = 4
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "pl"
		for _, p := range []int32{0, 1, 2, 3, -1} {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = p, at
			lt.Partitions = append(lt.Partitions, lp)
		}
		list.Topics = append(list.Topics, lt)
		for _, rp := range rc.request(list).(*kmsg.ListOffsetsResponse).Topics[0].Partitions {
			p := rp.Partition
			switch {
			case p < 0 || p > 2:
				if rp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					t.Errorf("ListOffsets of partition %d: error %d, want UNKNOWN_TOPIC_OR_PARTITION", p, rp.ErrorCode)
				}
			case rp.ErrorCode != 0 || at == listEarliest && rp.Offset != starts[p] || at == listLatest && rp.Offset != ends[p]:
				t.Errorf("ListOffsets(%d) of partition %d: %d, error %d; want start %d, end %d", at, p, rp.Offset, rp.ErrorCode, starts[p], ends[p])
			}
		}
	}

	ep := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ep.Version = 3
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "pl"
	for _, p := range []int32{0, 1, 2, 3} {
		epp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		epp.Partition = p
		et.Partitions = append(et.Partitions, epp)
	}
	ep.Topics = append(ep.Topics, et)
	for _, rp := range rc.request(ep).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions {
		p := rp.Partition
		if p == 3 && rp.ErrorCode != kerr.UnknownTopicOrPartition.Code || p < 3 && (rp.ErrorCode != 0 || rp.EndOffset != ends[p]) {
			t.Errorf("OffsetForLeaderEpoch of partition %d: end %d, error %d", p, rp.EndOffset, rp.ErrorCode)
		}
	}
}
