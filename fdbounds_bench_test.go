package runnel

import (
	"context"
	"testing"
)

// BenchmarkManyPartitions sends one record at a time to each of 2,000
// partitions in turn (Buffered), with every partition's files open (a
// budget larger than they need) and with a budget that holds about a
// hundred partitions open: each send then reopens its partition's files
// and releases another's.
//
//	go test -run '^$' -bench ManyPartitions .
func BenchmarkManyPartitions(b *testing.B) {
	const topics, parts = 125, 16
	for _, bc := range []struct {
		name    string
		maxOpen int
	}{{"open=all", 1 << 16}, {"open=512", 512}} {
		b.Run(bc.name, func(b *testing.B) {
			l := openTest(b, b.TempDir(), &Options{Durability: Buffered, MaxOpenFiles: bc.maxOpen})
			prods := make([]*Producer, topics)
			for i := range prods {
				name := "t" + string(rune('a'+i%26)) + string(rune('a'+i/26))
				mustCreate(b, l, name, TopicConfig{Partitions: parts})
				p, err := l.Producer(name, nil)
				if err != nil {
					b.Fatal(err)
				}
				prods[i] = p
			}
			ctx := context.Background()
			rec := []Record{{Value: make([]byte, 100)}}
			send := func(n int) {
				for j := range n {
					if _, err := prods[j/parts%topics].SendBatch(ctx, j%parts, rec); err != nil {
						b.Fatal(err)
					}
				}
			}
			send(topics * parts) // first appends create the segments
			b.ReportAllocs()
			b.ResetTimer()
			send(b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(l.Stats().FileReleases), "releases")
		})
	}
}
