package kafka

import (
	"fmt"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDeleteRecordsFetchLogStart: a fetch sent after a DeleteRecords
// returned reports the start the call moved the partition to, on a
// connection whose consumer looked the start up before the call.
func TestDeleteRecordsFetchLogStart(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("ls", 1)
	var recs []runnel.Record
	for i := range 100 {
		recs = append(recs, runnel.Record{Value: []byte(fmt.Sprintf("r%d", i))})
	}
	produceNative(t, ts.log, "ls", recs)
	rc := ts.raw()
	if rp := fetchOne(t, rc, "ls", 0, 0, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 0 {
		t.Fatalf("first fetch: %v, log start %d", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
	dr := rc.request(delrecRequest(30000, delrecEntry{"ls", 0, 50})).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	if dr.ErrorCode != 0 || dr.LowWatermark != 50 {
		t.Fatalf("DeleteRecords: %v, low watermark %d", kerr.ErrorForCode(dr.ErrorCode), dr.LowWatermark)
	}
	if rp := fetchOne(t, rc, "ls", 0, 60, 1<<20); rp.ErrorCode != 0 || rp.LogStartOffset != 50 {
		t.Errorf("fetch at 60 after DeleteRecords(50): %v, log start %d; want no error and 50", kerr.ErrorForCode(rp.ErrorCode), rp.LogStartOffset)
	}
}
