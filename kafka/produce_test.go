package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sampleRecords covers what must survive the trip: nil and empty keys and
// values kept apart, headers (one with a nil value), millisecond
// timestamps.
func sampleRecords(topic string, n int) []*kgo.Record {
	base := time.UnixMilli(1_700_000_000_123)
	var recs []*kgo.Record
	for i := range n {
		r := &kgo.Record{Topic: topic, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		switch i % 4 {
		case 0:
			r.Key, r.Value = []byte(fmt.Sprintf("key-%d", i)), []byte(fmt.Sprintf("value-%d", i))
		case 1:
			r.Key, r.Value = nil, []byte{}
		case 2:
			r.Key, r.Value = []byte{}, nil
			r.Headers = []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "empty", Value: []byte{}}, {Key: "nil", Value: nil}}
		case 3:
			r.Key, r.Value = []byte("k"), []byte(fmt.Sprintf("%0200d", i))
		}
		recs = append(recs, r)
	}
	return recs
}

// asNative is what a Kafka record should look like when read with the Go
// API.
func asNative(r *kgo.Record) runnel.Record {
	out := runnel.Record{Key: r.Key, Value: r.Value, Time: r.Timestamp, Partition: int(r.Partition), Offset: r.Offset}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, runnel.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// nilAware compares byte slices telling nil from empty.
var nilAware = cmp.Comparer(func(a, b []byte) bool {
	return (a == nil) == (b == nil) && string(a) == string(b)
})

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestProduceIdempotentEveryCodec(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	ts := startServer(t, nil)
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			ts.createTopic(topic, 1)
			cl := ts.client(kgo.ProducerBatchCompression(tc.codec), kgo.DefaultProduceTopic(topic))
			want := sampleRecords(topic, 40)
			if err := cl.ProduceSync(context.Background(), want...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var wantNative []runnel.Record
			for i, r := range want {
				if r.Offset != int64(i) {
					t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
				}
				if r.ProducerID < 0 {
					t.Fatalf("record %d not produced idempotently (producer id %d)", i, r.ProducerID)
				}
				wantNative = append(wantNative, asNative(r))
			}
			got := readNative(t, ts.log, topic, len(want))
			if diff := cmp.Diff(wantNative, got, nilAware, timeEqual); diff != "" {
				t.Errorf("records read with the Go API differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProduceAcks(t *testing.T) {
	ts := startServer(t, nil)
	for _, acks := range []struct {
		name string
		acks kgo.Acks
	}{{"none", kgo.NoAck()}, {"leader", kgo.LeaderAck()}, {"all", kgo.AllISRAcks()}} {
		t.Run(acks.name, func(t *testing.T) {
			topic := "acks-" + acks.name
			ts.createTopic(topic, 2)
			cl := ts.client(kgo.RequiredAcks(acks.acks), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic(topic))
			var want []*kgo.Record
			for i := range 100 {
				want = append(want, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")})
			}
			if err := cl.ProduceSync(context.Background(), want...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// With acks=0 the client learns nothing: wait for the data.
			got := readNative(t, ts.log, topic, len(want))
			if len(got) != len(want) {
				t.Fatalf("%d records stored, want %d", len(got), len(want))
			}
		})
	}
}

// TestAcksZeroFailureClosesConnection: an acks=0 request gets no answer,
// so one that fails closes its connection, as Kafka does, for the client
// to notice; one that succeeds leaves it open.
func TestAcksZeroFailureClosesConnection(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("zero", 1)
	rc := ts.raw()
	ok := produceBatch("zero", 0, -1, -1, -1, "v", 9)
	ok.Acks = 0
	rc.send(ok)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	// Answered, and first (read checks the correlation id): the produce
	// got no answer, and the connection is open.
	rc.request(md)
	if got := readNative(t, ts.log, "zero", 1); len(got) != 1 {
		t.Fatalf("%d records stored, want 1", len(got))
	}
	for _, bad := range []func(*kmsg.ProduceRequest){
		func(r *kmsg.ProduceRequest) { r.Topics[0].Topic = "missing" },
		func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Partition = 5 },
		func(r *kmsg.ProduceRequest) { r.TransactionID = kmsg.StringPtr("txn") },
	} {
		req := produceBatch("zero", 0, -1, -1, -1, "v", 9)
		req.Acks = 0
		bad(req)
		rc := ts.raw()
		rc.send(req)
		if !rc.closed() {
			t.Errorf("a failed acks=0 produce (%s/%d) left the connection open", req.Topics[0].Topic, req.Topics[0].Partitions[0].Partition)
		}
	}
}

// initProducer asks for an idempotent producer id and epoch.
func (rc *rawConn) initProducer() (int64, int16) {
	rc.t.Helper()
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	ir := rc.request(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 || ir.ProducerID < 0 {
		rc.t.Fatalf("InitProducerId: code %d id %d", ir.ErrorCode, ir.ProducerID)
	}
	return ir.ProducerID, ir.ProducerEpoch
}

// produceBatch builds a one-record idempotent produce request by hand.
func produceBatch(topic string, partition int32, pid int64, epoch int16, seq int32, value string, version int16) *kmsg.ProduceRequest {
	var b batchBuilder
	b.add(&runnel.Record{Value: []byte(value), Time: time.UnixMilli(1000)})
	raw := b.finish()
	// A producer's batch carries its id, epoch and first sequence.
	raw = setBatchProducer(raw, pid, epoch, seq)
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceCode(t *testing.T, resp kmsg.Response) (int16, int64) {
	t.Helper()
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("response has %d topics", len(pr.Topics))
	}
	p := pr.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func TestIdempotentRetryStoredOnce(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("idem", 1)
	rc := ts.raw()
	pid, epoch := rc.initProducer()
	steps := []struct {
		seq      int32
		value    string
		wantCode int16
		wantOff  int64
	}{
		{0, "a", 0, 0},
		{1, "b", 0, 1},
		{1, "b", 0, 1}, // a retry: the original offset, not stored again
		{0, "a", 0, 0}, // an older retry, still in the window
		{3, "d", kerr.OutOfOrderSequenceNumber.Code, -1},
		{2, "c", 0, 2},
	}
	for i, s := range steps {
		code, off := produceCode(t, rc.request(produceBatch("idem", 0, pid, epoch, s.seq, s.value, 9)))
		if code != s.wantCode || s.wantCode == 0 && off != s.wantOff {
			t.Fatalf("step %d (seq %d): code %d offset %d, want code %d offset %d", i, s.seq, code, off, s.wantCode, s.wantOff)
		}
	}
	got := readNative(t, ts.log, "idem", 3)
	for i, want := range []string{"a", "b", "c"} {
		if string(got[i].Value) != want {
			t.Errorf("offset %d holds %q, want %q", i, got[i].Value, want)
		}
	}
	if st := ts.srv.Stats(); st.DuplicateBatches != 2 {
		t.Errorf("Stats.DuplicateBatches = %d, want the 2 retries", st.DuplicateBatches)
	}
	// A stale epoch is fenced.
	code, _ := produceCode(t, rc.request(produceBatch("idem", 0, pid, epoch-1, 3, "x", 9)))
	if code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("stale epoch: code %d, want INVALID_PRODUCER_EPOCH", code)
	}
}

// TestNewEpochStartsAtZero: after a producer's epoch moves on by a batch
// of the newer epoch, its next batch on a partition where it had stored
// batches must start at sequence 0, as Kafka has it (OUT_OF_ORDER_SEQUENCE_NUMBER
// otherwise: the new epoch's first batches were not stored); on a
// partition new to it, and for a producer the server does not know, the
// first batch is taken as is.
func TestNewEpochStartsAtZero(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("epochs", 3)
	rc := ts.raw()
	pid, epoch := rc.initProducer()
	ooo := kerr.OutOfOrderSequenceNumber.Code
	produceSteps(t, rc, "epochs", pid, []epochStep{
		{0, epoch, 0, 0}, {0, epoch, 1, 0}, {1, epoch, 0, 0},
		{0, epoch + 1, 2, ooo}, // the newer epoch, not from 0
		{0, epoch + 1, 0, 0},
		{1, epoch + 1, 1, ooo}, // partition 1 had batches of the older one too
		{1, epoch + 1, 0, 0},
		{2, epoch + 1, 4, 0}, // a partition it never wrote
	})
	// Never handed out: a producer the server does not know.
	produceSteps(t, rc, "epochs", 1<<40, []epochStep{{0, 0, 7, 0}, {0, 0, 8, 0}})
}

// TestEpochsPerPartition: a producer's epoch moves on per partition, as
// Kafka's brokers keep it, and InitProducerId hands out a new id even to
// a producer that names its own, as Kafka does without a transactional id.
// franz-go relies on both: after an epoch bump it sends a batch whose
// outcome it does not know again under the old epoch and sequence (its
// batch "pin"), and renumbers it under the new epoch if that is refused,
// which would store it twice.
func TestEpochsPerPartition(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("parts", 2)
	rc := ts.raw()
	pid, epoch := rc.initProducer()
	fenced, ooo := kerr.InvalidProducerEpoch.Code, kerr.OutOfOrderSequenceNumber.Code
	produceSteps(t, rc, "parts", pid, []epochStep{
		{0, epoch, 0, 0}, // offset 0 of partition 0
		{1, epoch, 0, 0}, // offset 0 of partition 1
		{0, epoch + 1, 0, 0},
		{1, epoch, 0, 0},      // a retry where the older epoch still holds: answered
		{1, epoch, 1, 0},      // and the older epoch carries on there
		{0, epoch, 1, fenced}, // but not where the newer one arrived
		{1, epoch + 1, 5, ooo},
		{1, epoch, 2, 0}, // a refused batch of the newer epoch moved nothing
	})
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.ProducerID, init.ProducerEpoch = 4, pid, epoch+1
	ir := rc.request(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 || ir.ProducerID == pid || ir.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId naming the producer: code %d, id %d epoch %d; want a new id at epoch 0", ir.ErrorCode, ir.ProducerID, ir.ProducerEpoch)
	}
	produceSteps(t, rc, "parts", pid, []epochStep{{1, epoch, 1, 0}}) // the old id's retry, still answered
	produceSteps(t, rc, "parts", ir.ProducerID, []epochStep{{0, 0, 0, 0}, {1, 0, 0, 0}})
	// Each batch taken once: 3 on partition 0, 4 on partition 1.
	perPart := map[int]int{}
	for _, r := range readNative(t, ts.log, "parts", 7) {
		perPart[r.Partition]++
	}
	if perPart[0] != 3 || perPart[1] != 4 {
		t.Errorf("records per partition: %v, want 3 and 4", perPart)
	}
}

// epochStep is a batch of one record a producer sends to a partition,
// at an epoch and sequence, and the error code it must get.
type epochStep struct {
	partition int32
	epoch     int16
	seq       int32
	wantCode  int16
}

func produceSteps(t *testing.T, rc *rawConn, topic string, pid int64, steps []epochStep) {
	t.Helper()
	for i, s := range steps {
		if code, _ := produceCode(t, rc.request(produceBatch(topic, s.partition, pid, s.epoch, s.seq, "v", 9))); code != s.wantCode {
			t.Fatalf("producer %d, step %d (partition %d, epoch %d, seq %d): code %d, want %d", pid, i, s.partition, s.epoch, s.seq, code, s.wantCode)
		}
	}
}

// TestProducerStatesNewEpoch: at a new epoch, a batch in flight behind
// the first one (which starts at 0) is taken; a partition's journal gives
// the producer its epoch there, which a batch of a newer epoch moves on
// (from 0) and one of an older epoch cannot.
func TestProducerStatesNewEpoch(t *testing.T) {
	var ps producerStates
	ps.init()
	tp, other, newer := topicPartition{topic: "t"}, topicPartition{topic: "t", partition: 1}, topicPartition{topic: "t", partition: 2}
	b, _, _ := ps.begin(1, 0, tp, 0, 5)
	ps.finish(b, 0, 0)
	if _, _, code := ps.begin(1, 1, tp, 0, 5); code != 0 {
		t.Fatalf("the new epoch's first batch: code %d", code)
	}
	if _, _, code := ps.begin(1, 1, tp, 5, 5); code != 0 {
		t.Fatalf("a second batch in flight at the new epoch: code %d", code)
	}
	now := time.Now().UnixNano()
	ps.load(other, map[int64]*foldedProducer{1: {epoch: 0, lastUsed: now, batches: []journalEntry{stored(1, 0, 0, 3, 9, time.Now())}}})
	if _, _, code := ps.begin(1, 1, other, 3, 1); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("after a journal of the older epoch, seq 3 at the newer: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	ps.load(newer, map[int64]*foldedProducer{1: {epoch: 2, lastUsed: now, batches: []journalEntry{stored(1, 2, 0, 2, 7, time.Now())}}})
	if _, _, code := ps.begin(1, 1, newer, 2, 1); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("epoch 1 after a journal of epoch 2: code %d, want INVALID_PRODUCER_EPOCH", code)
	}
	if b, dup, code := ps.begin(1, 2, newer, 0, 2); !dup || code != 0 || b.base != 7 {
		t.Errorf("a retry of the newer epoch's loaded batch: dup %v code %d", dup, code)
	}
}

func TestProduceErrors(t *testing.T) {
	ts := startServer(t, &Options{MaxMessageBytes: 1000})
	ts.createTopic("t", 1)
	rc := ts.raw()

	code, _ := produceCode(t, rc.request(produceBatch("missing", 0, -1, -1, -1, "x", 9)))
	if code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: code %d", code)
	}
	code, _ = produceCode(t, rc.request(produceBatch("t", 5, -1, -1, -1, "x", 9)))
	if code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: code %d", code)
	}
	code, _ = produceCode(t, rc.request(produceBatch("t", 0, -1, -1, -1, string(make([]byte, 2000)), 9)))
	if code != kerr.MessageTooLarge.Code {
		t.Errorf("oversized batch: code %d", code)
	}
	bad := produceBatch("t", 0, -1, -1, -1, "x", 9)
	bad.Topics[0].Partitions[0].Records[len(bad.Topics[0].Partitions[0].Records)-1] ^= 0xff
	code, _ = produceCode(t, rc.request(bad))
	if code != kerr.CorruptMessage.Code {
		t.Errorf("bad CRC: code %d", code)
	}
	code, _ = produceCode(t, rc.request(produceBatch("t", 0, -1, -1, -1, "x", 2)))
	if code != kerr.UnsupportedVersion.Code {
		t.Errorf("produce v2: code %d, want UNSUPPORTED_VERSION", code)
	}
	// Kafka's timestamps are milliseconds; runnel's nanoseconds hold the
	// years 1678 to 2262 only.
	for _, at := range []time.Time{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)} {
		p := producePartition(t, rc, "t", encodeBatch(t, kgo.NoCompression(), []*kgo.Record{{Value: []byte("x"), Timestamp: at}}))
		if p.ErrorCode != kerr.InvalidTimestamp.Code {
			t.Errorf("a record of %d: code %d, want INVALID_TIMESTAMP", at.Year(), p.ErrorCode)
		}
		if says := "outside the years 1678 to 2262"; p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, says) {
			t.Errorf("a record of %d: error message %s, want one saying %q", at.Year(), orNull(p.ErrorMessage), says)
		}
	}
	// Nothing of the above was stored; a good batch still is.
	code, off := produceCode(t, rc.request(produceBatch("t", 0, -1, -1, -1, "ok", 9)))
	if code != 0 || off != 0 {
		t.Errorf("good batch: code %d offset %d", code, off)
	}
}

// setBatchProducer stamps a batch with a producer id, epoch and first
// sequence, and recomputes its CRC.
func setBatchProducer(b []byte, pid int64, epoch int16, seq int32) []byte {
	binary.BigEndian.PutUint64(b[batchProducerIDOff:], uint64(pid))
	binary.BigEndian.PutUint16(b[batchEpochOff:], uint16(epoch))
	binary.BigEndian.PutUint32(b[batchFirstSeqOff:], uint32(seq))
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrOff:], crc32c))
	return b
}

