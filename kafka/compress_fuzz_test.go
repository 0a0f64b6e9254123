package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzCompressedBatch feeds the produce path's decompression and record
// decoder compressed records areas of each codec in a batch header that
// checks out: FuzzReadBatch's mutations nearly never keep a batch's CRC,
// so they stop before decompressing. It must not panic, must not allocate
// much more than the records area and the decompression limit justify,
// and a batch it accepts must re-encode, in the same codec, to the same
// records.
func FuzzCompressedBatch(f *testing.F) {
	const limit = 1 << 20
	recs := sampleRecords("f", 6)
	raw := encodeBatch(f, kgo.NoCompression(), recs)
	plain := raw[batchHeaderSize:]
	for _, b := range seedBatches(f) {
		c := uint8(binary.BigEndian.Uint16(b[batchAttrOff:]) & attrCompression)
		body := b[batchHeaderSize:]
		f.Add(c, uint16(len(recs)), body)
		f.Add(c, uint16(len(recs)), body[:len(body)/2])
		f.Add(c, uint16(len(recs)), append(bytes.Clone(body), 0xde, 0xad, 0xbe, 0xef))
		f.Add(c, uint16(len(recs)+1), body)
	}
	// Java's framing of snappy, of one block and of two.
	block := s2.EncodeSnappy(nil, plain)
	xerial := append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	one := binary.BigEndian.AppendUint32(bytes.Clone(xerial), uint32(len(block)))
	one = append(one, block...)
	f.Add(uint8(codecSnappy), uint16(len(recs)), one)
	half := len(plain) / 2
	two := bytes.Clone(xerial)
	for _, part := range [][]byte{plain[:half], plain[half:]} {
		blk := s2.EncodeSnappy(nil, part)
		two = binary.BigEndian.AppendUint32(two, uint32(len(blk)))
		two = append(two, blk...)
	}
	f.Add(uint8(codecSnappy), uint16(len(recs)), two)
	// Two gzip members, as concatenated gzip files are.
	var members bytes.Buffer
	for _, part := range [][]byte{plain[:half], plain[half:]} {
		w := gzip.NewWriter(&members)
		w.Write(part)
		w.Close()
	}
	f.Add(uint8(codecGzip), uint16(len(recs)), members.Bytes())
	// A zstd frame that states its content size.
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(codecZstd), uint16(len(recs)), enc.EncodeAll(plain, nil))
	enc.Close()
	f.Add(uint8(7), uint16(1), []byte("garbage, not compressed data"))
	// A snappy block that claims to decode to a megabyte, and a legacy
	// lz4 frame (8 MiB blocks) with a bad block.
	f.Add(uint8(codecSnappy), uint16(1), append(binary.AppendUvarint(nil, limit), 0))
	f.Add(uint8(codecLZ4), uint16(1), []byte{0x02, 0x21, 0x4c, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5})

	now := time.UnixMilli(42)
	f.Fuzz(func(t *testing.T, c uint8, count uint16, body []byte) {
		b := sealBatch(raw[:batchHeaderSize], codec(c&attrCompression), int32(count), body)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		info, got, err := readAll(b, limit, now)
		runtime.ReadMemStats(&after)
		// What is decompressed, its buffer's doublings and the records
		// cloned out of it, and what a decoder sets up (gzip's window
		// and tables). A snappy block's buffer is sized by the block's
		// first bytes, which must not claim more than the block can
		// hold. lz4's two block buffers are sized by the frame header
		// (8 MiB and a bound, for a legacy frame), and pooled. The zstd
		// decoder's own cap is maxDecodedBatch, whatever the limit.
		room, fixed := limit, 256<<10
		switch codec(c & attrCompression) {
		case codecSnappy:
			room = min(limit, maxSnappyRatio*len(body))
		case codecLZ4:
			fixed += 17 << 20
		case codecZstd:
			room = maxDecodedBatch
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(64*len(body)+4*room+fixed) {
			t.Fatalf("a %d-byte %s batch allocated %d bytes (err %v)", len(body), codec(c&attrCompression), grew, err)
		}
		if err != nil {
			return
		}
		if int(info.count) != len(got) {
			t.Fatalf("count %d, %d records", info.count, len(got))
		}
		var again batchBuilder
		for i := range got {
			got[i].Offset = int64(i)
			again.add(&got[i])
		}
		kc := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}[c&attrCompression]
		_, back, err := readAll(compressBatch(t, again.finish(), kc), limit, now)
		if err != nil {
			t.Fatalf("re-encoded %s batch refused: %v", codec(c&attrCompression), err)
		}
		for i := range back {
			back[i].Offset = int64(i)
		}
		if diff := cmp.Diff(got, back, nilAware, timeEqual); diff != "" {
			t.Fatalf("re-encoded batch differs:\n%s", diff)
		}
	})
}

// sealBatch puts records area body behind header, with the codec and
// record count given and the length and CRC to match.
func sealBatch(header []byte, c codec, count int32, body []byte) []byte {
	b := append(bytes.Clone(header[:batchHeaderSize]), body...)
	binary.BigEndian.PutUint16(b[batchAttrOff:], uint16(c))
	binary.BigEndian.PutUint32(b[batchLastDeltaOff:], uint32(count-1))
	binary.BigEndian.PutUint32(b[batchCountOff:], uint32(count))
	binary.BigEndian.PutUint32(b[batchLengthOff:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrOff:], crc32c))
	return b
}
