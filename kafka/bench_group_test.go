package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkGroupFetch: a franz-go group consumer of an 8-partition topic
// reading 100-byte records as they are appended, 16 a partition at a
// time, as a consumer at the tail does: back to back, and one round
// every 5 ms (25,600 records/s). Besides the CPU time it reports
// read-B/record, the bytes the server's Log read per record delivered:
// the fetches' alone, once the member's runnel Consumers read nothing.
// They read what was appended, up to 4 KiB a partition every 10 ms tick,
// so at the paced rate every record twice.
func BenchmarkGroupFetch(b *testing.B) {
	for _, every := range []time.Duration{0, 5 * time.Millisecond} {
		b.Run(fmt.Sprintf("every=%v", every), func(b *testing.B) { benchGroupFetch(b, every) })
	}
}

func benchGroupFetch(b *testing.B, every time.Duration) {
	const parts, round = 8, 16
	ts := benchServer(b, runnel.Buffered)
	ts.createTopic("group", parts)
	var assigned atomic.Int64
	cl := ts.client(kgo.ConsumerGroup("bench"), kgo.ConsumeTopics("group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			assigned.Add(int64(len(a["group"])))
		}))
	// Joining takes the first polls; the member owns every partition once
	// the client was assigned them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for assigned.Load() < parts && ctx.Err() == nil {
		poll, stop := context.WithTimeout(ctx, 50*time.Millisecond)
		cl.PollFetches(poll)
		stop()
	}
	p, err := ts.log.Producer("group", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	vals := benchValues(round, 100)
	batch := make([]runnel.Record, round)
	for i := range batch {
		batch[i].Value = vals[i]
	}
	b.SetBytes(100)
	b.ResetTimer()
	read0, cpu0, start := ts.log.Stats().BytesRead, cpuTime(), time.Now()
	n := 0
	for i := 0; n < b.N; i++ {
		if every > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		}
		for part := range parts {
			if _, err := p.SendBatch(ctx, part, batch); err != nil {
				b.Fatal(err)
			}
		}
		for sent := n + parts*round; n < sent; {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				b.Fatal(err)
			}
			n += len(fs.Records())
		}
	}
	report(b, n, start, cpu0)
	b.ReportMetric(float64(ts.log.Stats().BytesRead-read0)/float64(n), "read-B/record")
}
