package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// discardConn is a net.Conn whose writes go nowhere: the fuzz target
// calls the request handler directly.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (discardConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092} }
func (discardConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (discardConn) Close() error { return nil }
func (discardConn) SetReadDeadline(time.Time) error {
	return nil
}

// frameBody encodes a request as the body of a frame (header and request).
func frameBody(req kmsg.Request) []byte {
	var b []byte
	b = kbin.AppendInt16(b, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, 7)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("fuzz"))
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// seedBatches returns a produced batch in each codec, as franz-go writes
// them.
func seedBatches(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		out = append(out, encodeBatch(t, c, sampleRecords("f", 6)))
	}
	return out
}

// encodeBatch builds a RecordBatch the way a producer does, compressed.
func encodeBatch(t testing.TB, c kgo.CompressionCodec, recs []*kgo.Record) []byte {
	var b batchBuilder
	for i, r := range recs {
		b.add(&runnel.Record{Key: r.Key, Value: r.Value, Time: r.Timestamp, Offset: int64(i), Headers: toHeaders(r.Headers)})
	}
	raw := b.finish()
	return compressBatch(t, raw, c)
}

// compressBatch compresses an uncompressed batch's records with the codec
// and fixes its header, as a producer would have written it.
func compressBatch(t testing.TB, raw []byte, c kgo.CompressionCodec) []byte {
	var id codec
	switch c {
	case kgo.NoCompression():
		return raw
	case kgo.GzipCompression():
		id = codecGzip
	case kgo.SnappyCompression():
		id = codecSnappy
	case kgo.Lz4Compression():
		id = codecLZ4
	case kgo.ZstdCompression():
		id = codecZstd
	}
	body := raw[batchHeaderSize:]
	var out bytes.Buffer
	switch id {
	case codecGzip:
		w := gzip.NewWriter(&out)
		w.Write(body)
		w.Close()
	case codecSnappy:
		out.Write(s2.EncodeSnappy(nil, body))
	case codecLZ4:
		w := lz4.NewWriter(&out)
		w.Write(body)
		w.Close()
	case codecZstd:
		w, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
		w.Close()
	}
	b := append(bytes.Clone(raw[:batchHeaderSize]), out.Bytes()...)
	binary.BigEndian.PutUint16(b[batchAttrOff:], uint16(id))
	binary.BigEndian.PutUint32(b[batchLengthOff:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrOff:], crc32c))
	return b
}

func toHeaders(hs []kgo.RecordHeader) []runnel.Header {
	var out []runnel.Header
	for _, h := range hs {
		out = append(out, runnel.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

func FuzzRequest(f *testing.F) {
	dir := f.TempDir()
	l, err := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("f", runnel.TopicConfig{Partitions: 2}); err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(l, &Options{MaxRequestBytes: 1 << 20, AutoCreateTopics: true})
	if err != nil {
		f.Fatal(err)
	}
	// Waits (long polls, group joins) end at once.
	s.cancel()
	defer s.Close()

	for _, batch := range seedBatches(f) {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "f"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		body := frameBody(req)
		f.Add(body)
		f.Add(body[:len(body)/2])
		f.Add(append(bytes.Clone(body), 0xde, 0xad))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("f")}}
	f.Add(frameBody(md))
	fr := kmsg.NewPtrFetchRequest()
	fr.Version, fr.MaxBytes = 11, 1<<20
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "f", Partitions: []kmsg.FetchRequestTopicPartition{{PartitionMaxBytes: 1 << 20}}}}
	f.Add(frameBody(fr))
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Version, jg.Group, jg.SessionTimeoutMillis, jg.ProtocolType = 7, "g", 10000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: (&kmsg.ConsumerMemberMetadata{Topics: []string{"f"}}).AppendTo(nil)}}
	f.Add(frameBody(jg))
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "made", NumPartitions: 1, ReplicationFactor: 1}}
	f.Add(frameBody(ct))
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.Generation = 8, "g", -1
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "f", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 0}}}}
	f.Add(frameBody(oc))
	f.Add(frameBody(kmsg.NewPtrApiVersionsRequest()))
	static := kmsg.NewPtrJoinGroupRequest()
	*static = *jg
	static.InstanceID = kmsg.StringPtr("i")
	f.Add(frameBody(static))
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Version, lg.Group = 4, "g"
	lg.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: kmsg.StringPtr("i")}}
	f.Add(frameBody(lg))
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Version = 1
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "f",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.bytes", Value: kmsg.StringPtr("1048576")}}}}
	f.Add(frameBody(iac))
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Version = 2
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "f",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}}}
	f.Add(frameBody(ac))
	ld := kmsg.NewPtrDescribeLogDirsRequest()
	ld.Version = 4
	f.Add(frameBody(ld))

	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 8 {
			return // the connection loop refuses these before decoding
		}
		c := newConn(s, discardConn{})
		defer c.fetch.close()
		written := make(chan struct{})
		go func() {
			c.writeLoop()
			close(written)
		}()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c.handle(body)
		close(c.queue)
		<-written
		runtime.ReadMemStats(&after)
		// Decoding is bounded by the request: kmsg checks every array
		// length against the bytes left, and a compressed batch may
		// inflate to at most one runnel frame.
		// Under -race, pooled decompression buffers (lz4's 4 MiB blocks)
		// are dropped and made again at random: one more frame's worth.
		bound := uint64(64*len(body)) + uint64(2*maxDecodedBatch)
		if raceEnabled {
			bound += maxDecodedBatch
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
			t.Fatalf("a %d-byte request allocated %d bytes", len(body), grew)
		}
	})
}

