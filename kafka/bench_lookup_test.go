package kafka

import (
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkTopicLookups times the server's side of the requests that look
// a topic's partitions up: Metadata (the partition count), ListOffsets of
// every partition's end, and a fetch at the end of every partition, which
// answers each with its exact end. The topic has 64 partitions of 8
// segments each, so work done per partition or per segment shows.
func BenchmarkTopicLookups(b *testing.B) {
	const parts, segments = 64, 8
	l, err := runnel.Open(b.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		b.Fatal(err)
	}
	ts := startServerOn(b, l, nil)
	if err := l.CreateTopic("wide", runnel.TopicConfig{Partitions: parts, SegmentBytes: 64 << 10}); err != nil {
		b.Fatal(err)
	}
	p, err := l.Producer("wide", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 1000)
	const perPart = segments * 64
	for i := range parts * perPart {
		p.SendAsync(runnel.Record{Partition: i % parts, Value: value}, nil)
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version, meta.Topics = 9, []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("wide")}}
	list := kmsg.NewPtrListOffsetsRequest()
	list.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "wide"
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.MaxBytes, fetch.MinBytes, fetch.MaxWaitMillis = 12, 50<<20, 1, 0
	ft := kmsg.FetchRequestTopic{Topic: "wide"}
	for i := range parts {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = int32(i), listLatest
		lt.Partitions = append(lt.Partitions, lp)
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = int32(i), perPart, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	list.Topics = []kmsg.ListOffsetsRequestTopic{lt}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}

	c := newConn(ts.srv, discardConn{})
	defer c.fetch.close()
	for _, bc := range []struct {
		name string
		req  kmsg.Request
	}{{"Metadata", meta}, {"ListOffsets", list}, {"FetchAtEnd", fetch}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.dispatch(bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