// produceRaw sends one acks=-1 batch as it is to topic's partition 0 and
// returns the partition's error code and base offset.
func produceRaw(t *testing.T, rc *rawConn, topic string, batch []byte) (int16, int64) {
	t.Helper()
	p := producePartition(t, rc, topic, batch)
	return p.ErrorCode, p.BaseOffset
}

// producePartition is produceRaw, returning the partition's whole answer.
func producePartition(t *testing.T, rc *rawConn, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	return producePartitionAt(t, rc, topic, batch, 9)
}

// producePartitionAt is producePartition at a Produce version.
func producePartitionAt(t *testing.T, rc *rawConn, topic string, batch []byte, version int16) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	pr := rc.request(req).(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("response has %d topics", len(pr.Topics))
	}
	return pr.Topics[0].Partitions[0]
}

// TestProduceBatchIsOneFrame: on a Log with default options, a batch that
// decompresses far past the Log's MaxBatchBytes (1 MiB) is stored whole
// as one frame; one that would not fit in a frame is refused with
// MESSAGE_TOO_LARGE and stores nothing.
func TestProduceBatchIsOneFrame(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("big", 1)
	rc := ts.raw()
	batchOf := func(n, size int) []byte {
		var recs []*kgo.Record
		for i := range n {
			v := append(fmt.Appendf(nil, "%08d", i), make([]byte, size-8)...)
			recs = append(recs, &kgo.Record{Value: v, Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
		}
		return encodeBatch(t, kgo.ZstdCompression(), recs)
	}

	batch := batchOf(4000, 1000) // 4 MB of records, a few KB compressed
	if len(batch) > defaultMaxMessageBytes {
		t.Fatalf("compressed batch is %d bytes", len(batch))
	}
	frames := ts.log.Stats().FramesWritten
	if code, off := produceRaw(t, rc, "big", batch); code != 0 || off != 0 {
		t.Fatalf("4 MB batch: code %d offset %d", code, off)
	}
	if n := ts.log.Stats().FramesWritten - frames; n != 1 {
		t.Errorf("the batch took %d frames, want 1", n)
	}
	got := readNative(t, ts.log, "big", 4000)
	for i, r := range got {
		if want := fmt.Sprintf("%08d", i); string(r.Value[:8]) != want || len(r.Value) != 1000 {
			t.Fatalf("offset %d holds %.8q (%d bytes), want %q", i, r.Value, len(r.Value), want)
		}
	}

	// Over one frame once decompressed: refused before it is inflated
	// further, and nothing is stored.
	if code, _ := produceRaw(t, rc, "big", batchOf(runnel.MaxFrameBytes/1000+100, 1000)); code != kerr.MessageTooLarge.Code {
		t.Errorf("batch over one frame: code %d, want MESSAGE_TOO_LARGE", code)
	}
	if code, off := produceRaw(t, rc, "big", batchOf(1, 10)); code != 0 || off != 4000 {
		t.Errorf("next batch: code %d offset %d, want offset 4000", code, off)
	}
}

// TestProduceAfterUncompressedBatch: a connection reads each Produce
// request into the last one's buffer, so memory of a request must never
// become the decompression buffer. An uncompressed batch, then the same
// records compressed, each codec, on one connection: every batch is
// stored as sent (franz-go sends a batch uncompressed when compressing
// does not shrink it, so a producer mixes the two).
func TestProduceAfterUncompressedBatch(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("mixed", 1)
	rc := ts.raw()
	var recs []*kgo.Record
	for i := range 300 {
		v := append(fmt.Appendf(nil, "%08d", i), bytes.Repeat([]byte{'v'}, 492)...)
		recs = append(recs, &kgo.Record{Value: v, Timestamp: time.UnixMilli(1_700_000_000_000)})
	}
	var want int64
	for _, c := range []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.GzipCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		for _, batch := range [][]byte{encodeBatch(t, kgo.NoCompression(), recs), encodeBatch(t, c, recs)} {
			if code, off := produceRaw(t, rc, "mixed", batch); code != 0 || off != want {
				t.Fatalf("%v after an uncompressed batch: code %d offset %d, want offset %d\n%s", c, code, off, want, ts.logs.String())
			}
			want += int64(len(recs))
		}
	}
	for i, r := range readNative(t, ts.log, "mixed", int(want)) {
		if !bytes.Equal(r.Value, recs[i%len(recs)].Value) {
			t.Fatalf("offset %d holds %.12q, want %.12q", i, r.Value, recs[i%len(recs)].Value)
		}
	}
}

// TestProduceWaitEarlyResult: a partition acknowledged before the next
// partition of the same request is added (a fast commit on the writer
// goroutine) does not complete the request, and the last result completes
// it once. The count reached zero after the first result, and the second
// closed the done channel again: a panic on the partition's writer
// goroutine, seen in CI.
func TestProduceWaitEarlyResult(t *testing.T) {
	parts := make([]kmsg.ProduceResponseTopicPartition, 2)
	pw := newProduceWait()
	first := pw.add(&parts[0])
	first(7, 0, nil)
	select {
	case <-pw.done:
		t.Fatal("the request completed with one of its two partitions acknowledged")
	default:
	}
	second := pw.add(&parts[1])
	pw.added()
	second(9, 0, nil)
	second(9, 0, nil) // a late duplicate is dropped
	pw.wait(time.Minute)
	if parts[0].BaseOffset != 7 || parts[1].BaseOffset != 9 {
		t.Fatalf("base offsets %d and %d, want 7 and 9", parts[0].BaseOffset, parts[1].BaseOffset)
	}

	// A request with no partition to wait for is complete at once.
	empty := newProduceWait()
	empty.added()
	empty.wait(time.Minute)
}

// TestProduceAcksDurable: on a Durable log, acks=all is acknowledged only
// once an fdatasync covers the record (the partition's durable offset,
// which moves only after one, is past it at every acknowledgement), and
// acks=1 once the record is committed (the partition's end is past it).
func TestProduceAcksDurable(t *testing.T) {
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Durable})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, l, nil)
	ts.createTopic("dur", 1)
	all := ts.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("dur"))
	leader := ts.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("dur"))
	durable := func() int64 {
		for _, ps := range l.Stats().Partitions {
			if ps.Topic == "dur" {
				return ps.DurableOffset
			}
		}
		t.Fatal("no stats for the partition")
		return 0
	}
	for i := range 20 {
		r, err := all.ProduceSync(context.Background(), &kgo.Record{Value: []byte(fmt.Sprint("all ", i))}).First()
		if err != nil {
			t.Fatal(err)
		}
		if d := durable(); d <= r.Offset {
			t.Fatalf("acks=all acknowledged offset %d with the durable offset at %d", r.Offset, d)
		}
		r, err = leader.ProduceSync(context.Background(), &kgo.Record{Value: []byte(fmt.Sprint("one ", i))}).First()
		if err != nil {
			t.Fatal(err)
		}
		if _, end, err := l.PartitionOffsets("dur", 0); err != nil || end <= r.Offset {
			t.Fatalf("acks=1 acknowledged offset %d with the partition ending at %d (%v)", r.Offset, end, err)
		}
	}
}

