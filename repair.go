package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// RepairKind says what Repair did.
type RepairKind int

const (
	// RepairCutTail: a torn tail was cut off a segment.
	RepairCutTail RepairKind = iota + 1
	// RepairRebuiltIndex: a segment's index files were rebuilt from it.
	RepairRebuiltIndex
	// RepairRecovered: post-reboot recovery ran (see RecoveryReport).
	RepairRecovered
	// RepairSalvaged: unreadable bytes were replaced by a gap frame that
	// marks offsets From … To−1 as lost (Repair with Salvage); the records
	// after it keep their offsets.
	RepairSalvaged
	// RepairFinishedDelete: the delete of a topic whose DeleteTopic died
	// was finished (ProblemUnfinishedDelete); Path is the partition.meta
	// that was marked.
	RepairFinishedDelete
	// RepairClearedDeleteMark: a partition's deleted word, set with no
	// delete intent (ProblemStrayDeleteMark), was cleared; Path is its
	// partition.meta, Pos the word's position. The partition takes
	// appends and reads again, its records as they were.
	RepairClearedDeleteMark
	// RepairRemovedDeleteIntent: the intent file of a DeleteTopic that
	// stopped before it marked the topic deleted was removed (Path); the
	// topic stays.
	RepairRemovedDeleteIntent
	// RepairRemovedGrave: a deleted topic's files left in trash/
	// (ProblemLeftoverGrave) were removed; Path is the grave, Bytes what
	// its files held.
	RepairRemovedGrave
	// RepairSetBackLogStart: a partition's log start word, ahead of its
	// log-start file (ProblemMeta), was set back to the file's start;
	// Path is its partition.meta, Pos the word's position, From what the
	// word held and To the start it holds now.
	RepairSetBackLogStart
)

func (k RepairKind) String() string {
	switch k {
	case RepairCutTail:
		return "cut torn tail"
	case RepairRebuiltIndex:
		return "rebuilt index"
	case RepairRecovered:
		return "recovered after reboot"
	case RepairSalvaged:
		return "salvaged"
	case RepairFinishedDelete:
		return "finished topic delete"
	case RepairClearedDeleteMark:
		return "cleared stray delete mark"
	case RepairRemovedDeleteIntent:
		return "removed stale delete intent"
	case RepairRemovedGrave:
		return "removed leftover grave"
	case RepairSetBackLogStart:
		return "set back log start word"
	}
	return fmt.Sprintf("RepairKind(%d)", int(k))
}

// RepairAction is one change Repair made.
type RepairAction struct {
	Kind      RepairKind
	Topic     string
	Partition int
	Path      string
	Pos       int64 // RepairCutTail: the new end of the file; RepairSalvaged: where the gap is
	Bytes     int64 // RepairCutTail: bytes cut; RepairSalvaged: bytes the gap replaced; RepairRemovedGrave: bytes removed
	// From and To are, for RepairSalvaged, the offsets [From, To) the gap
	// marks as lost (none if equal: only unreadable bytes were replaced);
	// for RepairSetBackLogStart, the word before and after.
	From, To int64
	Detail   string
}

func (a RepairAction) String() string {
	switch a.Kind {
	case RepairCutTail:
		return fmt.Sprintf("%s: %s: %d bytes cut at byte %d", a.Path, a.Kind, a.Bytes, a.Pos)
	case RepairRecovered:
		return fmt.Sprintf("%s: %s: %s", a.Path, a.Kind, a.Detail)
	case RepairSalvaged:
		if a.To > a.From {
			return fmt.Sprintf("%s: %s: %s lost, replaced by a gap at byte %d", a.Path, a.Kind, lossText(a.From, a.To), a.Pos)
		}
		return fmt.Sprintf("%s: %s: %d unreadable bytes at byte %d replaced, no offsets lost", a.Path, a.Kind, a.Bytes, a.Pos)
	case RepairRemovedGrave:
		return fmt.Sprintf("%s: %s: %d bytes of topic %s", a.Path, a.Kind, a.Bytes, a.Topic)
	case RepairSetBackLogStart:
		return fmt.Sprintf("%s: %s: from %d to %d, the log-start file's", a.Path, a.Kind, a.From, a.To)
	}
	return fmt.Sprintf("%s: %s", a.Path, a.Kind)
}

