package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recreators delete a one-partition topic and make it again under its
// name: over Kafka, through the server, and through the Go API on a
// second Log on the directory, as another process does without the
// server being told.
var recreators = []struct {
	name     string
	recreate func(t *testing.T, ts *testServer, topic string)
}{
	{"kafka", func(t *testing.T, ts *testServer, topic string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := kadm.NewClient(ts.client())
		if res, err := adm.DeleteTopics(ctx, topic); err != nil || res[topic].Err != nil {
			t.Fatalf("DeleteTopics: %v %v", err, res[topic].Err)
		}
		if res, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || res.Err != nil {
			t.Fatalf("CreateTopics: %v %v", err, res.Err)
		}
	}},
	{"another Log", func(t *testing.T, ts *testServer, topic string) {
		t.Helper()
		recreateElsewhere(t, ts, topic, 1)
	}},
}

// TestIdempotentRetryAfterTopicRecreated: a topic deleted and made again
// under its name has no producer state, as in Kafka, where the state goes
// with the partition's log: the producer's first batch there is taken as
// is, and the next follows it. A retry of a batch the deleted topic stored
// is stored in the new one, not acknowledged as a duplicate at offsets the
// new topic does not hold (the client would take records for stored that
// are not), and a batch past a gap in the deleted topic's sequences is not
// refused.
func TestIdempotentRetryAfterTopicRecreated(t *testing.T) {
	firsts := []struct {
		name        string
		seq         int32
		value, next string
	}{
		{"retry", 2, "c", "d"},
		{"gap", 5, "f", "g"},
	}
	for _, rec := range recreators {
		for _, first := range firsts {
			t.Run(rec.name+"/"+first.name, func(t *testing.T) {
				ts := startServer(t, nil)
				ts.createTopic("re", 1)
				rc := ts.raw()
				pid, epoch := rc.initProducer()
				for seq, value := range []string{"a", "b", "c"} {
					if code, off := produceCode(t, rc.request(produceBatch("re", 0, pid, epoch, int32(seq), value, 9))); code != 0 || off != int64(seq) {
						t.Fatalf("seq %d: code %d offset %d", seq, code, off)
					}
				}
				oldID, err := ts.log.TopicID("re")
				if err != nil {
					t.Fatal(err)
				}
				rec.recreate(t, ts, "re")

				if code, off := produceCode(t, rc.request(produceBatch("re", 0, pid, epoch, first.seq, first.value, 9))); code != 0 || off != 0 {
					t.Fatalf("seq %d after the topic was made again: %v, offset %d; want it stored at offset 0 of the new topic", first.seq, kerr.ErrorForCode(code), off)
				}
				if code, off := produceCode(t, rc.request(produceBatch("re", 0, pid, epoch, first.seq+1, first.next, 9))); code != 0 || off != 1 {
					t.Fatalf("seq %d: code %d offset %d, want offset 1", first.seq+1, code, off)
				}
				if _, next, err := ts.log.PartitionOffsets("re", 0); err != nil || next != 2 {
					t.Fatalf("the new topic ends at offset %d (%v), want 2", next, err)
				}
				if got := values(readNative(t, ts.log, "re", 2)); !slices.Equal(got, []string{first.value, first.next}) {
					t.Errorf("the new topic holds %q, want %s and %s", got, first.value, first.next)
				}
				if st := ts.srv.Stats(); st.DuplicateBatches != 0 {
					t.Errorf("Stats.DuplicateBatches = %d, want 0: no batch of the new topic was sent twice", st.DuplicateBatches)
				}
				if ts.srv.seqs.knows(pid, topicPartition{topic: "re", topicID: oldID}) {
					t.Error("the server still holds the producer's state on the deleted topic")
				}
			})
		}
	}
}

// TestIdempotentProducerAfterTopicRecreated: a franz-go idempotent
// producer goes on, under its producer id and epoch, producing to a topic
// deleted and made again. franz-go fails the topic's records once it sees
// the new topic ID, until the topic is purged from the client, and then
// numbers the partition's batches from 0 again: the server must take them
// as Kafka does, with no state for the producer on the new topic. By the
// deleted topic's sequences, a batch with the first one's sequences was a
// retry, acknowledged at the old offsets and not stored, and any other
// was out of order (which franz-go takes for data loss).
func TestIdempotentProducerAfterTopicRecreated(t *testing.T) {
	for _, rec := range recreators {
		t.Run(rec.name, func(t *testing.T) {
			ts := startServer(t, nil)
			ts.createTopic("re", 1)
			lost := make(chan struct{}, 1)
			cl := ts.client(kgo.DefaultProduceTopic("re"), kgo.ProducerOnDataLossDetected(func(string, int32) {
				select {
				case lost <- struct{}{}:
				default:
				}
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			produce := func(values ...string) {
				t.Helper()
				var recs []*kgo.Record
				for _, v := range values {
					recs = append(recs, kgo.StringRecord(v))
				}
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatalf("producing %q: %v", values, err)
				}
			}
			produce("old-0", "old-1", "old-2")
			pid, epoch, err := cl.ProducerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rec.recreate(t, ts, "re")
			cl.PurgeTopicsFromClient("re")

			produce("new-0", "new-1", "new-2")
			if _, next, err := ts.log.PartitionOffsets("re", 0); err != nil || next != 3 {
				t.Fatalf("the new topic ends at offset %d (%v) once franz-go's 3 records are acknowledged, want 3", next, err)
			}
			if got := values(readNative(t, ts.log, "re", 3)); !slices.Equal(got, []string{"new-0", "new-1", "new-2"}) {
				t.Errorf("the new topic holds %q, want new-0, new-1 and new-2", got)
			}
			select {
			case <-lost:
				t.Error("franz-go detected data loss: the server refused the new topic's first batch by the deleted topic's sequences")
			default:
			}
			if pid2, epoch2, err := cl.ProducerID(ctx); err != nil || pid2 != pid || epoch2 != epoch {
				t.Errorf("producer id and epoch %d/%d (%v) after the new topic, want %d/%d: the producer was reset", pid2, epoch2, err, pid, epoch)
			}
		})
	}
}
