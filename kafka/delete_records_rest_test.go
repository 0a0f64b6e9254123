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
	ts := startServer(t, nil)
	ts.createTopic("ra", 1)
	var recs []runnel.Record
	for i := range 100 {
		recs = append(recs, runnel.Record{Value: []byte(fmt.Sprintf("r%d", i))})
	}
	produceNative(t, ts.log, "ra", recs)
	rc := ts.raw()
	// A limit of one byte: the first record alone is answered, the
	// others the poll read stay with the connection's consumer.
	if rp := fetchOne(t, rc, "ra", 0, 0, 1); rp.ErrorCode != 0 || fmt.Sprint(fetchedValues(t, rp)) != "[r0]" {
		t.Fatalf("first fetch: %v, %v", kerr.ErrorForCode(rp.ErrorCode), fetchedValues(t, rp))
	}
	dr := rc.request(delrecRequest(30000, delrecEntry{"ra", 0, 50})).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	if dr.ErrorCode != 0 || dr.LowWatermark != 50 {
		t.Fatalf("DeleteRecords: %v, low watermark %d", kerr.ErrorForCode(dr.ErrorCode), dr.LowWatermark)
	}
	rp := fetchOne(t, rc, "ra", 0, 1, 1)
	if rp.ErrorCode != kerr.OffsetOutOfRange.Code || rp.LogStartOffset != 50 || len(fetchedValues(t, rp)) != 0 {
		t.Errorf("fetch at 1 after DeleteRecords(50): %v, log start %d, records %v; want OFFSET_OUT_OF_RANGE, 50 and none",
			kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset, fetchedValues(t, rp))
	}
}