// RepairOptions configure Repair. A nil *RepairOptions means the defaults.
type RepairOptions struct {
	// Progress is VerifyOptions.Progress for the check Repair starts with.
	Progress func(done, total int64)

	// Salvage makes Repair also fix damage inside committed data, at the
	// cost of the records it makes unreadable: under the partition's
	// writer lock, the unreadable bytes become a gap frame that marks
	// exactly their offsets as lost (a sealed segment cut short gets the
	// gap and its seal back, a missing one is made of a gap; committed
	// records gone from the end of the partition become a gap there, so
	// their offsets are not used again). Every record after a gap keeps
	// its offset and is readable again; consumers skip gaps (see
	// ConsumerOptions.StopAtGaps), and Verify lists them as known losses.
	// The actions (RepairSalvaged) say which offsets each gap took.
	// Default false: nothing committed is ever dropped.
	Salvage bool
}

// RepairReport is what Repair found and did.
type RepairReport struct {
	Found   VerifyReport   // the check Repair started with
	Actions []RepairAction // what it changed
	// Remaining are the problems a check after the repair still finds:
	// without Salvage, damage inside committed data and lost records;
	// unreadable offsets files and topic configs, which need a person (or
	// a backup). Empty when the log is whole again.
	Remaining []Problem
	// Gaps are the known losses after the repair (see VerifyReport.Gaps).
	Gaps []Gap
}

// Repair runs Verify on topic (every topic if ""), then fixes what can be
// fixed without losing a committed record: under each affected
// partition's writer lock it cuts torn tails (running post-reboot recovery
// if it is due), rebuilds index files that are missing or disagree with
// their segment, and records a new checkpoint where partition.meta's is
// damaged. Under a topic name's admin lock, it finishes the delete of a
// topic whose DeleteTopic died after marking it (ProblemUnfinishedDelete),
// clears deleted words no DeleteTopic set (ProblemStrayDeleteMark: the
// Logs that use the topic, in every process, take appends and reads of the
// partition again), and removes the intent file of a DeleteTopic that
// stopped before it marked the topic; it removes the graves of deleted
// topics left in trash/ (ProblemLeftoverGrave). Damage inside committed data is left
// alone unless opts asks to Salvage it. It then checks again: Remaining is
// what is still wrong. It is safe while other processes produce and
// consume; they wait for the writer lock while a partition is repaired.
func (l *Log) Repair(ctx context.Context, topic string, opts *RepairOptions) (RepairReport, error) {
	var o RepairOptions
	if opts != nil {
		o = *opts
	}
	found, err := l.Verify(ctx, topic, &VerifyOptions{Progress: o.Progress})
	rep := RepairReport{Found: found}
	if err != nil {
		return rep, err
	}
	type key struct {
		topic string
		part  int
	}
	todo := map[key][]Problem{}
	var keys []key
	finished := false
	settled := map[string]bool{}
	for _, pr := range found.Problems {
		switch pr.Kind {
		case ProblemUnfinishedDelete:
			out, err := l.settleDelete(ctx, pr.Topic)
			if err != nil {
				return rep, err
			}
			if out.finished != "" {
				rep.Actions = append(rep.Actions, RepairAction{Kind: RepairFinishedDelete, Topic: pr.Topic, Partition: -1, Path: out.finished, Pos: -1})
				finished = true
			}
			settled[pr.Topic] = true
			continue
		case ProblemStrayDeleteMark:
			if settled[pr.Topic] {
				continue // one call clears the topic's every mark
			}
			settled[pr.Topic] = true
			cleared, err := l.clearStrayMarks(ctx, pr.Topic)
			for _, m := range cleared {
				rep.Actions = append(rep.Actions, RepairAction{Kind: RepairClearedDeleteMark, Topic: pr.Topic, Partition: m.part, Path: m.path, Pos: metaDeletedOff})
			}
			if err != nil {
				return rep, err
			}
			continue
		}
		if !pr.Repairable() && !(o.Salvage && pr.Salvageable()) || pr.Partition < 0 {
			continue
		}
		k := key{pr.Topic, pr.Partition}
		if todo[k] == nil {
			keys = append(keys, k)
		}
		todo[k] = append(todo[k], pr)
	}
	for _, k := range keys {
		t, err := l.topic(k.topic)
		if err != nil {
			return rep, err
		}
		if k.part >= len(t.parts()) {
			continue
		}
		p := t.parts()[k.part]
		var actions []RepairAction
		if o.Salvage && slices.ContainsFunc(todo[k], func(pr Problem) bool { return !pr.Repairable() }) {
			actions, err = p.salvage(ctx)
		} else {
			actions, err = p.repairProblems(ctx, todo[k])
		}
		rep.Actions = append(rep.Actions, actions...)
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) {
			return rep, err
		}
	}
	if err := l.removeGraves(ctx, topic, &rep); err != nil {
		return rep, err
	}
	if topic != "" && finished {
		return rep, nil // the topic checked is gone
	}
	if err := l.removeStaleIntents(ctx, topic, settled, &rep); err != nil {
		return rep, err
	}
	after, err := l.Verify(ctx, topic, nil)
	rep.Remaining, rep.Gaps = after.Problems, after.Gaps
	return rep, err
}