// readAll reads a batch with readBatch into records of their own.
func readAll(b []byte, maxDecoded int, now time.Time) (batchInfo, []runnel.Record, error) {
	var recs []runnel.Record
	info, err := readBatch(b, maxDecoded, now, nil, func(r *batchRecord) error {
		c := runnel.Record{Key: bytes.Clone(r.key), Value: bytes.Clone(r.value), Time: time.Unix(0, r.time)}
		for _, h := range r.headers {
			c.Headers = append(c.Headers, runnel.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
		}
		recs = append(recs, c)
		return nil
	})
	return info, recs, err
}

// FuzzReadBatch feeds the produce path's batch decoder: no panic, and a
// batch it accepts re-encodes to records that decode the same.
func FuzzReadBatch(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
		f.Add(b[:len(b)-3])
		f.Add(append(bytes.Clone(b), 1, 2, 3))
	}
	now := time.UnixMilli(42)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, recs, err := readAll(b, 1<<20, now)
		if err != nil {
			return
		}
		if int(info.count) != len(recs) {
			t.Fatalf("count %d, %d records", info.count, len(recs))
		}
		var bb batchBuilder
		for i := range recs {
			recs[i].Offset = int64(i)
			bb.add(&recs[i])
		}
		_, again, err := readAll(bb.finish(), 1<<20, now)
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v", err)
		}
		for i := range again {
			again[i].Offset = int64(i)
		}
		if diff := cmp.Diff(recs, again, nilAware, timeEqual); diff != "" {
			t.Fatalf("re-encoded batch differs:\n%s", diff)
		}
	})
}

// TestDecompressionIsBounded: a small batch that would inflate past the
// limit is refused as too large, in every codec, without inflating it.
func TestDecompressionIsBounded(t *testing.T) {
	big := []*kgo.Record{{Value: make([]byte, 3<<20), Timestamp: time.UnixMilli(1)}}
	for _, c := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		b := encodeBatch(t, c, big)
		if len(b) > 1<<20 {
			t.Fatalf("compressed batch is %d bytes", len(b))
		}
		_, _, err := readAll(b, 1<<20, time.Now())
		if produceErrorCode(err) != produceErrorCode(errTooLarge) {
			t.Errorf("codec %d: %v, want too large", binary.BigEndian.Uint16(b[batchAttrOff:]), err)
		}
		if _, recs, err := readAll(b, 4<<20, time.Now()); err != nil || len(recs[0].Value) != 3<<20 {
			t.Errorf("codec %d within the limit: %v", binary.BigEndian.Uint16(b[batchAttrOff:]), err)
		}
	}
}
