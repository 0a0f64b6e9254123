package runnel

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error runnel returns that has one of these causes
// wraps it, so test with errors.Is.
var (
	// ErrClosed is returned by every call on a Log, Producer or Consumer
	// after its Close, and by sends still queued when the Log closed.
	ErrClosed = errors.New("runnel: closed")

	// ErrCorrupt is the cause of every *CorruptError: committed data whose
	// checksum or structure is wrong. A partition that met it stays
	// corrupt for appends until repaired; reads before the damage work.
	// Appends to and polls of a partition that its partition.meta marks
	// deleted while no DeleteTopic meant to delete it (Verify's
	// ProblemStrayDeleteMark) fail with it too, until Repair clears the
	// mark.
	ErrCorrupt = errors.New("runnel: corrupt data")

	// ErrOutOfRange is returned when a consumer asks for an offset below
	// the partition's start (retention removed it) or above its end. The
	// error is an *OutOfRangeError, which says which partition and what
	// it holds.
	ErrOutOfRange = errors.New("runnel: offset out of range")

	// ErrTopicNotFound is returned by Producer, Consumer, DescribeTopic,
	// AlterTopic and DeleteTopic for a topic that does not exist, and by
	// every later send, poll and commit of a live Producer or Consumer
	// whose topic was deleted (or deleted and created again) by this or
	// any other process since it was made.
	ErrTopicNotFound = errors.New("runnel: topic not found")

	// ErrTopicExists is returned by CreateTopic for a name already taken,
	// also by a directory that holds a topic's segments without its
	// topic.json.
	ErrTopicExists = errors.New("runnel: topic already exists")

	// ErrTooLarge is returned by Send and SendAsync for a record larger
	// than Options.MaxRecordBytes.
	ErrTooLarge = errors.New("runnel: record too large")

	// ErrInvalidName is returned for a topic name outside Kafka's rule
	// for topics: 1–249 characters of [a-zA-Z0-9._-], not "." or "..".
	// A group name may be any string Kafka takes as a group id: it is
	// returned only for one that is empty, not valid UTF-8, or too long
	// for its directory (one outside the topic rule is stored escaped, a
	// byte outside [a-zA-Z0-9._-] taking three of the 249 bytes; see
	// docs/FORMAT.md, Names). runnel builds from before that return it
	// for every group name outside the topic rule, and leave the escaped
	// directory of such a group out of their ListGroups, Stats, Verify
	// and Backup.
	ErrInvalidName = errors.New("runnel: invalid name")

	// ErrInvalidArgument is returned for an option, partition number or
	// other argument outside its documented range.
	ErrInvalidArgument = errors.New("runnel: invalid argument")

	// ErrUnsupportedFormat is returned by Open for a directory written by
	// a newer version of runnel, or one whose format file is unreadable.
	ErrUnsupportedFormat = errors.New("runnel: unsupported format")

	// ErrNotOwner is returned by CommitOffsets, Seek, Pause and Resume
	// for a partition this group member does not own (any more): its
	// commit would overwrite the current owner's. (Commit, CommitMarked and
	// auto-commit cover the partitions the member owns, and leave out
	// the others, as Kafka's commitSync without offsets does.) Every
	// commit of a member that expired wraps it, with ErrMemberExpired.
	ErrNotOwner = errors.New("runnel: partition not owned by this group member")

	// ErrMemberExpired is returned by the commits (Commit, CommitMarked,
	// CommitOffsets, auto-commit) of a group member that left its group
	// because it did not poll within ConsumerOptions.MaxPollInterval, until
	// its next Poll joins again: its partitions are other members' now
	// (Kafka's CommitFailedException). The error wraps ErrNotOwner too.
	ErrMemberExpired = errors.New("runnel: group member expired")

	// ErrGroupActive is returned by ResetGroupOffsets and DeleteGroup when
	// live members own partitions they would change and Force is not set.
	ErrGroupActive = errors.New("runnel: group has active members")

	// ErrGroupNotFound is returned by DescribeGroup and DeleteGroup for a
	// group that has no offsets file, and by Poll, Commit and the other
	// group calls of a member whose group DeleteGroup removed by force.
	ErrGroupNotFound = errors.New("runnel: group not found")

	// ErrGap is the cause of every *GapError: a consumer with
	// ConsumerOptions.StopAtGaps reached offsets whose records were lost
	// and salvaged.
	ErrGap = errors.New("runnel: records lost")
)

