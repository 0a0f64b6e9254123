package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The server's benchmarks. Each reports records/s and cpu-ns/record: the
// CPU time (user and system) of the whole process per record, which a
// shared machine disturbs far less than the rate. BenchmarkProduce and
// BenchmarkFetch run a franz-go client and the server in one process,
// beside runnel's own API in the same run; BenchmarkStoreBatch and
// BenchmarkFetchResponse time the server's side alone. The bench module
// (bench/) runs the server as a process of its own, as in real use.

// benchServer serves a fresh Log with the given durability and default
// options.
func benchServer(b *testing.B, d runnel.Durability) *testServer {
	l, err := runnel.Open(b.TempDir(), &runnel.Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	ts := startServerOn(b, l, nil)
	if err := l.CreateTopic("bench", runnel.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	return ts
}

// benchValues returns n values of size random bytes each (as compressible
// as real payloads often are not).
func benchValues(n, size int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = make([]byte, size)
		for j := range vs[i] {
			vs[i][j] = byte(r.Uint32())
		}
	}
	return vs
}

// report adds the rate and the CPU time per record since cpu0 and start.
func report(b *testing.B, n int, start time.Time, cpu0 int64) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/record")
}

// BenchmarkProduce: a franz-go producer (its defaults: 10 ms linger,
// snappy) through the server, against runnel's SendAsync in the same run.
func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{100, 500} {
		vals := benchValues(1024, size)
		for _, acks := range []string{"all", "leader"} {
			b.Run(fmt.Sprintf("value=%d/acks=%s/kafka", size, acks), func(b *testing.B) {
				ts := benchServer(b, runnel.Durable)
				opts := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.MaxBufferedRecords(1 << 17)}
				if acks == "leader" {
					// As Kafka's Java producer: five requests in flight.
					opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
				}
				cl := ts.client(opts...)
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				cpu0, start := cpuTime(), time.Now()
				for i := range b.N {
					wg.Add(1)
					cl.Produce(context.Background(), &kgo.Record{Value: vals[i%len(vals)]}, func(_ *kgo.Record, err error) {
						if err != nil {
							b.Error(err)
						}
						wg.Done()
					})
				}
				wg.Wait()
				report(b, b.N, start, cpu0)
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
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := cpuTime(), time.Now()
			for i := range b.N {
				p.SendAsync(runnel.Record{Value: vals[i%len(vals)]}, nil)
			}
			if err := p.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			report(b, b.N, start, cpu0)
		})
	}
}

// loadBench stores n 100-byte records in the bench topic, in frames of
// about 1 MB as a Kafka producer's batches make them.
func loadBench(b *testing.B, l *runnel.Log, n int) {
	p, err := l.Producer("bench", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	vals := benchValues(1024, 100)
	recs := make([]runnel.Record, 0, 8000)
	for i := 0; i < n; {
		recs = recs[:0]
		for ; len(recs) < cap(recs) && i < n; i++ {
			recs = append(recs, runnel.Record{Value: vals[i%len(vals)]})
		}
		p.SendBatchAsync(0, recs, func(_ int64, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFetch: a franz-go consumer through the server, against a
// runnel Consumer, reading the same 100-byte records from the page cache.
func BenchmarkFetch(b *testing.B) {
	for _, via := range []string{"kafka", "native"} {
		b.Run("value=100/"+via, func(b *testing.B) {
			ts := benchServer(b, runnel.Buffered)
			loadBench(b, ts.log, b.N)
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := cpuTime(), time.Now()
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
				cl := ts.client(kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				for n < b.N {
					n += len(cl.PollFetches(context.Background()).Records())
				}
			}
			report(b, n, start, cpu0)
		})
	}
}

// BenchmarkStoreBatch is the server's side of Produce alone: a 1 MB
// batch of 100-byte records, as franz-go sends it (snappy) and
// uncompressed, read and queued as one frame of a Buffered Log, against
// runnel's SendBatchAsync of the same records, already decoded.
func BenchmarkStoreBatch(b *testing.B) {
	vals := benchValues(8000, 100)
	var recs []*kgo.Record
	native := make([]runnel.Record, len(vals))
	for i, v := range vals {
		recs = append(recs, &kgo.Record{Value: v, Timestamp: time.UnixMilli(1_700_000_000_000)})
		native[i] = runnel.Record{Value: v, Time: recs[i].Timestamp}
	}
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"snappy", kgo.SnappyCompression()}, {"none", kgo.NoCompression()}, {"native", kgo.NoCompression()}} {
		b.Run("value=100/codec="+tc.name, func(b *testing.B) {
			l, err := runnel.Open(b.TempDir(), &runnel.Options{Durability: runnel.Buffered})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if err := l.CreateTopic("bench", runnel.TopicConfig{Partitions: 1}); err != nil {
				b.Fatal(err)
			}
			s, err := NewServer(l, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			h, err := s.topics.get("bench")
			if err != nil {
				b.Fatal(err)
			}
			batch := encodeBatch(b, tc.codec, recs)
			var scratch batchScratch
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := cpuTime(), time.Now()
			n := 0
			for n < b.N {
				if tc.name == "native" {
					h.committed.SendBatchAsync(0, native, nil)
				} else {
					s.storeBatch(h, 1, 0, batch, &scratch, func(_ int64, code int16, _ error) {
						if code != 0 {
							b.Errorf("error code %d", code)
						}
					})
				}
				n += len(recs)
			}
			if err := h.committed.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			report(b, n, start, cpu0)
		})
	}
}

// BenchmarkFetchResponse is the server's side of Fetch alone: fetches of
// 1 MiB from one partition of 100-byte records in the page cache, each
// answered and encoded as it goes on the wire, continuing where the last
// one ended; against a runnel Consumer reading the same records.
func BenchmarkFetchResponse(b *testing.B) {
	for _, via := range []string{"kafka", "native"} {
		b.Run("value=100/"+via, func(b *testing.B) {
			ts := benchServer(b, runnel.Buffered)
			loadBench(b, ts.log, b.N)
			c := newConn(ts.srv, discardConn{})
			defer c.fetch.close()
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := cpuTime(), time.Now()
			n := 0
			if via == "native" {
				cons, _ := ts.log.Consumer("bench", &runnel.ConsumerOptions{Start: runnel.Earliest})
				for n < b.N {
					recs, err := cons.Poll(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					n += len(recs)
				}
				cons.Close()
				report(b, n, start, cpu0)
				return
			}
			req := kmsg.NewPtrFetchRequest()
			req.Version, req.MaxBytes, req.MinBytes = 12, 50<<20, 1
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			req.Topics = []kmsg.FetchRequestTopic{{Topic: "bench", Partitions: []kmsg.FetchRequestTopicPartition{rp}}}
			a := &answer{req: req}
			for n < b.N {
				req.Topics[0].Partitions[0].FetchOffset = int64(n)
				a.resp = c.fetchRecords(req)
				got := int(ts.srv.Stats().FetchedRecords) - n
				if got <= 0 {
					b.Fatalf("a fetch at offset %d returned nothing", n)
				}
				n += got
				if err := c.reply(a); err != nil {
					b.Fatal(err)
				}
			}
			report(b, n, start, cpu0)
		})
	}
}
