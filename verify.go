package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Verify, Repair and Dump look at a log's files the way an operator needs
// to (the runnel command's verify, repair and dump): every byte, not just
// the committed prefix a reader follows.

// ProblemKind classifies what Verify found.
type ProblemKind int

const (
	// ProblemCorrupt is damage inside committed data, or segment files
	// that do not fit together (a sealed segment cut short or missing, a
	// gap in the offsets, a seal naming the wrong segment), or a
	// partition's directory missing from its topic, or a topic's
	// topic.json missing beside its segment files (Partition -1: no
	// reader sees the topic, and Verify only finds it when it checks
	// every topic). Readers stop at it
	// with a *CorruptError, as DescribeTopic and writers do at a
	// missing directory. Plain Repair cannot fix it without losing
	// records; Repair with Salvage replaces the unreadable offsets with a
	// gap. A missing directory is restored by hand (or made anew, empty:
	// the partition's offsets start at 0 again).
	ProblemCorrupt ProblemKind = iota + 1

	// ProblemTornTail is what a writer that died or failed mid-append
	// leaves past the committed data of a partition's last segment: an
	// uncommitted or torn frame, or stray bytes; or, after a machine
	// restart, bytes written after the last synced checkpoint that did
	// not all reach the disk. No reader delivers it; the next append, a
	// reader stuck at it, or Repair cuts it off.
	ProblemTornTail

	// ProblemIndex is an index file that is missing, torn, or has an entry
	// that disagrees with its segment. Indexes are caches: lookups and
	// retention check the entry they use against the log and read the log
	// instead when it disagrees, so it costs speed, never records (for
	// the one limit of the time entries' check, see docs/FORMAT.md, Index
	// files). Repair rebuilds the index.
	ProblemIndex

	// ProblemOffsets is a consumer-group offsets file that cannot be read.
	ProblemOffsets

	// ProblemLost is committed records gone from the end of a partition:
	// its data ends before offsets that partition.meta or an index entry
	// says were committed (a page zeroed, the file cut short). Appends are
	// refused there; Repair with Salvage marks the offsets as a gap.
	ProblemLost

	// ProblemMeta is a damaged partition.meta: its synced checkpoint does
	// not check out (Pos is the checkpoint's), or its log start word is
	// ahead of the log-start file (Pos is the word's). The first costs a
	// longer recovery (the next writer verifies the whole partition), the
	// second a read of the log-start file at each poll (readers take the
	// file's start, the smaller), never records. Repair verifies the
	// partition and records a new checkpoint, or sets the word back to the
	// file's start.
	ProblemMeta

	// ProblemUnfinishedDelete is a topic that a DeleteTopic marked
	// deleted (the word at byte 72 of the partition.meta named), having
	// recorded its intent, and did not remove: its process died, or
	// moving the directory failed. No producer or consumer can use it,
	// and it cannot be created again until the delete is finished, which
	// Repair does, as does the next producer, consumer or admin call that
	// meets it.
	ProblemUnfinishedDelete

	// ProblemStrayDeleteMark is a partition whose partition.meta has its
	// deleted word (byte 72) set while no DeleteTopic recorded an intent
	// to delete the topic: damage (a stray write, a bit flip), or a
	// DeleteTopic of a runnel from before delete intents that died.
	// Nothing is deleted for it: appends and reads of the partition fail
	// with a *CorruptError naming the word, its records stay. Repair
	// clears the word; DeleteTopic deletes the topic, if that was meant.
	ProblemStrayDeleteMark

	// ProblemLeftoverGrave is a deleted topic's files left in trash/ (a
	// grave, Path; Detail gives its size): the process that deleted the
	// topic died before it removed them, or the removal failed. No
	// reader meets them; they take disk space until Repair or the next
	// Open of the log by a process that may write there removes them, as
	// does the end of a DeleteTopic.
	ProblemLeftoverGrave
)

func (k ProblemKind) String() string {
	switch k {
	case ProblemCorrupt:
		return "corrupt"
	case ProblemTornTail:
		return "torn tail"
	case ProblemIndex:
		return "index"
	case ProblemOffsets:
		return "offsets"
	case ProblemLost:
		return "lost"
	case ProblemMeta:
		return "partition meta"
	case ProblemUnfinishedDelete:
		return "unfinished delete"
	case ProblemStrayDeleteMark:
		return "stray delete mark"
	case ProblemLeftoverGrave:
		return "leftover grave"
	}
	return fmt.Sprintf("ProblemKind(%d)", int(k))
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Kind      ProblemKind
	Topic     string
	Partition int    // -1 for a problem that is not a partition's
	Path      string // the file
	Pos       int64  // byte position in Path, or -1 for the whole file
	Offset    int64  // first record offset affected, or -1 if unknown
	To        int64  // offset after the last one affected, when known; else 0
	Detail    string
}

