package kafka

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProducerJournal: what the producer journal costs an idempotent
// batch. journal-append is one entry's append alone (a write to the
// server's own file); batch-at-a-time is a franz-go idempotent producer
// waiting for each one-record batch on a Buffered Log, where that append
// is the most it can add to (compare with the build before the journal).
func BenchmarkProducerJournal(b *testing.B) {
	b.Run("journal-append", func(b *testing.B) {
		j, _, err := openJournal(filepath.Join(b.TempDir(), "0"), testTopicID, func(string, ...any) {})
		if err != nil {
			b.Fatal(err)
		}
		defer j.close()
		now := time.Now()
		b.ResetTimer()
		for i := range b.N {
			if err := j.append(stored(1, 0, int32(i), 1, int64(i), now)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch-at-a-time", func(b *testing.B) {
		ts := benchServer(b, runnel.Buffered)
		cl := ts.client(kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0))
		ctx := context.Background()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0, start := cpuTime(), time.Now()
		for range b.N {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("one")}).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, b.N, start, cpu0)
	})
}
