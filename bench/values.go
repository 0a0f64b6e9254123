package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// Every value the harness writes is a pure function of (writer, seq): a
// 16-byte header naming them, then bytes cut from a fixed random pool. So a
// writer's acknowledged appends are described by one count, and the
// expected checksum is recomputed after the timed phase instead of being
// hashed inside it.

const (
	headerSize = 16
	poolSize   = 1 << 16
)

var pool = func() []byte {
	r := rand.New(rand.NewPCG(7, 11))
	b := make([]byte, poolSize+64<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// fillValue writes value (writer, seq) into buf, whose length is the value
// size (at least headerSize).
func fillValue(buf []byte, writer uint32, seq uint64) {
	binary.LittleEndian.PutUint32(buf[0:], writer)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(buf)))
	binary.LittleEndian.PutUint64(buf[8:], seq)
	off := (seq*7919 + uint64(writer)*104729) % poolSize
	copy(buf[headerSize:], pool[off:])
}

// sum is an order-independent digest of a set of values: how many, their
// bytes, and the sum of their xxhash64s.
type sum struct {
	Count int64  `json:"count"`
	Bytes int64  `json:"bytes"`
	Hash  uint64 `json:"hash"`
}

func (s *sum) add(v []byte) {
	s.Count++
	s.Bytes += int64(len(v))
	s.Hash += xxhash.Sum64(v)
}

func (s *sum) merge(o sum) {
	s.Count += o.Count
	s.Bytes += o.Bytes
	s.Hash += o.Hash
}

func (s sum) String() string {
	return fmt.Sprintf("%d records, %d bytes, hash %016x", s.Count, s.Bytes, s.Hash)
}

// expectedSum is the digest of values (w, 0..counts[w]-1) of one size.
func expectedSum(counts []int64, size int) sum {
	var s sum
	buf := make([]byte, size)
	for w, n := range counts {
		for seq := range n {
			fillValue(buf, uint32(w), uint64(seq))
			s.add(buf)
		}
	}
	return s
}
