package runnel

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkTopicReads times DescribeTopic of a topic of 8 partitions and
// PartitionOffsets of one of them, with 2 segments a partition and with
// about 124, where per-segment work shows.
func BenchmarkTopicReads(b *testing.B) {
	for _, segments := range []int{1, 100} {
		l := openTest(b, b.TempDir(), &Options{Durability: Buffered})
		mustCreate(b, l, "t", TopicConfig{Partitions: 8, SegmentBytes: minSegmentBytes})
		p := mustProducer(b, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
		value := make([]byte, 1000)
		for i := range 8 * segments * 66 {
			p.SendAsync(Record{Partition: i % 8, Value: value}, nil)
		}
		if err := p.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		info, err := l.DescribeTopic("t")
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("segments=%d", info.Partitions[0].Segments)
		b.Run("DescribeTopic/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := l.DescribeTopic("t"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("PartitionOffsets/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := l.PartitionOffsets("t", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
