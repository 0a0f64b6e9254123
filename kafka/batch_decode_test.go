package kafka

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecordReaderVarint: the inlined varint reads what binary.Varint
// reads, of every length, and fails where it fails (cut short, or past 64
// bits), leaving nothing more to read.
func TestRecordReaderVarint(t *testing.T) {
	var inputs [][]byte
	for _, v := range []int64{0, -1, 1, 63, -64, 64, 8191, -8192, 8192, 1 << 40, math.MaxInt64, math.MinInt64} {
		inputs = append(inputs, binary.AppendVarint(nil, v), append(binary.AppendVarint(nil, v), 7))
	}
	inputs = append(inputs,
		nil,
		[]byte{0x80},
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},       // 10 bytes, in range
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},       // 10 bytes, past 64 bits
		[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, // 11 bytes
	)
	for _, in := range inputs {
		want, n := binary.Varint(in)
		r := recordReader{b: in}
		got := r.varint()
		switch {
		case n <= 0 && (!r.bad || got != 0 || len(r.b) != 0):
			t.Errorf("% x: %d, bad %v, %d bytes left; binary.Varint fails", in, got, r.bad, len(r.b))
		case n > 0 && (r.bad || got != want || len(r.b) != len(in)-n):
			t.Errorf("% x: %d, bad %v, %d bytes left; want %d, %d left", in, got, r.bad, len(r.b), want, len(in)-n)
		}
	}
}

// BenchmarkReadFrame is the produce path's decoding alone: a 1 MB batch
// of 100-byte records, as franz-go sends it (snappy) and uncompressed,
// checked and decoded into the frame it would be stored as, which is then
// dropped; BenchmarkStoreBatch adds the store, whose cost runnel's own
// producers share. An idempotent batch's records are hashed too, for its
// producer journal entry (none/idempotent).
func BenchmarkReadFrame(b *testing.B) {
	var recs []*kgo.Record
	for _, v := range benchValues(8000, 100) {
		recs = append(recs, &kgo.Record{Value: v, Timestamp: time.UnixMilli(1_700_000_000_000)})
	}
	for _, name := range []string{"snappy", "none", "none/idempotent"} {
		codec := kgo.NoCompression()
		if name == "snappy" {
			codec = kgo.SnappyCompression()
		}
		batch := encodeBatch(b, codec, recs)
		if name == "none/idempotent" {
			batch = setBatchProducer(batch, 5, 0, 0)
		}
		b.Run("value=100/codec="+name, func(b *testing.B) {
			var scratch batchScratch
			b.SetBytes(100)
			b.ReportAllocs()
			cpu0, start := cpuTime(), time.Now()
			n := 0
			for n < b.N {
				if _, err := readFrame(batch, &scratch); err != nil {
					b.Fatal(err)
				}
				scratch.frame.Reset()
				n += len(recs)
			}
			report(b, n, start, cpu0)
		})
	}
}
