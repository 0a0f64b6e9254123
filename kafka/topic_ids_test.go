package kafka

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicIDs: each topic is reported with its runnel topic id as
// Kafka's 16 bytes (Metadata v10+, CreateTopics v7, kadm's topic
// details), a topic deleted and created again under its name gets
// another, and Metadata v12 answers a topic named by id alone with its
// name, or UNKNOWN_TOPIC_ID for an id no topic has now.
func TestTopicIDs(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	idOf := func(name string) [16]byte {
		t.Helper()
		id, err := ts.log.TopicID(name)
		if err != nil {
			t.Fatal(err)
		}
		var b [16]byte
		if n, err := hex.Decode(b[:], []byte(id)); err != nil || n != 16 {
			t.Fatalf("topic %s's id %q is not 128 bits in hex", name, id)
		}
		return b
	}

	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 7
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "ids", 2, 1
	create.Topics = append(create.Topics, ct)
	created := ts.raw().request(create).(*kmsg.CreateTopicsResponse).Topics[0]
	if created.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(created.ErrorCode))
	}
	first := idOf("ids")
	if created.TopicID != first {
		t.Errorf("CreateTopics v7 answered id %x, topic.json has %x", created.TopicID, first)
	}

	adm := kadm.NewClient(ts.client())
	details, err := adm.ListTopics(ctx, "ids")
	if err != nil {
		t.Fatal(err)
	}
	if got := details["ids"].ID; got != kadm.TopicID(first) {
		t.Errorf("kadm lists topic ids with id %v, want %x", got, first)
	}

	if err := ts.log.DeleteTopic("ids"); err != nil {
		t.Fatal(err)
	}
	if err := ts.log.CreateTopic("ids", runnel.TopicConfig{Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	second := idOf("ids")
	if second == first {
		t.Fatalf("a topic made again under its name kept its id %x", first)
	}

	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	for _, id := range [][16]byte{second, first, second} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		byID.Topics = append(byID.Topics, rt)
	}
	answers := ts.raw().request(byID).(*kmsg.MetadataResponse).Topics
	if len(answers) != 2 {
		t.Fatalf("%d answers to a topic named by id twice and an old id, want 2: %+v", len(answers), answers)
	}
	if answers[0].Topic == nil { // the answers' order is Kafka's too: none
		answers[0], answers[1] = answers[1], answers[0]
	}
	if a := answers[0]; a.ErrorCode != 0 || a.Topic == nil || *a.Topic != "ids" || a.TopicID != second || len(a.Partitions) != 3 {
		t.Errorf("the topic named by its id is answered %+v, want ids with id %x and 3 partitions", a, second)
	}
	if a := answers[1]; a.ErrorCode != kerr.UnknownTopicID.Code || a.TopicID != first {
		t.Errorf("the deleted topic's id is answered %v for id %x, want UNKNOWN_TOPIC_ID for %x", kerr.ErrorForCode(a.ErrorCode), a.TopicID, first)
	}
}