// TestProduceInvalidRecord: a batch Kafka's checks refuse as malformed
// rather than damaged gets INVALID_RECORD, as from Kafka, which clients
// fail at once; CORRUPT_MESSAGE, which Java's producer retries as damage
// in transit, is kept for a checksum that does not match, a magic byte
// no Kafka knows, a length no batch has and a whole batch shorter than
// its header. A record set without a whole batch (none, or one cut
// short) is INVALID_RECORD, as Kafka's "must have at least one record
// batch". Nothing refused is stored. An INVALID_RECORD carries an
// error message (v8+) that says which check failed, as Kafka's answer to
// a batch its validation refuses does, and Java's producer shows.
func TestProduceInvalidRecord(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 1)
	rc := ts.raw()
	batch := func() []byte {
		var b batchBuilder
		b.add(&runnel.Record{Value: []byte("x"), Time: time.UnixMilli(1000)})
		return b.finish()
	}
	resum := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrOff:], crc32c))
		return b
	}
	withAttrs := func(attrs uint16) []byte {
		b := batch()
		binary.BigEndian.PutUint16(b[batchAttrOff:], binary.BigEndian.Uint16(b[batchAttrOff:])|attrs)
		return resum(b)
	}
	withMagic := func(m byte) []byte { b := batch(); b[batchMagicOff] = m; return b }
	withCount := func(count, lastDelta int32) []byte {
		b := batch()
		binary.BigEndian.PutUint32(b[batchCountOff:], uint32(count))
		binary.BigEndian.PutUint32(b[batchLastDeltaOff:], uint32(lastDelta))
		return resum(b)
	}
	trailing := func() []byte {
		b := append(batch(), 0, 0, 0)
		binary.BigEndian.PutUint32(b[batchLengthOff:], uint32(len(b)-12))
		return resum(b)
	}
	withLength := func(length uint32) []byte {
		b := batch()
		binary.BigEndian.PutUint32(b[batchLengthOff:], length)
		return b
	}
	badRecord := func() []byte {
		b := batch()
		b[batchHeaderSize] = 0x7e // the record's length, zigzag 63: past the batch
		return resum(b)
	}
	for _, c := range []struct {
		name  string
		batch []byte
		want  error
		says  string // in the error message
	}{
		{"magic 1", withMagic(1), kerr.InvalidRecord, "magic 1 (only RecordBatch v2"},
		{"magic 3", withMagic(3), kerr.CorruptMessage, ""},
		{"no records", nil, kerr.InvalidRecord, "0 bytes, no record batch"},
		{"a record set shorter than a batch's length and magic", batch()[:batchMagicOff], kerr.InvalidRecord, "no record batch"},
		{"a batch cut short in its header", batch()[:40], kerr.InvalidRecord, "batch length"},
		{"a batch cut short in its records", batch()[:batchHeaderSize+1], kerr.InvalidRecord, "batch length"},
		{"a length no batch has", withLength(5), kerr.CorruptMessage, ""},
		{"a length past the records, magic 3", withMagic(3)[:40], kerr.CorruptMessage, ""},
		{"two batches", append(batch(), batch()...), kerr.InvalidRecord, "(one batch per partition)"},
		{"a control batch", withAttrs(attrControl), kerr.InvalidRecord, "control batches"},
		{"a count the offsets disagree with", withCount(2, 0), kerr.InvalidRecord, "2 records, last offset delta 0"},
		{"more records than bytes", withCount(2, 1), kerr.InvalidRecord, "2 records in"},
		{"bytes after the last record", trailing(), kerr.InvalidRecord, "3 bytes after the last record"},
		{"a record past the batch", badRecord(), kerr.InvalidRecord, "record 0: record length 63"},
		{"a producer id without a sequence", setBatchProducer(batch(), 5, 0, -1), kerr.InvalidRecord, "producer id 5 with sequence -1"},
	} {
		p := producePartition(t, rc, "t", c.batch)
		if kerr.ErrorForCode(p.ErrorCode) != c.want {
			t.Errorf("%s: %v, want %v", c.name, kerr.ErrorForCode(p.ErrorCode), c.want)
		}
		if c.says != "" && (p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, c.says)) {
			t.Errorf("%s: error message %s, want one saying %q", c.name, orNull(p.ErrorMessage), c.says)
		}
	}
	if _, end, err := ts.log.PartitionOffsets("t", 0); err != nil || end != 0 {
		t.Errorf("the partition ends at %d (%v), want 0", end, err)
	}
}

