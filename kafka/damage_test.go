package kafka

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchOfDamagedPartition: a long-polling fetch that meets a damaged
// record gets KAFKA_STORAGE_ERROR for that partition alone, with a log
// line naming the file, at once instead of after its MaxWait; the
// topic's other partition is answered as ever. So is a fetch of a
// partition that does not exist.
func TestFetchOfDamagedPartition(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("dmg", 2)
	value := strings.Repeat("v", 300)
	produceNative(t, ts.log, "dmg", []runnel.Record{
		{Partition: 0, Value: []byte(value)}, {Partition: 1, Value: []byte(value)},
	})
	seg := filepath.Join(ts.log.Dir(), "topics", "dmg", "0", strings.Repeat("0", 20)+".log")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte(value))
	if at < 0 {
		t.Fatalf("the record's value is not in %s", seg)
	}
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), int64(at+100)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Partition 0 from its damaged start, partition 1 from its end: the
	// only data the fetch can find is the damage.
	req := kmsg.NewPtrFetchRequest()
	// MaxWait is far past the raw connection's 30 s read deadline: a
	// server that waited it out would fail the read.
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 50<<20, 1, 120000
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "dmg"
	for p := range int32(2) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, int64(p), 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := ts.raw().request(req).(*kmsg.FetchResponse)
	for _, rp := range resp.Topics[0].Partitions {
		switch rp.Partition {
		case 0:
			if rp.ErrorCode != kerr.KafkaStorageError.Code {
				t.Errorf("damaged partition 0: error %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(rp.ErrorCode))
			}
		case 1:
			if rp.ErrorCode != 0 || rp.HighWatermark != 1 {
				t.Errorf("intact partition 1 at its end: error %v, end %d", kerr.ErrorForCode(rp.ErrorCode), rp.HighWatermark)
			}
		}
	}
	if !logsContain(ts, "kafka: fetch failed") || !logsContain(ts, seg) {
		t.Errorf("no log line naming %s:\n%s", seg, ts.logs.String())
	}

	// A partition the topic does not have is answered at once too.
	rt.Partitions = rt.Partitions[:1]
	rt.Partitions[0].Partition = 7
	req.Topics = []kmsg.FetchRequestTopic{rt}
	if code := ts.raw().request(req).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch of partition 7 of 2: error %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
}