// Repairable reports whether Repair fixes this kind of problem without
// losing a record (but for an unfinished delete, whose records go, as the
// DeleteTopic that was called meant).
func (p Problem) Repairable() bool {
	switch p.Kind {
	case ProblemTornTail, ProblemIndex, ProblemMeta, ProblemUnfinishedDelete, ProblemStrayDeleteMark, ProblemLeftoverGrave:
		return true
	}
	return false
}

// Salvageable reports whether Repair with Salvage fixes this problem, by
// marking the records it makes unreadable as a gap.
func (p Problem) Salvageable() bool {
	return p.Repairable() || (p.Kind == ProblemCorrupt || p.Kind == ProblemLost) && p.Partition >= 0 && p.Offset >= 0
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Pos >= 0 {
		fmt.Fprintf(&b, " at byte %d", p.Pos)
	}
	switch {
	case p.Offset >= 0 && p.To > p.Offset:
		fmt.Fprintf(&b, " (%s)", lossText(p.Offset, p.To))
	case p.Offset >= 0:
		fmt.Fprintf(&b, " (offset %d)", p.Offset)
	}
	fmt.Fprintf(&b, ": %s: %s", p.Kind, p.Detail)
	return b.String()
}

// PartitionCheck summarizes one partition as Verify read it.
type PartitionCheck struct {
	Topic     string
	Partition int
	Segments  int
	Frames    int64 // records frames, seals not counted
	// Records and Bytes are what the segments hold: the records below a
	// log start that DeleteRecords moved inside the first segment, which
	// no reader is given, are counted until retention removes it.
	Records     int64
	Bytes       int64 // bytes of .log files
	StartOffset int64
	NextOffset  int64 // after the last committed record
	Lost        int64 // offsets in gaps: known losses (see Gaps)
}

// Gap is a known loss: offsets From … To−1 of a partition, whose records
// were unreadable and which a salvage marked as lost (a gap frame at Pos
// of Path). Consumers skip them (see ConsumerOptions.StopAtGaps).
type Gap struct {
	Topic     string
	Partition int
	Path      string
	Pos       int64
	From, To  int64
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Partitions []PartitionCheck
	Problems   []Problem
	Gaps       []Gap    // known losses, listed, not problems
	Notes      []string // what was not checked, or was in flux, and why; a group's commit outside its partition
	Bytes      int64    // bytes of segment files read
}

// OK reports whether Verify found no problem. Gaps are known losses, not
// problems.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// VerifyOptions configure Verify. A nil *VerifyOptions means the
// defaults.
type VerifyOptions struct {
	// Progress, if not nil, is called on the calling goroutine as the
	// check advances, with the bytes of segment files checked so far and
	// the total there were when it started. Default: none.
	Progress func(done, total int64)
}

// maxProblemsPerFile bounds the report for a badly damaged file.
const maxProblemsPerFile = 20

// Verify reads every segment, index and offsets file of topic (of every
// topic if topic is "") and partition.meta, and reports what is wrong:
// frames whose checksum, commit byte, header or records are bad, offsets
// that do not follow on, segments that do not end in a seal naming the
// next one, committed records gone (the data ends before offsets that
// partition.meta or an index says were committed), index entries that
// disagree with the log, a deleted topic's files left in trash/
// (ProblemLeftoverGrave). It judges where data ends by the rules writers
// and readers use. Each problem names the file and the byte position;
// gaps left by a salvage are listed as known losses, not problems, and a
// group's committed offset outside its partition (past the end, where
// the API lets a commit or reset put it, as Kafka does) is noted.
//
// It takes no lock and changes nothing, and needs only read permission,
// so it may run while other processes produce and consume: a frame being
// written at the tail is noted, not reported, anything a concurrent,
// correct writer or committer does is looked at again before it is
// called a problem, and segments removed by retention meanwhile are
// skipped. The error is for failures to check (ctx, I/O, permission, a
// topic that does not exist), not for problems found.
func (l *Log) Verify(ctx context.Context, topic string, opts *VerifyOptions) (VerifyReport, error) {
	v := &verifier{l: l, ctx: ctx}
	if opts != nil {
		v.progress = opts.Progress
	}
	parts, err := v.partitions(topic)
	if err != nil {
		return v.rep, err
	}
	for _, p := range parts {
		if err := v.partition(p); err != nil {
			return v.rep, err
		}
	}
	if topic == "" {
		if err := v.hiddenTopics(); err != nil {
			return v.rep, err
		}
	}
	if hook := verifyBeforeOffsets; hook != nil {
		hook()
	}
	if err := v.offsets(topic); err != nil {
		return v.rep, err
	}
	if err := v.trash(topic); err != nil {
		return v.rep, err
	}
	if v.progress != nil {
		v.progress(v.total, v.total)
	}
	return v.rep, nil
}

// verifyBeforeOffsets, if set (by a test), runs between Verify's check of
// the partitions and of the offsets files: where a group's commit can
// overtake the end Verify read.
var verifyBeforeOffsets func()

