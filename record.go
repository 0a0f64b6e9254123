package runnel

import (
	"math"
	"time"
	"unsafe"

	"github.com/runnel-log/runnel/internal/frame"
)

// Record is one message of a topic: what a Producer sends and a Consumer
// receives.
//
// In a record returned by a Consumer, Key, Value and the header values
// alias the consumer's read buffer: they stay valid until the next call to
// Poll (or the next step of Records) and must be copied to be kept longer.
// A nil Key or Value and an empty one are stored and returned distinctly.
type Record struct {
	Key     []byte
	Value   []byte
	Headers []Header

	// Time is the record's timestamp. A zero Time in a sent record means
	// the moment of Send. Stored with nanosecond precision, as Unix
	// nanoseconds in an int64, which hold the years 1678 to 2262
	// (time.Time.UnixNano's range): a record sent with a Time outside
	// them is refused with ErrInvalidArgument.
	Time time.Time

	// Partition is where the record is (read) or goes (sent with the
	// ManualPartitioner).
	Partition int

	// Offset is the record's position in its partition, set on read.
	Offset int64
}

// The first and last times a record's timestamp holds.
var (
	earliestTime = time.Unix(0, math.MinInt64)
	latestTime   = time.Unix(0, math.MaxInt64)
)

// unixNanoWithin is t in Unix nanoseconds, a time before or after those a
// timestamp holds taken as the first or last of them: for a lookup by
// time, where UnixNano would wrap such a time round to some other one.
// Past the last, that finds only records of the last nanosecond.
func unixNanoWithin(t time.Time) int64 {
	switch {
	case t.Before(earliestTime):
		return math.MinInt64
	case t.After(latestTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Header is a key/value pair attached to a record. A record may carry
// several headers with the same key; their order is kept.
type Header struct {
	Key string
	// Value is the header's value. A nil Value and an empty one are
	// stored and returned distinctly. In a record returned by a Consumer
	// it aliases the consumer's read buffer, as Record.Value does.
	Value []byte
}

// The conversion compiles only while Header and frame.Header have the
// same fields in the same order, which is what makes the views below
// sound.
var _ = frame.Header(Header{})

// frameHeaders views headers as the encoder's type, without a copy.
func frameHeaders(h []Header) []frame.Header {
	return unsafe.Slice((*frame.Header)(unsafe.Pointer(unsafe.SliceData(h))), len(h))
}

// recordHeaders views decoded headers as Headers, without a copy.
func recordHeaders(h []frame.Header) []Header {
	return unsafe.Slice((*Header)(unsafe.Pointer(unsafe.SliceData(h))), len(h))
}

// Position is where an acknowledged record was stored.
type Position struct {
	Partition int
	Offset    int64
}
