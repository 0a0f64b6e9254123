package kafka

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/runnel-log/runnel"
)

// inLog reports whether the log holds, from offset base on, the records of
// raw, a retried batch: what a loaded journal entry says was stored there.
// Records compare by key, value and headers, not timestamps: a client may
// stamp a retry anew (KafkaJS builds the batch again). Nothing else can
// tell: a frame does not keep who produced it, and after a power loss the
// offsets a lost frame had may hold other records. A log that cannot be
// read there (retention removed it) does not hold it either; the retry is
// then stored again, the lesser harm.
func (s *Server) inLog(topic string, partition int32, base int64, raw []byte, scratch *batchScratch) bool {
	var want []uint64
	if _, err := readBatch(raw, maxDecodedBatch, time.Now(), scratch, func(rec *batchRecord) error {
		want = append(want, recordHash(rec.key, rec.value, rec.headers))
		return nil
	}); err != nil || len(want) == 0 {
		return false
	}
	c, err := s.log.Consumer(topic, &runnel.ConsumerOptions{Partitions: []int{int(partition)}, Start: runnel.AtOffset(base)})
	if err != nil {
		return false
	}
	defer c.Close()
	for i := 0; i < len(want); {
		recs, err := c.TryPoll()
		if err != nil || len(recs) == 0 {
			return false
		}
		for _, r := range recs {
			if i == len(want) {
				break
			}
			if r.Offset != base+int64(i) || recordHash(r.Key, r.Value, r.Headers) != want[i] {
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
	var d xxhash.Digest
	d.Reset()
	var n [10]byte
	bytes := func(b []byte) {
		l := int64(len(b))
		if b == nil {
			l = -1
		}
		d.Write(n[:binary.PutVarint(n[:], l)])
		d.Write(b)
	}
	bytes(key)
	bytes(value)
	d.Write(n[:binary.PutVarint(n[:], int64(len(headers)))])
	for _, h := range headers {
		bytes([]byte(h.Key))
		bytes(h.Value)
	}
	return d.Sum64()
}
