package runnel

import (
	"fmt"
	"slices"
	"time"
)

// StartPosition says where a Consumer starts reading a partition.
type StartPosition struct {
	kind   startKind
	offset int64
	time   time.Time
}

type startKind int

const (
	startEarliest startKind = iota
	startLatest
	startOffset
	startTime
)

var (
	// Earliest starts at the oldest record still stored.
	Earliest = StartPosition{kind: startEarliest}
	// Latest starts after the newest record: only new records are read.
	Latest = StartPosition{kind: startLatest}
)

// AtOffset starts at offset; ErrOutOfRange if it is not stored.
func AtOffset(offset int64) StartPosition { return StartPosition{kind: startOffset, offset: offset} }

// AtTime starts at the first record whose timestamp is at or after t. A t
// before the years a timestamp holds (see Record.Time) starts at the
// first record, one after them past every record but those of the last
// nanosecond a timestamp holds.
func AtTime(t time.Time) StartPosition { return StartPosition{kind: startTime, time: t} }

func (sp StartPosition) String() string {
	switch sp.kind {
	case startLatest:
		return "latest"
	case startOffset:
		return fmt.Sprintf("offset %d", sp.offset)
	case startTime:
		return "time " + sp.time.Format(time.RFC3339Nano)
	}
	return "earliest"
}

