package runnel

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStream is the bench module's "stream (buffered|durable) 1w
// 100B" workload without the harness: one goroutine streams 100-byte
// records through SendAsync, each with a callback, to a one-partition
// topic, and flushes at the end. It measures the CPU runnel spends per
// record on the sending goroutine and the writer (cpu-ns/rec, the
// process's CPU time, which a loaded machine disturbs far less than
// ns/rec; allocs/op), which is what issue 12's ratio to raw pwrite is
// made of.
//
//	go test -run '^$' -bench Stream -benchtime 2s .
func BenchmarkStream(b *testing.B) {
	for _, d := range []Durability{Buffered, Durable} {
		b.Run("mode="+d.String(), func(b *testing.B) {
			l, p := benchLog(b, d, BackendPwrite)
			value := make([]byte, 100)
			var acked int // callbacks of one partition run one at a time
			var failed error
			done := func(_ Position, err error) {
				if err != nil && failed == nil {
					failed = err
				}
				acked++
			}
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := processCPU(b), time.Now()
			for range b.N {
				p.SendAsync(Record{Value: value}, done)
			}
			if err := p.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed, cpu := time.Since(start), processCPU(b)-cpu0
			b.StopTimer()
			if failed != nil || acked != b.N {
				b.Fatalf("%d of %d callbacks, first error %v", acked, b.N, failed)
			}
			reportStream(b, l, elapsed, cpu)
		})
	}
}

// BenchmarkStreamBatches is BenchmarkStream's Buffered stream sent 100
// records at a time through SendBatchAsync, without callbacks: a caller
// that batches.
//
//	go test -run '^$' -bench StreamBatches -benchtime 2s .
func BenchmarkStreamBatches(b *testing.B) {
	l, p := benchLog(b, Buffered, BackendPwrite)
	value := make([]byte, 100)
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Value: value}
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, start := processCPU(b), time.Now()
	for sent := 0; sent < b.N; sent += len(recs) {
		p.SendBatchAsync(0, recs[:min(len(recs), b.N-sent)], nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), processCPU(b)-cpu0
	b.StopTimer()
	reportStream(b, l, elapsed, cpu)
}

// reportStream reports a stream of b.N records that took elapsed and cpu.
func reportStream(b *testing.B, l *Log, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/rec")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/rec")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	if st := l.Stats(); st.FramesWritten > 0 {
		b.ReportMetric(float64(st.RecordsWritten)/float64(st.FramesWritten), "records/frame")
	}
}
