package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
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
