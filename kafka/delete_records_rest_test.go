package kafka

import (
	"fmt"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDeleteRecordsReadAhead: records a connection's consumer read ahead
// of a fetch (kept for the next fetch: a partition's limit was reached)
// are not served once a DeleteRecords past them returned: the next fetch
// at their offset is OFFSET_OUT_OF_RANGE with the new log start, as
// Kafka's broker answers, where it returned the deleted record.
func TestDeleteRecordsReadAhead(t *testing.T) {
	rc := hundredRecords(t, "ra")
	// A limit of one byte: the first record alone is answered, the
	// others the poll read stay with the connection's consumer.
	if rp := fetchOne(t, rc, "ra", 0, 0, 1); rp.ErrorCode != 0 || fmt.Sprint(fetchedValues(t, rp)) != "[r0]" {
		t.Fatalf("first fetch: %v, %v", kerr.ErrorForCode(rp.ErrorCode), fetchedValues(t, rp))
	}
	deleteBelow(t, rc, "ra", 50)
	rp := fetchOne(t, rc, "ra", 0, 1, 1)
	if rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 50 || len(fetchedValues(t, rp)) != 0 {
		t.Errorf("fetch at 1 after DeleteRecords(50): %v, log start %d, records %v; want OFFSET_OUT_OF_RANGE, 50 and none",
			kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset, fetchedValues(t, rp))
	}
}

// TestDeleteRecordsFetchLogStart: a fetch sent after a DeleteRecords
// returned reports the start the call moved the partition to, on a
// connection whose consumer looked the start up before the call (it
// reported the start of up to a second before).
func TestDeleteRecordsFetchLogStart(t *testing.T) {
	rc := hundredRecords(t, "ls")
	if rp := fetchOne(t, rc, "ls", 0, 0, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 0 {
		t.Fatalf("first fetch: %v, log start %d", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
	deleteBelow(t, rc, "ls", 50)
	if rp := fetchOne(t, rc, "ls", 0, 60, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 50 {
		t.Errorf("fetch at 60 after DeleteRecords(50): %v, log start %d; want no error and 50", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
}

// hundredRecords starts a server with topic of one partition holding
// "r0" to "r99", and returns a raw connection to it.
func hundredRecords(t *testing.T, topic string) *rawConn {
	t.Helper()
	ts := startServer(t, nil)
	ts.createTopic(topic, 1)
	var recs []runnel.Record
	for i := range 100 {
		recs = append(recs, runnel.Record{Value: []byte(fmt.Sprintf("r%d", i))})
	}
	produceNative(t, ts.log, topic, recs)
	return ts.raw()
}

// deleteBelow deletes partition 0's records of topic below offset through
// rc, failing the test unless the call answers offset as the new start.
func deleteBelow(t *testing.T, rc *rawConn, topic string, offset int64) {
	t.Helper()
	dr := rc.request(delrecRequest(30000, delrecEntry{topic, 0, offset})).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	if dr.ErrorCode != 0 || dr.LowWatermark != offset {
		t.Fatalf("DeleteRecords(%d): %v, low watermark %d", offset, kerr.ErrorForCode(dr.ErrorCode), dr.LowWatermark)
	}
}
