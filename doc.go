// Package runnel is an embeddable, multi-process event log with Kafka's
// model — topics, partitions, offsets, producers, consumers — stored in one
// local directory, with no daemon: the SQLite of Kafka.
//
// # Basics
//
// Open a directory, create a topic, produce and consume:
//
//	l, err := runnel.Open("data", nil) // nil: durable, group-committed appends
//	err = l.CreateTopic("orders", runnel.TopicConfig{Partitions: 3})
//	p, err := l.Producer("orders", nil)
//	pos, err := p.Send(ctx, runnel.Record{Key: []byte("ada"), Value: []byte("…")})
//	c, err := l.Consumer("orders", &runnel.ConsumerOptions{Start: runnel.Earliest})
//	for r, err := range c.Records(ctx) { … }
//
// A topic's partitions are directories of segment files. Each partition is
// an ordered, append-only sequence of records numbered by offset from 0.
// Records with the same key go to the same partition (xxhash64 of the key),
// so their order is kept; keyless records are spread over the partitions.
//
// Send waits for the acknowledgement; SendAsync calls back; Flush waits for
// everything sent. A sender alone on a partition writes its own frame, with
// no hand-off to another goroutine, unless another process holds the
// writer lock: then the partition's writer goroutine waits for the lock,
// and Send waits on its ctx. Records sent while a write is in flight
// are written together as the next frame, so concurrent senders share
// writes and fdatasyncs without any configured linger.
//
// Consumers read from an offset, the earliest or latest record, or a
// timestamp. Poll waits for records and returns a batch of at most
// ConsumerOptions.MaxPollRecords (500); Records is the same as an
// iterator. Returned byte slices are valid until the next Poll.
// Consumer.Pause stops reading partitions until Resume, as Kafka's
// consumer pause does: a paused partition keeps its position and is
// neither read nor returned.
//
// # Guarantees
//
// Acknowledged means committed: the record's frame was written, then its
// commit byte, and every process reading the partition can see it. On top
// of that, by Options.Durability:
//
//   - Durable (default): the frame was also fdatasync'd before the
//     acknowledgement; it survives power loss. One fdatasync serves every
//     frame committed before it began, in this process or any other (group
//     commit), and the next frames are written while it runs.
//   - Periodic: each partition is fdatasync'd at least every
//     Options.SyncInterval; a power loss may lose that window.
//   - Buffered: the OS writes the data back when it likes; a crash of the
//     process loses nothing acknowledged, a power loss may.
//
// A Producer with ProducerOptions.Acks set to AckCommitted acknowledges at
// commit in every mode (Kafka's acks=1); in a Durable Log the fdatasync
// still follows, only nobody waits for it.
//
// Readers deliver only committed frames whose xxhash64 checksum matches,
// each record once, in offset order per partition. A writer that dies at
// any instruction leaves at most an uncommitted or torn frame past the
// committed tail; the next writer (holding the partition's writer lock)
// cuts it off before appending, and no reader ever sees it.
//
// A partition's records start at its log start offset: retention moves
// it by removing whole segments, and Log.DeleteRecords to any offset up
// to the end (Kafka's DeleteRecords), recorded and synced before it
// returns in every mode, so that a crash or a power loss leaves the old
// start or the new one. No Consumer of any process is given a record
// below it: one that DeleteRecords overtakes in another process learns of
// it before its next read, and a position below it is out of range
// (ConsumerOptions.OutOfRange decides). No record is appended below it
// either: a partition restored with segments older than its log-start
// file goes on at the start, as Kafka's broker does.
//
// # Damage and loss
//
// Writers, readers, Verify and recovery decide where a partition's data
// ends by one set of rules (docs/FORMAT.md, "Where the data ends"). A
// reader waits only at the end of the data. Damage — a bad frame or a
// zeroed page with committed data after it, a sealed segment cut short or
// missing, records gone that partition.meta says were committed — is
// returned by Poll, TryPoll and Records as a *CorruptError (ErrCorrupt)
// naming the file, the byte and the offsets, never skipped silently and
// never waited at; appends to a partition whose tail is damaged are
// refused the same way. Repair never drops a committed record; Repair with
// RepairOptions.Salvage replaces what is unreadable with a gap that marks
// exactly those offsets as lost, every later record keeping its offset.
// Consumers skip gaps, counting them in Stats.GapsCrossed, or stop at them
// with a *GapError (ConsumerOptions.StopAtGaps).
//
// After a power loss the first writer of each partition (or a reader that
// finds unfinished bytes) recovers it from the last synced checkpoint in
// partition.meta: it verifies everything after the checkpoint, cuts the
// partition at the first frame that is not whole, and reports what it cut
// that was known to be committed (a logged error, Stats.RecordsLost,
// Recoveries). In Durable mode no acknowledged record is ever among them.
//
// Delivery into the log is at least once across a producer's crash: a
// record whose frame was committed just before the producer died was never
// acknowledged, and a restarted producer that sends it again stores it
// twice. A producer that must not duplicate reads its own last records
// (for example by a sequence number in a header) before resending.
//
// # Processes
//
// Any number of processes may open the same directory. Appends to a
// partition are serialized by an exclusive byte-range lock (open file
// description locks on Linux, which the kernel releases when the holder
// dies); readers take no lock. A Log that appends alone keeps the lock
// between its appends, and lets it go as soon as another process asks for
// it. Durable appends of all processes share their fdatasyncs: a process
// whose frame another process's fdatasync covered acknowledges without one.
// Two Logs opened on one directory in the same process behave exactly like
// two processes.
//
// Topic admin is safe across processes too. CreateTopic, DeleteTopic and
// AlterTopic of one name run one at a time, whichever goroutines and
// processes call them (a byte-range lock beside the topic's directory, on
// a file removed after each call), and each either succeeds or fails with
// ErrTopicExists or ErrTopicNotFound: a DeleteTopic waits for a
// CreateTopic under way and deletes only a complete topic, and an
// AlterTopic never loses another's change. AlterTopic may add partitions
// (never remove them): the new directories and the groups' offsets files
// are made durable before topic.json names the partitions, and every
// process's producers, consumers and group members take them at once,
// without a restart: producers hash keys over the new count from their
// next send, consumers of every partition wake in Poll and read the new
// ones from their first record, and groups that existed before read them
// from offset 0 (their committed offset there, whatever the members'
// Start). A process killed in the middle
// of one blocks nothing; the next call on the name cleans up after it. A
// DeleteTopic records its intent durably, then marks the topic's
// partitions deleted, and is done once it has: if its process dies after
// that, the delete is finished (never undone) by whoever meets the topic
// next — a producer, a consumer, a process loading it, Topics,
// DescribeTopic, an admin call on the name, Repair — so the topic is never
// left half there. Its files are moved out of the way at once and then
// removed; what a process killed in that removal (or a removal that
// failed) leaves is removed by the next Open of the log by a process that
// may write there, the next DeleteTopic, or Repair, and reported by
// Verify until then (ProblemLeftoverGrave). A mark with no intent is damage to partition.meta (a
// stray write, a flipped bit), never a delete: that partition's appends
// and polls fail with a *CorruptError naming it, nothing is removed, and
// Repair clears it.
// Producers and consumers of a deleted topic, in every process, fail with
// ErrTopicNotFound; a topic created again under the same name has a new
// ID (TopicInfo.ID), handles of the old one never write into or read from
// it, and consumer groups start on it with no committed offsets (DeleteTopic
// drops them, as Kafka does).
//
// # Consumer groups
//
// A Consumer with ConsumerOptions.Group is a member of that group: the
// topic's partitions are spread over the group's live members, in any
// processes, each partition read by exactly one member at a time. A member
// owns a partition by holding a byte-range lock on it in
// groups/<group>/<topic>.offsets; when a member dies the kernel drops its
// locks and the others take its partitions over within milliseconds
// (after its lease, if it set one: see below), with no coordinator and no
// heartbeats. Committed offsets (Kafka's meaning: the
// next offset to read) are written crash-atomically and durably per the
// Log's Durability, by Commit, CommitMarked, CommitOffsets, auto-commit,
// and on a clean hand-over. A commit never runs ahead of the application:
// Commit and auto-commit cover exactly the records handed to it (all of
// each Poll's batch; in Records, those yielded so far). Delivery is at
// least once: after a member's death, records since its last commit are
// read again by the new owner.
//
// A member lives as long as its process, and as long as it polls: one
// that goes ConsumerOptions.MaxPollInterval (default 5 minutes, Kafka's
// max.poll.interval.ms) without calling Poll — stuck in a job that never
// ends, deadlocked, or a Consumer left open and forgotten — leaves its
// group, from a timer of its own, as Kafka's consumer does. Its
// partitions go to the other members with nothing committed, so the
// records it was handed since its last commit are read again by their
// next owners; its commits fail with ErrMemberExpired (Kafka's
// CommitFailedException) until its next Poll, which calls OnLost (Kafka's
// onPartitionsLost; OnRevoked if OnLost is nil) and joins again as a new
// member, reading on from the group's committed offsets. Time inside Poll
// does not count. A negative MaxPollInterval turns this off.
//
// There is no session timeout: a process stopped whole (SIGSTOP) runs no
// timer either, and its members keep their partitions, unread, until it
// goes on, closes them or ends. DescribeGroup and runnel stat show such a
// member's lag growing and its commits getting old
// (GroupPartition.CommittedAt); stopping the process hands its partitions
// over. A member whose Log is closed leaves its group at once, as one that
// dies does (see Log.Close).
//
// A member whose partitions a reader outside runnel may still read after
// the member is gone — a Kafka server's member, whose client fetches on
// from the next server until its next heartbeat — sets
// ConsumerOptions.Lease: when it dies (or leaves with Consumer.Abandon),
// the other members take its partitions only once the lease has run
// since each first saw them free, as Kafka's coordinator waits out a
// dead member's session. Leaving on purpose (Close, a rebalance, its
// Log's Close, MaxPollInterval) hands them over at once, lease or not.
// A member that names the gone one's Consumer.Incarnation in
// ConsumerOptions.Succeeds takes them all back at once, while the others
// still wait, and gives what is beyond its share up at its next check
// through OnRevoked, as any member over its share: a Kafka server
// restarted in place of a dead one retakes its members' partitions for
// their clients that way, and hands a partition on only once its client
// let go.
// The partitions' locks stay the only ownership: no successor takes a
// partition from a live member.
//
// A pool of workers that finish records in any order marks each one done
// with MarkRecords; CommitMarked (or auto-commit with AutoCommitMarks)
// commits only the run of marked records from the last commit on, so a
// record still in a worker's hands is never skipped.
//
// A member that cannot take more records from some partitions for a
// while (a full downstream) pauses them (Consumer.Pause) and keeps
// polling: it keeps owning them, commits and takes part in rebalances;
// with all paused, a Poll returns nothing until its ctx ends, asleep
// between the group checks that do that work. A
// partition a rebalance takes away is no longer paused when it comes
// back, as in Kafka: OnAssigned may pause it again.
//
// # Open files
//
// A Log keeps its descriptors within Options.MaxOpenFiles (default: half
// of the process's RLIMIT_NOFILE soft limit at Open), so a Log with tens
// of thousands of partitions runs under the common limit of 1024:
//
//   - A partition this Log appends to holds five descriptors: its active
//     segment, the segment's two index files, and two of partition.meta
//     (the writer lock is an open-file-description lock, which lives as
//     long as its descriptor). Three quarters of the budget is for them.
//     When one more partition would open its files than that allows, the
//     least recently appended one that is not busy releases its files
//     (lets a kept writer lock go, syncs first in Periodic mode), and a
//     partition with no append for 10 to 20 seconds releases them anyway.
//     Its next append opens them again and checks with one pread that
//     the tail it kept in memory is still the tail, catching up with
//     other processes' appends if it is not (about ten system calls, paid
//     only by a partition that was idle or crowded out).
//     Releasing waits for no other process: in Periodic mode a partition
//     whose sync lock another process holds (stopped in its fdatasync,
//     say) keeps its unsynced files until the lock is free: another
//     partition is released in its place, or if none can be, the Log
//     stays over the budget until a later append or sweep releases one.
//     So does a partition whose writer waits for another process's writer
//     lock (taken, say, by a process stopped the moment this Log let a
//     lock it kept between appends go).
//     Stats.FileReleases counts releases, Stats.OpenPartitions the
//     partitions holding files now.
//   - Readers (consumers, the Kafka server's fetches, DescribeTopic) read
//     segments through one cache of descriptors, the other quarter of the
//     budget: a reader holds a segment's descriptor only during a read,
//     the least recently read idle file is closed when another must open,
//     a file no read used for 10 to 20 seconds is closed anyway (a
//     consumer that polls no more holds no segment that retention
//     removes), and a reader whose file was closed opens it again (the
//     same file: if retention removed it meanwhile, the reader handles
//     that as if it had found it removed when it got there).
//   - A Consumer holds no descriptor of its own until it sleeps in Poll:
//     then one per partition it waits on (its sleeping-reader slot in
//     partition.meta is a byte-range lock), until it is closed. A group
//     member also holds its group's offsets file.
//   - A topic another process deletes (or deletes and creates anew) costs
//     this Log nothing once it learns so: it drops its handle on the
//     topic, closing the partitions' files and forgetting what it kept of
//     them, at its next retention check (every RetentionInterval), at a
//     Topics call (Stats makes one) or a look-up of the name, or when an
//     append or a poll of the topic fails. Producers and consumers still
//     holding the topic keep failing with ErrTopicNotFound.
//
// # Metrics
//
// Log.Stats is a snapshot for monitoring: this Log's counters (records,
// frames and bytes appended, fdatasyncs with a latency histogram, repairs,
// losses, records read, poll waits), per partition, and the directory's
// state read from the files when it is called (offsets, durable lag,
// segments, bytes on disk, each group's members and lag). Counting costs a
// few atomic adds per frame and per Poll; a Stats call costs I/O in
// proportion to the partitions. Package promrunnel exposes it to
// Prometheus, and docs/OPERATIONS.md says what to alert on.
//
// # Backups
//
// Log.Backup copies a live log into a new directory while producers and
// consumers in every process go on: every record committed before it
// began, each group's commits and every topic's configuration, each frame
// checked on the way and everything synced. The copy is a log like any
// other. A file-system snapshot of the whole directory, taken in one
// instant, is a backup too: it holds what a power loss at that instant
// would have left, which recovery handles (docs/OPERATIONS.md).
//
// # Caveats
//
// Network file systems (NFS, SMB, most FUSE file systems) are not
// supported: their byte-range locks and their ordering of writes between
// clients do not give the guarantees the append protocol rests on.
//
// The directory is runnel's while any process has it open. Files or
// directories removed, moved or copied over by hand meanwhile (an rm of a
// partition's directory, a backup restored over a live log) are not
// noticed by processes that have them open: they go on appending to the
// removed files, acknowledge it, and lose it with them. Delete topics and
// groups with their calls (or the runnel command), and restore a backup
// only with every process stopped (docs/OPERATIONS.md).
//
// A Consumer is polled by one goroutine at a time, which also seeks,
// pauses and resumes it; its Commit,
// CommitOffsets, MarkRecords and CommitMarked may be called from any
// goroutine. Producers and the Log are safe for concurrent use.
//
// A call that waits for another process — for a writer lock it holds, or
// for a concurrent admin call — returns when its ctx ends. Close, the
// topic admin calls and Consumer, which have no ctx, wait as long as it
// takes; Log.CloseContext, Producer.CloseContext, CreateTopicContext,
// DeleteTopicContext, AlterTopicContext and ConsumerContext bound the
// wait. A group member that left for not polling (MaxPollInterval) joins
// again within its Poll's ctx. No call waits for another process's sync
// lock (held around its fdatasync) but to sync: retention and recovery
// leave the durable point for the next sync to move. DescribeTopic and Topics wait for no writer lock, but to finish
// the delete of a DeleteTopic that died, and for that at most a second.
// The Log's own background work (retention checks, checkpoints, Periodic
// syncs) goes on past a partition whose lock another process keeps
// (stopped with Ctrl-Z or SIGSTOP, or hung), leaving it for a later turn.
//
// Reading needs only read permission: a Consumer without a group, Verify,
// Backup and Dump work on a directory the process may only read (another
// user's log, a read-only mount, a backup); there, waiting consumers poll
// for new records instead of sleeping in the kernel. Whatever must write
// (a producer, a group member, Repair) fails with the permission error.
//
// Record timestamps are stored in nanoseconds, which hold the years 1678
// to 2262 (a record timed outside them is refused); they need not
// increase, and AtTime finds the first record in offset order at or after
// the time.
//
// The on-disk format is described in docs/FORMAT.md.
package runnel
