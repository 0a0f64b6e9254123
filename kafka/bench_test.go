package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchServer serves a fresh Log with the given durability, with room for
// whole client batches in one frame.
func benchServer(b *testing.B, d runnel.Durability) *testServer {
	l, err := runnel.Open(b.TempDir(), &runnel.Options{Durability: d, MaxBatchBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ts := startServerOn(b, l, nil)
	if err := l.CreateTopic("bench", runnel.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	return ts
}

// BenchmarkProduce: a franz-go producer (default linger, pipelined) through
// the server, against runnel's SendAsync in the same run.
func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{100, 500} {
		for _, acks := range []string{"all", "leader"} {
			b.Run(fmt.Sprintf("value=%d/acks=%s/kafka", size, acks), func(b *testing.B) {
				ts := benchServer(b, runnel.Durable)
				opts := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.MaxBufferedRecords(1 << 17)}
				if acks == "leader" {
					opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
				}
				cl := ts.client(opts...)
				val := make([]byte, size)
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					wg.Add(1)
					cl.Produce(context.Background(), &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
						if err != nil {
							b.Error(err)
						}
						wg.Done()
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
				if st := ts.srv.Stats(); st.Requests > 0 {
					b.ReportMetric(float64(st.ProducedRecords)/float64(st.Requests), "records/request")
				}
			})
		}
		b.Run(fmt.Sprintf("value=%d/native", size), func(b *testing.B) {
			ts := benchServer(b, runnel.Durable)
			p, err := ts.log.Producer("bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				p.SendAsync(runnel.Record{Value: val}, nil)
			}
			if err := p.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkFetch: a franz-go consumer through the server, against a
// runnel Consumer, reading the same 100-byte records from the page cache.
func BenchmarkFetch(b *testing.B) {
	for _, via := range []string{"kafka", "native"} {
		b.Run("value=100/"+via, func(b *testing.B) {
			ts := benchServer(b, runnel.Buffered)
			p, _ := ts.log.Producer("bench", nil)
			val := make([]byte, 100)
			for range b.N {
				p.SendAsync(runnel.Record{Value: val}, nil)
			}
			p.Flush(context.Background())
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			n := 0
			if via == "native" {
				c, _ := ts.log.Consumer("bench", &runnel.ConsumerOptions{Start: runnel.Earliest})
				for n < b.N {
					recs, err := c.Poll(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					n += len(recs)
				}
				c.Close()
			} else {
				cl := ts.client(kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
				for n < b.N {
					n += len(cl.PollFetches(context.Background()).Records())
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
		})
	}
}
