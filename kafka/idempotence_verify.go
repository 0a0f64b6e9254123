package kafka

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/runnel-log/runnel"
)

// inLog reports whether the log holds b, a batch a stopped server's
// journal names, from its offset on; raw is the client's retry of it.
// Nothing else can tell: a frame does not keep who produced it, and the
// offsets an entry names may hold other records, stored there by another
// process once the server that wrote the entry died before the batch's
// commit, or after a power loss took the batch's frame. An entry written
// before the commit (entryStoring) holds a hash of the batch's records as
// the log was to hold them, times included: the log's records there must
// hash the same, whatever the retry's times (a client may stamp a retry
// anew: KafkaJS builds the batch again). An older entry (entryStored) has
// none: the log's records must have the retry's keys, values and
// headers. A log that cannot be read there (retention removed it) does
// not hold it either; the retry is then stored again, the lesser harm.
//
// It reads the batch's records and no more: those of the frames that hold
// them (a poll returns at most as many as the batch has).
func (s *Server) inLog(topic string, partition int32, b *seqBatch, raw []byte, scratch *batchScratch) bool {
	if e := b.entry; e.kind == entryStoring {
		var d recordDigest
		d.reset()
		held := s.readAt(topic, partition, e.base, int(e.count), func(_ int, r *runnel.Record) bool {
			d.add(r.Time.UnixNano(), r.Key, r.Value, r.Headers)
			return true
		})
		return held && d.sum() == e.hash
	}
	var want []uint64
	if _, err := readBatch(raw, maxDecodedBatch, time.Now(), scratch, func(rec *batchRecord) error {
		want = append(want, recordHash(rec.key, rec.value, rec.headers))
		return nil
	}); err != nil || len(want) == 0 {
		return false
	}
	return s.readAt(topic, partition, b.base, len(want), func(i int, r *runnel.Record) bool {
		return recordHash(r.Key, r.Value, r.Headers) == want[i]
	})
}

// readAt hands match the n records from offset base on, in order, and
// reports whether the log holds them all, at consecutive offsets, and
// match took each.
func (s *Server) readAt(topic string, partition int32, base int64, n int, match func(i int, r *runnel.Record) bool) bool {
	c, err := s.log.Consumer(topic, &runnel.ConsumerOptions{Partitions: []int{int(partition)}, Start: runnel.AtOffset(base), MaxPollRecords: n})
	if err != nil {
		return false
	}
	defer c.Close()
	for i := 0; i < n; {
		recs, err := c.TryPoll()
		if err != nil || len(recs) == 0 {
			return false
		}
		for j := range recs {
			if i == n {
				break
			}
			if recs[j].Offset != base+int64(i) || !match(i, &recs[j]) {
				return false
			}
			i++
		}
	}
	return true
}

// recordHash hashes a record's key and value (nil apart from empty) and
// headers.
func recordHash(key, value []byte, headers []runnel.Header) uint64 {
	var d recordDigest
	d.reset()
	d.add(0, key, value, headers)
	return d.sum()
}

// recordDigest hashes records: for each in turn, 40 bytes, little endian,
// that sum it up (its time in Unix nanoseconds, i64; its key's length,
// i32, -1 for nil; its value's, i32; the xxHash64 of its key and of its
// value; of its headers, or 0 for none: headersHash). One write of fixed
// size a record, and the key and value hashed in one go each, cost a
// fraction of a write a field.
type recordDigest struct {
	d   xxhash.Digest
	buf [40]byte
}

func (rd *recordDigest) reset() { rd.d.Reset() }

func (rd *recordDigest) sum() uint64 { return rd.d.Sum64() }

// add hashes a record.
func (rd *recordDigest) add(time int64, key, value []byte, headers []runnel.Header) {
	le := binary.LittleEndian
	b := rd.buf[:]
	le.PutUint64(b[0:], uint64(time))
	le.PutUint32(b[8:], uint32(hashedLen(key)))
	le.PutUint32(b[12:], uint32(hashedLen(value)))
	le.PutUint64(b[16:], xxhash.Sum64(key))
	le.PutUint64(b[24:], xxhash.Sum64(value))
	le.PutUint64(b[32:], headersHash(headers))
	rd.d.Write(b)
}

// hashedLen is b's length, or -1 for nil.
func hashedLen(b []byte) int32 {
	if b == nil {
		return -1
	}
	return int32(len(b))
}

// headersHash is 0 for no headers, or the xxHash64 of each header in
// turn: its key's length (i32, little endian) and key, its value's
// length (-1 for nil) and value.
func headersHash(headers []runnel.Header) uint64 {
	if len(headers) == 0 {
		return 0
	}
	var d xxhash.Digest
	d.Reset()
	var n [4]byte
	for _, h := range headers {
		binary.LittleEndian.PutUint32(n[:], uint32(len(h.Key)))
		d.Write(n[:])
		d.WriteString(h.Key)
		binary.LittleEndian.PutUint32(n[:], uint32(hashedLen(h.Value)))
		d.Write(n[:])
		d.Write(h.Value)
	}
	return d.Sum64()
}