// settleDelete is settleDeleteLocked under the name's admin lock, waiting
// for it until ctx ends.
func (l *Log) settleDelete(ctx context.Context, name string) (deleteOutcome, error) {
	unlock, err := l.lockTopicName(ctx, name)
	if err != nil {
		return deleteOutcome{}, err
	}
	defer unlock()
	return l.settleDeleteLocked(ctx, name)
}

// removeStaleIntents removes the intent file of a DeleteTopic that
// stopped before it marked the topic (Verify notes them) from topic, or
// every topic if "", but those settled already: left, it would be taken
// for a delete's if damage set a deleted word later.
func (l *Log) removeStaleIntents(ctx context.Context, topic string, settled map[string]bool, rep *RepairReport) error {
	names := []string{topic}
	if topic == "" {
		var err error
		if names, _, err = l.topicNames(); err != nil {
			return err
		}
	}
	for _, name := range names {
		if _, err := os.Lstat(l.intentPath(name)); settled[name] || err != nil {
			continue
		}
		out, err := l.settleDelete(ctx, name)
		if err != nil {
			return err
		}
		switch {
		case out.removed != "":
			rep.Actions = append(rep.Actions, RepairAction{Kind: RepairRemovedDeleteIntent, Topic: name, Partition: -1, Path: out.removed, Pos: -1})
		case out.finished != "": // a DeleteTopic that committed since, and died
			rep.Actions = append(rep.Actions, RepairAction{Kind: RepairFinishedDelete, Topic: name, Partition: -1, Path: out.finished, Pos: -1})
		}
	}
	return nil
}

// removeGraves removes the graves of topic (every grave if "") that no
// call works in (sweepTrash). A grave it fails to remove is logged, and
// left in the check after the repair.
func (l *Log) removeGraves(ctx context.Context, topic string, rep *RepairReport) error {
	swept, err := l.sweepTrash(ctx, topic)
	for _, s := range swept {
		if s.err != nil {
			l.opts.Logger.Warn("runnel: cannot remove a grave left by a delete", "path", s.path, "topic", s.topic, "err", s.err)
			continue
		}
		rep.Actions = append(rep.Actions, RepairAction{Kind: RepairRemovedGrave, Topic: s.topic, Partition: -1, Path: s.path, Pos: -1, Bytes: s.bytes})
	}
	return err
}

