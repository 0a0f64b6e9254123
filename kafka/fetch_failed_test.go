package kafka

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchFailedCorruptPath: a corruption fails the one partition only
// when the damaged file lies in that partition's directory of the topic
// fetched (topics/<topic>/<partition>/<file>), or is that directory (a
// missing partition directory's damage names it); damage anywhere else, such
// as the topic.json of a topic whose name is a number, fails every
// partition of the topic.
func TestFetchFailedCorruptPath(t *testing.T) {
	ts := startServer(t, nil)
	const topic = "5"
	ts.createTopic(topic, 6)
	topics := filepath.Join(ts.log.Dir(), "topics")
	all := []int32{0, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name string
		path string
		want []int32 // partitions failed
	}{
		{"partition's segment", filepath.Join(topics, topic, "2", "00000000000000000000.log"), []int32{2}},
		{"partition's directory (gone)", filepath.Join(topics, topic, "2"), []int32{2}},
		{"topic.json of a topic named 5", filepath.Join(topics, topic, "topic.json"), all},
		{"another topic's partition", filepath.Join(topics, "other", "2", "00000000000000000000.log"), all},
		{"not a partition's name", filepath.Join(topics, topic, "02", "00000000000000000000.log"), all},
		{"below a partition's directory", filepath.Join(topics, topic, "2", "sub", "file"), all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cons, err := ts.log.Consumer(topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			tr := &fetchTopicReq{name: topic, ft: &fetchTopic{cons: cons}, parts: map[int]*fetchPart{}}
			for p := range 6 {
				tr.parts[p] = &fetchPart{resp: &kmsg.FetchResponseTopicPartition{Partition: int32(p)}}
			}
			c := &conn{s: ts.srv, remote: "test", fetch: fetchSession{topics: map[string]*fetchTopic{topic: tr.ft}}}
			c.fetchFailed(tr, &runnel.CorruptError{Path: tc.path, Pos: -1, Offset: -1, Err: errors.New("damaged")})
			var failed []int32
			for p, fp := range tr.parts {
				if fp.failed {
					if fp.resp.ErrorCode != kerr.KafkaStorageError.Code {
						t.Errorf("partition %d: error %v, want KAFKA_STORAGE_ERROR", p, kerr.ErrorForCode(fp.resp.ErrorCode))
					}
					failed = append(failed, int32(p))
				}
			}
			slices.Sort(failed)
			if !slices.Equal(failed, tc.want) {
				t.Errorf("damage at %s failed partitions %v, want %v", tc.path, failed, tc.want)
			}
		})
	}
}
