package kafka

import (
	"fmt"
	"slices"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataTopicNamedTwice: a Metadata request naming a topic twice,
// existing or not, gets one answer for it, as from a Kafka broker, which
// takes the request's topics as a set.
func TestMetadataTopicNamedTwice(t *testing.T) {
	ts := startServer(t, nil)
	if err := ts.log.CreateTopic("t", runnel.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range []string{"t", "nope", "t", "nope"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	var got []string
	for _, rt := range ts.raw().request(req).(*kmsg.MetadataResponse).Topics {
		got = append(got, fmt.Sprint(*rt.Topic, " ", kerr.ErrorForCode(rt.ErrorCode)))
	}
	want := []string{"t <nil>", "nope " + kerr.UnknownTopicOrPartition.Error()}
	if !slices.Equal(got, want) {
		t.Errorf("answers %q, want %q", got, want)
	}
}
