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

// errCorruptBatch is the cause of every decoding error of a produced
// batch: the client gets CORRUPT_MESSAGE.
var errCorruptBatch = errors.New("corrupt record batch")