// GroupTopicError is DescribeGroup's error for one topic of a group whose
// offsets it could not read (a damaged or unreadable offsets file: Err,
// often a *CorruptError, names it), while it reports the group's other
// topics.
type GroupTopicError struct {
	Group, Topic string
	Err          error
}

func (e *GroupTopicError) Error() string {
	return fmt.Sprintf("runnel: group %s, topic %s: %v", e.Group, e.Topic, e.Err)
}

func (e *GroupTopicError) Unwrap() error { return e.Err }

// GroupTopicErrors returns the *GroupTopicError values err is made of, if
// it is made of nothing else: err is then DescribeGroup's report of the
// topics it could not read, and the GroupInfo returned with it describes
// the group's other topics. It returns nil if err is nil or is about the
// whole group (ErrGroupNotFound, ErrInvalidName, ErrClosed, a directory
// that cannot be read), when the GroupInfo describes nothing:
//
//	info, err := l.DescribeGroup(group)
//	if err != nil && runnel.GroupTopicErrors(err) == nil {
//		return err // nothing was described
//	}
//	// info.Topics are the readable topics; err, if any, names the others.
func GroupTopicErrors(err error) []*GroupTopicError {
	var out []*GroupTopicError
	if !collectGroupTopicErrors(err, &out) {
		return nil
	}
	return out
}

// collectGroupTopicErrors appends the *GroupTopicError values err is made
// of to out, through wrapping and joining, and reports whether there is
// at least one and nothing else.
func collectGroupTopicErrors(err error, out *[]*GroupTopicError) bool {
	switch e := err.(type) {
	case *GroupTopicError:
		*out = append(*out, e)
		return true
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, e := range errs {
			if !collectGroupTopicErrors(e, out) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		return collectGroupTopicErrors(e.Unwrap(), out)
	}
	return false
}

// OutOfRangeError is the error for an offset a partition does not hold:
// below its start (retention or DeleteRecords removed it) or past its end. It wraps
// ErrOutOfRange. Start and End are the partition's extent when the error
// was made; a Seek between them (or to Earliest or Latest) goes on.
type OutOfRangeError struct {
	Topic     string
	Partition int
	Offset    int64 // the offset asked for
	Start     int64 // the partition's first stored offset
	End       int64 // the offset after its last record (the next to be written)
}

func (e *OutOfRangeError) Error() string {
	where := "past its end"
	if e.Offset < e.Start {
		where = "before its start (removed by retention or DeleteRecords)"
	}
	return fmt.Sprintf("runnel: offset out of range: offset %d of partition %s/%d is %s: it holds offsets [%d, %d)",
		e.Offset, e.Topic, e.Partition, where, e.Start, e.End)
}

// Unwrap returns ErrOutOfRange.
func (e *OutOfRangeError) Unwrap() error { return ErrOutOfRange }

// CorruptError describes damaged data: the file, the byte position in it
// and, where known, the offsets affected. It wraps ErrCorrupt.
type CorruptError struct {
	Path   string // file that holds the damage
	Pos    int64  // byte position of the damaged frame or entry, or -1 for the whole file
	Offset int64  // first offset affected, or -1 if unknown
	// To is the offset after the last one affected, when known (the
	// damage is followed by readable records, or something says how far
	// the committed records went); 0 or -1 if unknown.
	To  int64
	Err error // what is wrong, e.g. a checksum mismatch
}

func (e *CorruptError) Error() string {
	where := e.Path
	if e.Pos >= 0 {
		where = fmt.Sprintf("%s at byte %d", e.Path, e.Pos)
	}
	switch {
	case e.Offset >= 0 && e.To > e.Offset:
		return fmt.Sprintf("runnel: corrupt data in %s (%s): %v", where, lossText(e.Offset, e.To), e.Err)
	case e.Offset >= 0:
		return fmt.Sprintf("runnel: corrupt data in %s (offset %d): %v", where, e.Offset, e.Err)
	}
	return fmt.Sprintf("runnel: corrupt data in %s: %v", where, e.Err)
}

// Unwrap returns both ErrCorrupt and the underlying cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// GapError says that a partition's offsets From … To−1 are a gap: their
// records were lost to damage, and a salvage marked them so (Repair with
// RepairOptions.Salvage). A consumer returns it only with
// ConsumerOptions.StopAtGaps; Seek to To goes on after it. It wraps ErrGap.
type GapError struct {
	Topic     string
	Partition int
	From, To  int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("runnel: %s/%d: %s lost (salvaged gap)", e.Topic, e.Partition, lossText(e.From, e.To))
}

// Unwrap returns ErrGap.
func (e *GapError) Unwrap() error { return ErrGap }