// ConsumerOptions configure a Consumer. A nil *ConsumerOptions, and every
// zero field, means the documented default. Log.Consumer copies the
// struct; later changes have no effect.
type ConsumerOptions struct {
	// Partitions to read. Default (nil): all of the topic's partitions. An
	// empty, non-nil list is refused (ErrInvalidArgument): a Consumer of
	// no partitions would wait in every Poll for records that cannot
	// come. Must be nil with Group: the group assigns partitions.
	Partitions []int

	// Start is where each partition is read from. Default Earliest. In a
	// group, it applies to partitions that have no committed offset. A
	// partition added to the topic (AlterTopic) after the group's offsets
	// existed has committed offset 0: every record in it is new to the
	// group, and Latest would skip those sent before a member took it.
	Start StartPosition

	// MaxPollRecords bounds how many records one Poll returns, over all
	// partitions (Kafka's max.poll.records). Default 500. A group member
	// takes and gives up partitions, and commits automatically, only
	// inside Poll: the bound keeps the time between two Polls short, so a
	// member that joins gets its share within one Poll of the others.
	MaxPollRecords int

	// MaxPollBytes bounds how many bytes Poll reads from one partition in
	// one call: the size of each partition's read buffer. Default 1 MiB;
	// at least 4 KiB. A frame larger than this is still read whole. A
	// partition's reads start at 64 KiB and double, up to MaxPollBytes,
	// while the consumer keeps using up what it read: one that wants a few
	// records, or follows the tail of a partition, neither reads nor holds
	// the whole buffer.
	MaxPollBytes int

	// SpinWait makes Poll spin for up to this long, watching for appends,
	// before it sleeps: lower wake-up latency for a busy core. The spin
	// ends as the sleep would: at an append, when Poll's ctx ends or the
	// Log closes, and in a group when the next GroupCheckInterval check
	// is due. Default 0: sleep at once (in the kernel, woken by the
	// appending process).
	SpinWait time.Duration

	// Group makes the consumer a member of this consumer group: the
	// group's live members, in this process and others, share the topic's
	// partitions, each read by one member at a time, and the group's
	// committed offsets (groups/<Group>/<topic>.offsets, the name escaped
	// if it is outside the topic rule) say where a member that takes a
	// partition over starts. Default "": no group. Any UTF-8 name will
	// do, as any is a Kafka group id ("app:prod", "my group"), if its
	// escape fits a directory name (see ErrInvalidName). See Commit,
	// MarkRecords, OnAssigned and OnRevoked.
	Group string

	// MemberName labels this member in DescribeGroup (at most 39 bytes
	// are kept, cut where a character starts). Default "<hostname>/<pid>".
	MemberName string

	// DisableAutoCommit stops the member from committing by itself.
	// Default false: every AutoCommitInterval (checked inside Poll),
	// before a partition is given up, and at Close, the member commits
	// what the application was handed (see Commit), so what it was given
	// counts as processed once it polls again: at-least-once delivery, as
	// in Kafka. With auto-commit off, the application commits with
	// Commit, CommitMarked or CommitOffsets, and OnRevoked is its last
	// chance to do so for a partition the member gives up.
	DisableAutoCommit bool

	// AutoCommitMarks makes auto-commit commit the records marked with
	// MarkRecords (see CommitMarked) instead of the records handed to the
	// application: for a pool of workers that finish records out of order.
	// Default false. Cannot go with DisableAutoCommit.
	AutoCommitMarks bool

	// AutoCommitInterval is the period of automatic commits. Default 5s.
	AutoCommitInterval time.Duration

	// OutOfRange says what happens when the offset a partition would
	// start at — Start, or in a group the partition's committed offset —
	// is not stored (below the partition's start, which retention and
	// DeleteRecords move, or past its end). Default OutOfRangeFail. With
	// OutOfRangeEarliest, a consumer that retention or DeleteRecords (of
	// any process) overtakes while it reads also moves on to the oldest
	// record left, before its next read; with the others its next Poll
	// returns ErrOutOfRange.
	OutOfRange OutOfRange

	// GroupCheckInterval is how often Poll checks, while it waits, whether
	// a member died (its partitions need a new owner). It bounds the time
	// a dead member's partitions stay unread. Joins, clean leaves and
	// releases wake the other members at once. Members that have their
	// share of the partitions take turns: each interval, the first of
	// them to check counts the members for all, and wakes them all if one
	// died. Default 10ms.
	GroupCheckInterval time.Duration

	// OnAssigned, if set, is called inside Poll, on the polling goroutine,
	// with the partitions the member has just taken, in increasing order,
	// after their read positions were set.
	OnAssigned func(c *Consumer, partitions []int)

	// OnRevoked, if set, is called inside Poll (and Close) with the
	// partitions the member is about to give up, after the automatic
	// commit, while it still owns them: it may still Commit, CommitMarked
	// or CommitOffsets them (from any goroutine; Poll waits for it). It
	// is also called for partitions lost to MaxPollInterval when OnLost
	// is nil, as Kafka's consumer calls onPartitionsRevoked then.
	OnRevoked func(c *Consumer, partitions []int)

	// MaxPollInterval is how long a group member may go without calling
	// Poll or TryPoll (or asking Records for more) before it leaves the
	// group, as Kafka's max.poll.interval.ms has a consumer do: a member
	// alive but stuck — a job that never ends, a deadlock, a Consumer
	// left open and never polled again — would otherwise keep its
	// partitions, unread, for as long as its process lives. Time spent
	// inside Poll (waiting for records, in OnAssigned and OnRevoked)
	// does not count; the time from joining to the first Poll does.
	//
	// When it expires, a goroutine of runnel's releases the member's
	// slot and partitions at once, committing nothing (the records it
	// was handed and did not commit go to the next owners again), and
	// the other members take the partitions over. Until the member polls
	// again, every commit it makes (Commit, CommitMarked, CommitOffsets,
	// auto-commit) fails with an error wrapping ErrMemberExpired and
	// ErrNotOwner, and Partitions lists none. Its next Poll calls OnLost
	// (or, if that is nil, OnRevoked) with the partitions it lost, joins
	// the group again as a new member and goes on, each partition it
	// takes starting at the group's committed offset, as Kafka's consumer
	// rejoins. Joining again waits only while an admin call of the group
	// (DeleteGroup, DeleteGroupOffsets) holds every member slot, and at
	// most until Poll's ctx ends (a TryPoll does not wait): the Poll then
	// returns ctx's error and the member stays out, expired, until a
	// later Poll joins. Its Close calls OnLost (or OnRevoked) the same way and
	// commits nothing. The Log's Logger gets a warning at each expiry.
	//
	// Default 5 minutes, Kafka's. Negative: never; the member then lives
	// as long as its process, Log and Consumer. Only with Group.
	MaxPollInterval time.Duration

	// OnLost, if set, is called inside the Poll after the member expired
	// (see MaxPollInterval), before it joins again, with the partitions
	// it owned when it expired, in increasing order (Kafka's
	// onPartitionsLost). Other members own them by now: commits of them
	// fail. Default nil: OnRevoked is called instead.
	OnLost func(c *Consumer, partitions []int)

	// Lease keeps the partitions this member owns from the other
	// members for this long after it dies. A member that finds a
	// partition free whose last owner died holding a lease leaves it
	// until the lease has run since it first saw it so (it cannot know
	// when the owner died), looking again at each check
	// (GroupCheckInterval); every member waits alike, and after the
	// lease the first to look takes it. It is for a member whose
	// partitions a reader outside runnel may still read after it died: a
	// Kafka server sets its Kafka members' session timeout, as their
	// clients fetch on from the next server until their next heartbeat,
	// and Kafka's coordinator keeps a dead member's partitions until its
	// session times out. A member that gives a partition up on purpose
	// (a rebalance, Close, an expiry of MaxPollInterval, its Log's Close)
	// hands it over at once; one that leaves with Abandon keeps the
	// lease, as at its death. A lease is waited out in full after a
	// reboot too, for readers on other machines. Admin calls
	// (ResetGroupOffsets, DeleteGroupOffsets, DeleteGroup) do not wait
	// for it, and leave it; members of a runnel from before leases do not
	// wait either. It is stored in units of 100ms, rounded up.
	// Default 0: none, the member's death frees its partitions at once.
	// At most MaxLease. Only with Group.
	Lease time.Duration

	// Succeeds names earlier incarnations of members of the same group
	// and topic (Consumer.Incarnation) whose partitions this member takes
	// over at once when they left them under their Lease: it died, or left
	// with Abandon. It takes back every such partition, at its first
	// membership check, even beyond its share of the partitions (other
	// members joined meanwhile), and gives the extras up at its next
	// check as any member over its share does: OnRevoked, then the
	// release, which hands them over at once. So a partition an outside
	// reader may still read for the gone member is never free while it
	// does, but only handed over once OnRevoked returned (a Kafka server
	// waits there for its client to let go). A partition it cannot lock at
	// that check (another member held it a moment, to look at its lease)
	// it looks for again at its later checks, until it took it or that
	// partition's lease has run since its first check. Every other member
	// still waits their lease out. The partition's lock stays the only
	// ownership: a partition another member holds, or took after the
	// lease ran, stays that member's. It is for a process restarted in
	// place of one whose members had outside readers that outlived it: a
	// Kafka server restarted on the same directory and address takes its
	// Kafka members' partitions back for the clients that fetch on from
	// it.
	// An incarnation of another group or topic names no partition here.
	// Default nil: none. At most 1024, none of them the zero
	// Incarnation. Only with Group.
	Succeeds []Incarnation

	// StopAtGaps makes Poll return a *GapError (ErrGap) where a partition
	// has a gap: offsets whose records were lost to damage and that a
	// salvage (Repair with Salvage) marked as lost. The partition stays
	// before the gap until Seek moves it (to GapError.To, to go on).
	// Default false: the consumer skips the gap, counts the offsets in
	// Stats.GapsCrossed and logs a warning.
	StopAtGaps bool
}