// repairProblems fixes one partition's repairable problems under its
// writer lock: indexes first (tail discovery starts from the index), then
// the tail.
func (p *partition) repairProblems(ctx context.Context, problems []Problem) ([]RepairAction, error) {
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var actions []RepairAction
	act := func(a RepairAction) {
		a.Topic, a.Partition = p.topic.name, p.id
		actions = append(actions, a)
	}
	rebuilt := map[int64]bool{}
	var torn []Problem
	for _, pr := range problems {
		if pr.Kind == ProblemMeta && pr.Pos == metaLogStartOff {
			a, ok, err := p.setBackLogStart()
			if err != nil {
				return actions, err
			}
			if ok {
				act(a)
			}
			continue
		}
		if pr.Kind == ProblemTornTail || pr.Kind == ProblemMeta {
			// The tail is judged afresh below; a damaged checkpoint makes
			// that a recovery that verifies everything and records one.
			torn = append(torn, pr)
			continue
		}
		base, ok := segmentBaseOf(pr.Path)
		if !ok || rebuilt[base] {
			continue
		}
		rebuilt[base] = true
		if _, err := os.Stat(segmentPath(p.dir, base, logExt)); err != nil {
			continue // removed by retention meanwhile
		}
		if p.w != nil && p.w.base == base {
			p.dropActive() // it has the old index files open
		}
		if err := rebuildIndex(p.dir, base, p.topic.cfg.IndexIntervalBytes); err != nil {
			return actions, fmt.Errorf("runnel: rebuild index of %s: %w", segmentPath(p.dir, base, logExt), err)
		}
		act(RepairAction{Kind: RepairRebuiltIndex, Path: segmentPath(p.dir, base, indexExt), Pos: -1})
	}
	if len(torn) == 0 {
		return actions, nil
	}
	sizes := map[string]int64{}
	for _, pr := range torn {
		if st, err := os.Stat(pr.Path); err == nil {
			sizes[pr.Path] = st.Size()
		}
	}
	recovered := len(p.log.Recoveries())
	// Forget this Log's view of the tail, and a sticky corruption verdict:
	// the tail is judged afresh, from the last index entry.
	p.dropActive()
	p.broken = nil
	err = p.findTail()
	for _, r := range p.log.Recoveries()[recovered:] {
		if r.Partition == p.dir && (r.CutPos >= 0 || len(r.RemovedSegments) > 0) {
			act(RepairAction{Kind: RepairRecovered, Path: r.CutFile, Pos: r.CutPos, Bytes: r.CutBytes,
				Detail: fmt.Sprintf("verified %d frames after the synced checkpoint, cut %d bytes at byte %d, removed segments %v", r.FramesVerified, r.CutBytes, r.CutPos, r.RemovedSegments)})
		}
	}
	paths := make([]string, 0, len(sizes))
	for path := range sizes {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		if st, serr := os.Stat(path); serr == nil && st.Size() < sizes[path] {
			act(RepairAction{Kind: RepairCutTail, Path: path, Pos: st.Size(), Bytes: sizes[path] - st.Size()})
		}
	}
	return actions, err
}

// segmentBaseOf parses the base offset out of a segment file's path.
func segmentBaseOf(path string) (int64, bool) {
	name := filepath.Base(path)
	if len(name) <= segNameLen {
		return 0, false
	}
	return segmentBase(name[:segNameLen])
}

// setBackLogStart sets the partition's log start word, if damage put it
// ahead of the log-start file, back to the file's start. The caller holds
// the writer lock, whose taking mapped partition.meta (p.shm).
func (p *partition) setBackLogStart() (a RepairAction, ok bool, err error) {
	recorded, err := readLogStart(p.dir)
	if err != nil {
		return a, false, err
	}
	was, ok := p.shm.lowerLogStart(recorded)
	return RepairAction{Kind: RepairSetBackLogStart, Path: filepath.Join(p.dir, metaFileName), Pos: metaLogStartOff, From: was, To: recorded}, ok, nil
}
