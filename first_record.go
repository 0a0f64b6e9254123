package runnel

import "errors"

// FirstRecord reads the first record of one partition from a start
// position without a Consumer of the caller's: with AtTime, the first
// record whose time is at or after the time (what Kafka's offsetsForTimes
// and ListOffsets by timestamp answer, and what kcat -Q prints); with
// AtOffset, the record at that offset, or the first after it if that one
// is gone (a gap a salvage left); with Earliest, the oldest record still
// stored. ok is false if there is no such record, including an offset
// outside the partition's extent and a start of Latest. It reads about
// one index interval, not the partition: a Consumer starting there and
// one small poll. The record's bytes are the caller's: they alias the
// read buffer of a Consumer of FirstRecord's own, closed before it
// returns, which nothing reads into again (Close pools no buffer). It
// fails with ErrTopicNotFound for a topic there is not and
// ErrInvalidArgument for a partition the topic does not have.
func (l *Log) FirstRecord(topic string, partition int, from StartPosition) (rec Record, ok bool, err error) {
	c, err := l.Consumer(topic, &ConsumerOptions{
		Partitions: []int{partition}, Start: from, MaxPollRecords: 1, MaxPollBytes: minMaxPollBytes,
	})
	if err == nil {
		defer c.Close()
		var recs []Record
		if recs, err = c.TryPoll(); err == nil && len(recs) > 0 {
			return recs[0], true, nil
		}
	}
	if errors.Is(err, ErrOutOfRange) { // from the start, or retention since
		err = nil
	}
	return rec, false, err
}
