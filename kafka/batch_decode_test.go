package kafka

import (
	"encoding/binary"
	"math"
	"testing"
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
