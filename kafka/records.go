package kafka

import (
	"errors"
	"hash/crc32"
)

// Kafka's RecordBatch (magic 2) on the wire: its layout, shared by the
// produce path, which reads batches into runnel frames (batch_decode.go),
// and the fetch path, which writes runnel records as batches
// (batch_encode.go). A produced batch becomes one runnel frame, so its
// records get consecutive offsets and are stored atomically, as Kafka
// stores a batch.

// batchHeaderSize is the fixed part of a RecordBatch, up to its records.
const batchHeaderSize = 61

// minBatchLength is the least a batch's length field may say: the size
// after it of the smallest message of Kafka's oldest format (magic 0), as
// Kafka's broker checks it before it knows the batch's version.
const minBatchLength = 14

// Offsets of batch header fields.
const (
	batchLengthOff     = 8  // int32: bytes after this field
	batchMagicOff      = 16 // int8: 2
	batchCRCOff        = 17 // uint32: CRC-32C of everything from attributes on
	batchAttrOff       = 21 // int16
	batchLastDeltaOff  = 23 // int32
	batchFirstTimeOff  = 27 // int64, milliseconds
	batchMaxTimeOff    = 35 // int64
	batchProducerIDOff = 43 // int64
	batchEpochOff      = 51 // int16
	batchFirstSeqOff   = 53 // int32
	batchCountOff      = 57 // int32
)

// Batch attributes.
const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// errCorruptBatch refuses a produced batch as damaged (its checksum, a
// magic byte no Kafka knows, a length no batch has, a whole batch shorter
// than its header, a body that does not decompress): the client
// gets CORRUPT_MESSAGE, which Java's producer and KafkaJS retry, as a
// batch damaged on its way may arrive whole the next time.
var errCorruptBatch = errors.New("corrupt record batch")

// errInvalidRecord refuses a produced record set that is not damaged
// but that Kafka's checks refuse (not exactly one batch of magic 2: none
// at all, one cut short, two; a count its offsets disagree with, a
// control batch, records that do not fill it, a producer id without a
// sequence): the client gets INVALID_RECORD, as from Kafka, which clients
// do not retry, as the same bytes would fail again.
var errInvalidRecord = errors.New("invalid record batch")