// TestProduceRecordErrors: a batch refused for the times of some of its
// records names each of them in the answer's record errors (Produce v8+,
// KIP-467), by its index in the batch and with why, as Kafka's broker
// names every record its timestamp checks refuse; Java's producer tells
// its caller which records were at fault from them. There were none.
func TestProduceRecordErrors(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 1)
	rc := ts.raw()
	late, ok := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMilli(1000)
	batch := encodeBatch(t, kgo.NoCompression(), []*kgo.Record{
		{Value: []byte("a"), Timestamp: late}, {Value: []byte("b"), Timestamp: ok}, {Value: []byte("c"), Timestamp: late},
	})
	for _, version := range []int16{7, 8, 9} {
		p := producePartitionAt(t, rc, "t", batch, version)
		if p.ErrorCode != kerr.InvalidTimestamp.Code {
			t.Errorf("v%d: code %d, want INVALID_TIMESTAMP", version, p.ErrorCode)
		}
		var got []string
		for _, e := range p.ErrorRecords {
			got = append(got, fmt.Sprintf("%d: %s", e.RelativeOffset, orNull(e.ErrorMessage)))
		}
		var want []string
		if version >= 8 {
			for _, i := range []int{0, 2} {
				want = append(want, fmt.Sprintf("%d: %q", i, fmt.Sprintf("record %d at %d ms, outside the years 1678 to 2262 a runnel timestamp holds", i, late.UnixMilli())))
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("v%d: record errors (-want +got):\n%s", version, diff)
		}
	}
	if _, end, err := ts.log.PartitionOffsets("t", 0); err != nil || end != 0 {
		t.Errorf("the partition ends at %d (%v), want 0", end, err)
	}
}