const (
	defaultMaxPollRecords     = 500
	defaultMaxPollBytes       = 1 << 20
	minMaxPollBytes           = 4 << 10
	defaultAutoCommitInterval = 5 * time.Second
	defaultGroupCheckInterval = 10 * time.Millisecond
	defaultMaxPollInterval    = 5 * time.Minute
)

// withDefaults validates o and returns a copy with every default filled
// in. The partitions listed are checked against the topic by
// Log.Consumer.
func (o *ConsumerOptions) withDefaults() (ConsumerOptions, error) {
	var c ConsumerOptions
	if o != nil {
		c = *o
	}
	switch {
	case c.MaxPollRecords < 0:
		return c, fmt.Errorf("%w: MaxPollRecords %d is negative", ErrInvalidArgument, c.MaxPollRecords)
	case c.MaxPollBytes < 0 || c.MaxPollBytes > 0 && c.MaxPollBytes < minMaxPollBytes:
		return c, fmt.Errorf("%w: MaxPollBytes %d: want 0 (the default, 1 MiB) or at least %d", ErrInvalidArgument, c.MaxPollBytes, minMaxPollBytes)
	case c.SpinWait < 0:
		return c, fmt.Errorf("%w: negative SpinWait", ErrInvalidArgument)
	case c.AutoCommitInterval < 0 || c.GroupCheckInterval < 0:
		return c, fmt.Errorf("%w: negative interval", ErrInvalidArgument)
	case c.OutOfRange < OutOfRangeFail || c.OutOfRange > OutOfRangeLatest:
		return c, fmt.Errorf("%w: OutOfRange %d", ErrInvalidArgument, int(c.OutOfRange))
	case c.Group == "" && (c.MemberName != "" || c.DisableAutoCommit || c.AutoCommitMarks || c.OnAssigned != nil || c.OnRevoked != nil || c.OnLost != nil || c.MaxPollInterval != 0 || c.Lease != 0 || c.Succeeds != nil):
		return c, fmt.Errorf("%w: MemberName, DisableAutoCommit, AutoCommitMarks, OnAssigned, OnRevoked, OnLost, MaxPollInterval, Lease and Succeeds need Group", ErrInvalidArgument)
	case c.Partitions != nil && len(c.Partitions) == 0:
		return c, fmt.Errorf("%w: Partitions is empty (nil reads every partition)", ErrInvalidArgument)
	case c.Group != "" && c.Partitions != nil:
		return c, fmt.Errorf("%w: Partitions must be nil with Group (the group assigns them)", ErrInvalidArgument)
	case c.AutoCommitMarks && c.DisableAutoCommit:
		return c, fmt.Errorf("%w: AutoCommitMarks with DisableAutoCommit", ErrInvalidArgument)
	}
	if err := validateLease(c.Lease); err != nil {
		return c, err
	}
	if err := validateSucceeds(c.Succeeds); err != nil {
		return c, err
	}
	c.Succeeds = slices.Clone(c.Succeeds) // never the caller's
	if c.Group != "" {
		if err := validateGroup(c.Group); err != nil {
			return c, err
		}
		if c.MemberName == "" {
			c.MemberName = defaultMemberName()
		}
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = defaultMaxPollRecords
	}
	if c.MaxPollBytes == 0 {
		c.MaxPollBytes = defaultMaxPollBytes
	}
	if c.AutoCommitInterval == 0 {
		c.AutoCommitInterval = defaultAutoCommitInterval
	}
	if c.GroupCheckInterval == 0 {
		c.GroupCheckInterval = defaultGroupCheckInterval
	}
	if c.Group != "" && c.MaxPollInterval == 0 {
		c.MaxPollInterval = defaultMaxPollInterval
	}
	return c, nil
}