type verifier struct {
	l        *Log
	ctx      context.Context
	progress func(done, total int64)
	rep      VerifyReport
	done     int64
	total    int64
	perFile  map[string]int
	lastTick time.Time
}

// partitions resolves the topics to check and adds up their size.
func (v *verifier) partitions(topic string) ([]*partition, error) {
	names := []string{topic}
	if topic == "" {
		var err error
		if err = v.l.checkOpen(); err != nil {
			return nil, err
		}
		if names, _, err = v.l.topicNames(); err != nil {
			return nil, err
		}
	}
	var parts []*partition
	for _, name := range names {
		// Before the topic is loaded, which finishes a dead delete.
		if deleting, err := v.deleting(name); err != nil || deleting {
			if err != nil {
				return nil, err
			}
			continue // its records are gone for every reader already
		}
		t, err := v.l.topic(name)
		var ce *CorruptError
		if errors.As(err, &ce) {
			v.problem(Problem{Kind: ProblemCorrupt, Topic: name, Partition: -1, Path: ce.Path, Pos: ce.Pos, Offset: -1, Detail: ce.Err.Error()})
			continue
		}
		if err != nil {
			if topic == "" && errors.Is(err, ErrTopicNotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		if past, _ := v.l.partitionDirsPast(name, len(t.parts())); len(past) > 0 {
			// An admin call holding the name's lock may be the growth
			// that made them, before it writes topic.json.
			if busy, _ := v.l.adminBusy(name); busy {
				v.note("topic %s: partition directories %v past its %d partitions: an AlterTopic adding partitions may be under way (an admin call on the topic is)", name, past, len(t.parts()))
			} else {
				v.note("topic %s: partition directories %v past its %d partitions, left by an AlterTopic that died adding partitions; unused, and taken by the next growth", name, past, len(t.parts()))
			}
		}
		for _, p := range t.parts() {
			parts = append(parts, p)
			bases, _ := listSegments(p.dir)
			for _, b := range bases {
				if st, err := os.Stat(segmentPath(p.dir, b, logExt)); err == nil {
					v.total += st.Size()
				}
			}
		}
	}
	return parts, nil
}

// deleting reports whether a DeleteTopic marked topic name deleted, and
// reports it as a problem if that DeleteTopic is dead (no admin call holds
// the name's lock; see settleDeleteLocked). It reports partitions marked
// with no delete intent as damage, and notes an intent no mark follows;
// the topic is checked then.
func (v *verifier) deleting(name string) (bool, error) {
	st, err := v.l.deleteState(name)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return false, nil // topic.json is damaged: loading the topic reports it
	}
	if err != nil || len(st.marked) == 0 && !st.intentFile {
		return false, err
	}
	busy, err := v.l.adminBusy(name)
	if err != nil {
		return false, err
	}
	switch {
	case st.committed() && busy:
		v.note("topic %s: being deleted", name)
		return true, nil
	case st.committed():
		v.problem(Problem{Kind: ProblemUnfinishedDelete, Topic: name, Partition: -1, Path: st.marked[0].path, Pos: metaDeletedOff, Offset: -1,
			Detail: "marked deleted by a DeleteTopic that did not finish (it died, or failed to move the directory); Repair finishes the delete"})
		return true, nil
	case len(st.marked) > 0:
		for _, m := range st.marked {
			v.problem(Problem{Kind: ProblemStrayDeleteMark, Topic: name, Partition: m.part, Path: m.path, Pos: metaDeletedOff, Offset: -1,
				Detail: fmt.Sprintf("the deleted word is set, but no DeleteTopic recorded its intent (%s): damage, or the DeleteTopic of a runnel from before delete intents, dead; nothing was deleted, appends and reads of the partition fail. Repair clears the word (DeleteTopic deletes the topic, if that was meant)",
					filepath.Join("topics", name, deleteIntentName))})
		}
	case !busy:
		v.note("topic %s: %s left by a DeleteTopic that stopped before it marked the topic (harmless; the next admin call on the name, or Repair, removes it)", name, v.l.intentPath(name))
	}
	return false, nil
}

func (v *verifier) problem(p Problem) {
	if v.perFile == nil {
		v.perFile = map[string]int{}
	}
	v.perFile[p.Path]++
	switch n := v.perFile[p.Path]; {
	case n < maxProblemsPerFile:
		v.rep.Problems = append(v.rep.Problems, p)
	case n == maxProblemsPerFile:
		p.Detail = "more problems in this file not listed"
		v.rep.Problems = append(v.rep.Problems, p)
	}
}

func (v *verifier) note(format string, args ...any) {
	v.rep.Notes = append(v.rep.Notes, fmt.Sprintf(format, args...))
}

// tick reports progress at most every 50ms, and checks ctx.
func (v *verifier) tick(done int64) error {
	if v.progress != nil {
		if now := time.Now(); now.Sub(v.lastTick) >= 50*time.Millisecond {
			v.lastTick = now
			v.progress(min(done, v.total), v.total)
		}
	}
	return v.ctx.Err()
}