// TestProduceBaseOffsetIgnored: a produced batch's base offset is the
// client's to leave at 0 but not the server's to check: Kafka's broker
// takes a v2 batch with any base offset (its validation checks only that
// the offsets' range matches the count, which the base cancels out of)
// and gives its records the partition's next offsets, rewriting a
// compressed batch whose inner offsets then differ from its own. So does
// the server, compressed or not, with a base at the far end of int64 too.
func TestProduceBaseOffsetIgnored(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 1)
	rc := ts.raw()
	var want []string
	next := int64(0)
	for _, base := range []int64{1000, -1, math.MaxInt64} {
		for codec, name := range map[kgo.CompressionCodec]string{kgo.NoCompression(): "none", kgo.SnappyCompression(): "snappy"} {
			var recs []*kgo.Record
			for i := range 2 {
				v := fmt.Sprintf("base %d %s %d", base, name, i)
				recs = append(recs, &kgo.Record{Value: []byte(v), Timestamp: time.UnixMilli(1000)})
				want = append(want, fmt.Sprintf("%d %s", next+int64(i), v))
			}
			batch := encodeBatch(t, codec, recs)
			binary.BigEndian.PutUint64(batch, uint64(base))
			if code, off := produceRaw(t, rc, "t", batch); code != 0 || off != next {
				t.Errorf("base offset %d, %s: code %d, offset %d; want 0, %d", base, name, code, off, next)
			}
			next += 2
		}
	}
	var got []string
	for _, r := range readNative(t, ts.log, "t", len(want)) {
		got = append(got, fmt.Sprintf("%d %s", r.Offset, r.Value))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}
