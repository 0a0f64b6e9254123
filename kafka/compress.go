package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// codec is a RecordBatch's compression, attributes bits 0-2.
type codec int16

const (
	codecNone codec = iota
	codecGzip
	codecSnappy
	codecLZ4
	codecZstd
)

func (c codec) String() string {
	switch c {
	case codecNone:
		return "none"
	case codecGzip:
		return "gzip"
	case codecSnappy:
		return "snappy"
	case codecLZ4:
		return "lz4"
	case codecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int(c))
}

// decompress returns the records area of a batch uncompressed, in buf's
// memory when it is large enough. It never produces (or allocates room
// for) more than limit bytes: a batch that would is refused, so a small
// compressed request cannot make the server allocate gigabytes.
func decompress(c codec, src []byte, limit int, buf []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case codecNone:
		return src, nil
	case codecGzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readLimited(zr, limit, buf)
		}
	case codecSnappy:
		out, err = unsnappy(src, limit, buf[:0])
	case codecLZ4:
		zr := lz4.NewReader(bytes.NewReader(src))
		out, err = readLimited(zr, limit, buf)
		// The reader gives its block buffers (up to 16 MiB, as a frame
		// header of a few bytes asks) back to lz4's pool only at the end
		// of the stream: after an error they would be garbage, made anew
		// for each bad batch.
		zr.Reset(nil)
	case codecZstd:
		out, err = zstdDecoder().DecodeAll(src, buf[:0])
		if err == nil && len(out) > limit || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			// The decoder's own cap is maxDecodedBatch.
			err = errDecodedTooLarge
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression %d", errCorruptBatch, c)
	}
	if err == errDecodedTooLarge {
		return nil, fmt.Errorf("%w: %s batch decompresses to more than %d bytes", errTooLarge, c, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCorruptBatch, c, err)
	}
	return out, nil
}

// readLimited reads r to its end, failing once it yields more than limit
// bytes. The buffer grows with what was read, never ahead of it.
func readLimited(r io.Reader, limit int, into []byte) ([]byte, error) {
	buf := bytes.NewBuffer(into[:0])
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, errDecodedTooLarge
	}
	return buf.Bytes(), nil
}

var errDecodedTooLarge = fmt.Errorf("decompressed data over the limit")

// xerialMagic starts snappy data in the framing of Java's snappy library,
// which Java clients send; librdkafka and franz-go send one raw block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// unsnappy decodes a raw snappy block or xerial-framed blocks, appending
// to out.
func unsnappy(src []byte, limit int, out []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return unsnappyBlock(out, src, limit)
	}
	// Magic, then version and minimum compatible version (int32 each),
	// then blocks of a big-endian int32 length and a snappy block.
	if len(src) < 16 {
		return nil, fmt.Errorf("xerial header cut short")
	}
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, fmt.Errorf("xerial block length cut short")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, fmt.Errorf("xerial block of %d bytes, %d left", n, len(rest)-4)
		}
		var err error
		if out, err = unsnappyBlock(out, rest[4:4+n], limit); err != nil {
			return nil, err
		}
		rest = rest[4+n:]
	}
	return out, nil
}

// maxSnappyRatio bounds what a snappy block decodes to, per byte of the
// block: the most any element yields is 64 bytes for 3 (a copy with a
// two-byte offset). S2's extensions, which s2.Decode also reads, expand
// further, but no Kafka client sends them.
const maxSnappyRatio = 22

// unsnappyBlock appends one decoded snappy block to dst, checking its
// declared size against what limit leaves, and against what the block
// can hold, before allocating: the size is the block's first bytes, and a
// handful of them must not make the server allocate limit bytes.
func unsnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit-len(dst) {
		return nil, errDecodedTooLarge
	}
	if n > maxSnappyRatio*len(block) {
		return nil, fmt.Errorf("a block of %d bytes claims to decode to %d", len(block), n)
	}
	out := slices.Grow(dst, n)
	dec, err := s2.Decode(out[len(dst):len(dst)+n], block)
	if err != nil {
		return nil, err
	}
	return out[:len(dst)+len(dec)], nil
}

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	// DecodeAll is safe for concurrent use. The memory cap also bounds
	// what a frame may claim as its content size.
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecodedBatch))
	if err != nil {
		panic(err) // only for invalid options, which these are not
	}
	return d
})
