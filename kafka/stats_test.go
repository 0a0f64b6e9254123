package kafka

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStatsRequestsByAPI checks that answered requests are counted by API
// and by the error code their response carried.
func TestStatsRequestsByAPI(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	for range 2 {
		rc.request(kmsg.NewPtrApiVersionsRequest())
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	topic := kmsg.NewListOffsetsRequestTopic()
	topic.Topic = "nosuchtopic"
	part := kmsg.NewListOffsetsRequestTopicPartition()
	part.Timestamp = -1
	topic.Partitions = append(topic.Partitions, part)
	lo.Topics = append(lo.Topics, topic)
	rc.request(lo)

	want := []RequestCount{
		{APIKey: 2, API: "ListOffsets", ErrorCode: kerr.UnknownTopicOrPartition.Code, Error: "UNKNOWN_TOPIC_OR_PARTITION", Count: 1},
		{APIKey: 18, API: "ApiVersions", Error: "NONE", Count: 2},
	}
	// A request is counted before its response is written: the client
	// that has its answers finds them counted, no waiting.
	got := ts.srv.Stats().RequestsByAPI
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("RequestsByAPI (-want +got):\n%s", d)
	}
	if st := ts.srv.Stats(); st.Requests != 3 || st.RequestErrors != 1 {
		t.Fatalf("Requests %d, RequestErrors %d; want 3 and 1", st.Requests, st.RequestErrors)
	}
}

func TestRequestCountNames(t *testing.T) {
	var r requestCounts
	r.note(0, 0)
	r.note(0, 9999) // a code kerr does not know
	r.note(500, 0)  // a key past the array
	want := []RequestCount{
		{APIKey: 0, API: "Produce", Error: "NONE", Count: 1},
		{APIKey: 0, API: "Produce", ErrorCode: 9999, Error: "CODE_9999", Count: 1},
		{APIKey: 500, API: "Unknown", Error: "NONE", Count: 1},
	}
	if d := cmp.Diff(want, r.load()); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}
