package kafka

import (
	"fmt"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recreateElsewhere deletes topic and makes it again with partitions
// partitions through a second Log on the server's directory, as another
// process does without the server being told.
func recreateElsewhere(t *testing.T, ts *testServer, topic string, partitions int) {
	t.Helper()
	other, err := runnel.Open(ts.log.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	if err := other.CreateTopic(topic, runnel.TopicConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
}

// TestPartitionsOfTopicRecreatedElsewhere: another process deletes a
// topic the server has served and makes it again with more or fewer
// partitions. Kafka answers for the new topic at once: its partitions
// take fetches and batches, the others are UNKNOWN_TOPIC_OR_PARTITION,
// and an offset past a partition's new end is OFFSET_OUT_OF_RANGE. The
// server answered by the partition count it had cached: a partition the
// new topic added was refused by Fetch and Produce until a restart, and a
// Fetch naming a partition the new topic lost got INVALID_REQUEST for
// every partition of the topic, until a restart too.
func TestPartitionsOfTopicRecreatedElsewhere(t *testing.T) {
	for _, path := range []string{"fetch", "produce"} {
		for _, tc := range []struct {
			name          string
			before, after int
		}{
			{"more", 1, 3},
			{"fewer", 3, 1},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				ts := startServer(t, nil)
				ts.createTopic("re", tc.before)
				produceNative(t, ts.log, "re", []runnel.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}})
				rc := ts.raw()
				// The server's caches hold the old topic: a fetch to
				// its end and a batch through its handle.
				if rp := fetchOne(t, rc, "re", 0, 0, 1<<20); rp.ErrorCode != 0 || rp.HighWatermark != 3 {
					t.Fatalf("fetch of the old topic: %v, high watermark %d", kerr.ErrorForCode(rp.ErrorCode), rp.HighWatermark)
				}
				pid, epoch := rc.initProducer()
				if code, off := produceCode(t, rc.request(produceBatch("re", 0, pid, epoch, 0, "d", 9))); code != 0 || off != 3 {
					t.Fatalf("produce to the old topic: %v, offset %d", kerr.ErrorForCode(code), off)
				}
				recreateElsewhere(t, ts, "re", tc.after)

				parts := max(tc.before, tc.after)
				want := func(p int) int16 {
					if p < tc.after {
						return 0
					}
					return kerr.UnknownTopicOrPartition.Code
				}
				if path == "fetch" {
					// Partition 0 at the old end, 4, which the new
					// topic does not hold; the others at 0.
					req := kmsg.NewPtrFetchRequest()
					req.Version, req.MaxBytes = 12, 1<<20
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic = "re"
					for p := range parts {
						rp := kmsg.NewFetchRequestTopicPartition()
						rp.Partition, rp.PartitionMaxBytes = int32(p), 1<<20
						if p == 0 {
							rp.FetchOffset = 4
						}
						rt.Partitions = append(rt.Partitions, rp)
					}
					req.Topics = append(req.Topics, rt)
					for _, rp := range rc.request(req).(*kmsg.FetchResponse).Topics[0].Partitions {
						code := want(int(rp.Partition))
						if rp.Partition == 0 {
							code = kerr.OffsetOutOfRange.Code
						}
						if rp.ErrorCode != code {
							t.Errorf("fetch of partition %d of the new topic of %d: %v, want %v", rp.Partition, tc.after, kerr.ErrorForCode(rp.ErrorCode), kerr.ErrorForCode(code))
						}
					}
					return
				}
				// The last partition first: a batch to partition 0
				// goes through the old handle, whose failure drops it.
				for p := parts - 1; p >= 0; p-- {
					code, off := produceCode(t, rc.request(produceBatch("re", int32(p), pid, epoch, 0, fmt.Sprint("new-", p), 9)))
					if code != want(p) || code == 0 && off != 0 {
						t.Errorf("produce to partition %d of the new topic of %d: %v, offset %d; want %v", p, tc.after, kerr.ErrorForCode(code), off, kerr.ErrorForCode(want(p)))
					}
				}
			})
		}
	}
}
