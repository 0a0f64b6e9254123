package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestCommitOutsideRange: Kafka's OffsetCommit stores any offset at
// or above 0 without comparing it with the log; only the consumer that
// later fetches there learns (OFFSET_OUT_OF_RANGE) and resets. So are
// commits from outside the group's membership (generation -1: kadm's
// CommitOffsets, kafka-consumer-groups --reset-offsets, and standalone
// consumers that assign partitions and commit, as kafka-python's and
// librdkafka's do), which got OFFSET_OUT_OF_RANGE below the log start or
// past the end: a standalone consumer that fell behind retention could
// not commit what it processed.
func TestCommitOutsideRange(t *testing.T) {
	ts := startServer(t, nil)
	start, end := trimmedTopic(t, ts, "cr")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	for _, at := range []int64{3, end + 10} {
		resp, err := adm.CommitOffsets(ctx, "crgrp", kadm.Offsets{"cr": {0: {Topic: "cr", Partition: 0, At: at}}})
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Errorf("commit of offset %d (the log holds [%d, %d)) from outside the group: %v, want it stored as Kafka does", at, start, end, err)
			continue
		}
		fetched, err := adm.FetchOffsets(ctx, "crgrp")
		if o, ok := fetched.Lookup("cr", 0); err != nil || !ok || o.At != at {
			t.Errorf("after committing %d the group's offset is %+v (%v)", at, o, err)
		}
	}
}
