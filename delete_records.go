package runnel

import (
	"context"
	"fmt"
)

// DeleteToEnd, as DeleteRecords' before, deletes every record the
// partition holds when the call takes its writer lock: Kafka's -1, the
// high watermark.
const DeleteToEnd int64 = -1

// DeleteRecords deletes the records of a topic's partition below offset
// before (Kafka's DeleteRecords; TruncateFront elsewhere): the partition's
// log start offset becomes before, and start is the start after the call,
// which never moves back (a before at or below the start leaves it as it
// is and returns it). DeleteToEnd deletes up to the end. A before past the
// end is an *OutOfRangeError (ErrOutOfRange), as Kafka's
// OFFSET_OUT_OF_RANGE; one below 0 that is not DeleteToEnd is
// ErrInvalidArgument.
//
// From then on no Consumer of any process is given a record below the
// start: Earliest begins there; a position, a Seek, or a group's committed
// offset below it is out of range, which ConsumerOptions.OutOfRange
// decides (OutOfRangeEarliest moves to the start, as Kafka's
// auto.offset.reset=earliest; the default fails), as for records that
// retention removed. A Consumer reading when another process's
// DeleteRecords overtakes it learns of it before its next read (partition.meta's
// log start word, one atomic load); records it returned before are the
// caller's, and Consumer.DeletedBelow tells code that keeps them to hand
// on later which were deleted since. DescribeTopic, PartitionOffsets,
// FirstRecord, Stats, DescribeGroup's lag and Verify count from the start.
//
// The start is recorded in the partition's log-start file, synced with
// the records below it and the directory before the call returns, in
// every durability mode: once it returned, the start survives a crash
// and a power loss. Segments wholly below the start are removed in the
// call (the active segment never is); the records below it in the first
// segment left stay on disk, unread, until retention removes that segment.
// A call that dies leaves the old start or the new one, never another; a
// later call (or a retention pass, or the next writer that finds the tail
// afresh) removes segments it left.
//
// It fails with ErrTopicNotFound once a DeleteTopic of the topic, in any
// process, has marked it deleted, as an append does.
//
// It waits for the partition's writer lock, until ctx ends. Builds of
// runnel without DeleteRecords ignore the log-start file: their readers
// still see the records that are left (docs/FORMAT.md, Log start file).
func (l *Log) DeleteRecords(ctx context.Context, topic string, partition int, before int64) (start int64, err error) {
	if before < 0 && before != DeleteToEnd {
		return 0, fmt.Errorf("%w: DeleteRecords before offset %d", ErrInvalidArgument, before)
	}
	t, err := l.topic(topic)
	if err != nil {
		return 0, err
	}
	p, err := l.partitionOf(t, partition)
	if err != nil {
		return 0, err
	}
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil {
		return 0, l.orGone(t, err)
	}
	defer unlock()
	start, err = p.deleteRecords(before)
	return start, l.orGone(t, err)
}

// deleteRecords is DeleteRecords under the partition's locks.
func (p *partition) deleteRecords(before int64) (int64, error) {
	if p.shm.deleted() {
		return 0, p.markedErr()
	}
	bases, err := p.segmentBases()
	if err != nil {
		return 0, err
	}
	first, end, err := p.extentOf(bases)
	if err != nil {
		return 0, err
	}
	recorded, err := readLogStart(p.dir)
	if err != nil {
		return 0, err
	}
	cur := partStart(first, recorded, end)
	if before == DeleteToEnd {
		before = end
	}
	if before > end {
		return 0, &OutOfRangeError{Topic: p.topic.name, Partition: p.id, Offset: before, Start: cur, End: end}
	}
	start := max(cur, before)
	if start > recorded {
		// The records below the start first: a power loss must not
		// leave a start past the end.
		if err := syncSegments(p.dir, p.checkpointSegment(), lastBaseBelow(bases, start), true); err != nil {
			return 0, fmt.Errorf("runnel: sync %s before deleting records: %w", p.dir, err)
		}
		if err := writeLogStart(p.dir, start); err != nil {
			return 0, err
		}
	}
	// Also where the file was there already: a call that died between
	// the file and the word left the word behind.
	p.shm.raiseLogStart(start)
	if testHookLogStart != nil {
		testHookLogStart("published")
	}
	if plan := segmentsBelow(bases, start); len(plan) > 0 {
		if _, err := p.removeSegments(plan); err != nil {
			return start, err
		}
	}
	return start, nil
}

// lastBaseBelow returns the base of the segment that holds offset
// start-1: the last whose base is below start (the first, if none is).
func lastBaseBelow(bases []int64, start int64) int64 {
	last := bases[0]
	for _, b := range bases[1:] {
		if b < start {
			last = b
		}
	}
	return last
}

// segmentsBelow plans the removal of the segments wholly below start:
// those whose next segment begins at or below it. The last segment is
// never among them.
func segmentsBelow(bases []int64, start int64) []removedSegment {
	var plan []removedSegment
	for i := 0; i+1 < len(bases) && bases[i+1] <= start; i++ {
		plan = append(plan, removedSegment{base: bases[i], next: bases[i+1], reason: "log start"})
	}
	return plan
}
