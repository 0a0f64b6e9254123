package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// Benchmarks report records/s and, where the issue asks for a comparison,
// "x-raw": runnel's rate divided by the rate of writing the same bytes with
// no format at all, measured in the same benchmark right before runnel, so
// the machine's noise hits both alike.
//
//	go test -run '^$' -bench 'Produce|Read|Reopen' .

func benchLog(b *testing.B, d Durability, backend string) (*Log, *Producer) {
	b.Helper()
	return benchLogWith(b, &Options{Durability: d, Backend: backend})
}

// benchLogWith is benchLog with options of the caller's.
func benchLogWith(b *testing.B, o *Options) (*Log, *Producer) {
	b.Helper()
	l := openTest(b, b.TempDir(), o)
	mustCreate(b, l, "bench", TopicConfig{Partitions: 1, SegmentBytes: 1 << 30})
	p, err := l.Producer("bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	return l, p
}

// encodedSize is what one benchmark record costs in a frame.
func encodedSize(value []byte) int {
	return frame.RecordSize(nil, value, nil) + 8 // + timestamp delta growth
}

// rawRate writes n records' worth of bytes in batches of batchRecords with
// pwrite (and fdatasync per batch when sync), and returns records/s.
func rawRate(b *testing.B, n, recordBytes, batchRecords int, sync bool) float64 {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, recordBytes*batchRecords)
	start := time.Now()
	var pos int64
	for done := 0; done < n; done += batchRecords {
		chunk := buf[:recordBytes*min(batchRecords, n-done)]
		if _, err := f.WriteAt(chunk, pos); err != nil {
			b.Fatal(err)
		}
		pos += int64(len(chunk))
		if sync {
			if err := fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func reportRate(b *testing.B, n int, raw float64) {
	rate := float64(n) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "records/s")
	if raw > 0 {
		b.ReportMetric(rate/raw, "x-raw")
	}
}

// BenchmarkProduce runs every append workload on both backends side by
// side: compare backend=io_uring with backend=pwrite rows of one run.
func BenchmarkProduce(b *testing.B) {
	for _, d := range []Durability{Buffered, Durable} {
		for _, size := range []int{100, 4096} {
			for _, backend := range []string{BackendPwrite, BackendIOURing} {
				name := fmt.Sprintf("mode=%s/value=%d/backend=%s", d, size, backend)
				value := make([]byte, size)
				b.Run(name+"/sender=async", func(b *testing.B) { benchAsync(b, d, backend, value) })
				b.Run(name+"/sender=64", func(b *testing.B) { benchSenders(b, d, backend, value, 64) })
				b.Run(name+"/sender=1", func(b *testing.B) { benchSenders(b, d, backend, value, 1) })
			}
		}
	}
}

// benchAsync feeds one producer with SendAsync and flushes at the end.
func benchAsync(b *testing.B, d Durability, backend string, value []byte) {
	_, p := benchLog(b, d, backend)
	raw := rawRate(b, max(b.N, 1000), encodedSize(value), defaultMaxBatchBytes/encodedSize(value), d == Durable)
	b.ReportAllocs()
	sendStream(b, p, value)
	reportRate(b, b.N, raw)
}

// sendStream times b.N records of value sent through SendAsync, without
// callbacks, and the Flush after them.
func sendStream(b *testing.B, p *Producer, value []byte) {
	b.Helper()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for range b.N {
		p.SendAsync(Record{Value: value}, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// benchSenders runs n goroutines calling Send. With one sender the raw
// comparison is one write (and fdatasync) per record.
func benchSenders(b *testing.B, d Durability, backend string, value []byte, n int) {
	l, p := benchLog(b, d, backend)
	var raw float64
	if n == 1 {
		raw = rawRate(b, min(max(b.N, 100), 2000), encodedSize(value), 1, d == Durable)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	sendConcurrently(b, p, n, b.N, value)
	b.StopTimer()
	reportRate(b, b.N, raw)
	st := l.Stats()
	b.ReportMetric(float64(st.RecordsWritten)/float64(max(st.FramesWritten, 1)), "records/frame")
	if d == Durable {
		// How many senders' records one fdatasync carried.
		b.ReportMetric(float64(st.RecordsWritten)/float64(max(st.Syncs, 1)), "records/sync")
	}
}

func sendConcurrently(b *testing.B, p *Producer, senders, n int, value []byte) {
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < n; i += senders {
				if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRead(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			l, p := benchLog(b, Buffered, "")
			const stored = 200_000
			value := make([]byte, size)
			for range stored {
				p.SendAsync(Record{Value: value}, nil)
			}
			if err := p.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			c, err := l.Consumer("bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for read := 0; read < b.N; {
				recs, err := c.TryPoll()
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) == 0 {
					if err := c.Seek(0, Earliest); err != nil {
						b.Fatal(err)
					}
				}
				read += len(recs)
			}
			b.StopTimer()
			reportRate(b, b.N, 0)
		})
	}
}

// BenchmarkReopen measures Open plus the first append on a partition that
// already holds about 1 GiB: the cost must follow the tail, not the size.
func BenchmarkReopen(b *testing.B) {
	dir := b.TempDir()
	l := openTest(b, dir, &Options{Durability: Buffered})
	mustCreate(b, l, "big", TopicConfig{Partitions: 1})
	p, _ := l.Producer("big", nil)
	value := make([]byte, 4096)
	for range (1 << 30) / len(value) {
		p.SendAsync(Record{Value: value}, nil)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		l, err := Open(dir, testOptions(b, &Options{Durability: Buffered}))
		if err != nil {
			b.Fatal(err)
		}
		p, _ := l.Producer("big", nil)
		if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}
