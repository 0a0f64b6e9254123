package runnel

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/runnel-log/runnel/internal/names"
)

// Deleting a topic takes three steps, under the name's admin lock:
//
//  1. writeDeleteIntent: the intent file (deleteIntentName) in the topic's
//     directory, fsynced with the directory;
//  2. markDeleted: every partition.meta's deleted word, under the writer
//     locks. This is the commit point: from then on no process appends to
//     the topic or reads it, and what follows is cleanup;
//  3. removeMarked: the directory moved out of topics/, the groups'
//     offsets removed.
//
// A caller that holds the admin lock knows no DeleteTopic is at work on
// the name, so what it finds was left by one that died or failed
// (settleDeleteLocked):
//
//   - words set and the intent there: the delete committed, and is
//     finished, not undone: it was asked for, and every process that met
//     a word has reported the topic deleted already (their records
//     failed, their consumers stopped with ErrTopicNotFound). This is the
//     rule of DeleteGroup's deleted word (offsetsFile.gone) with the other
//     outcome: a group's file, once unmarked, is as it was, while a
//     topic's marked partitions have already refused appends;
//   - the intent alone: the delete stopped before its commit point; the
//     intent is removed and the topic stays;
//   - words set and no intent: no DeleteTopic of this runnel set them.
//     A word is four bytes of a shared, mapped file with no checksum,
//     which a stray write or one flipped bit sets; deleting a topic's data
//     on its word alone would let that destroy it. Nothing is
//     deleted: appends and reads of such a partition fail with a
//     *CorruptError naming the word (strayMark), Verify reports it
//     (ProblemStrayDeleteMark), Repair clears it (clearStrayMarks), and a
//     DeleteTopic deletes the topic. A DeleteTopic of a runnel from before
//     intent files that died after marking leaves the same, and is undone
//     by Repair.
//
// The intent is made durable before any word is set, and the words are
// not synced: a word that reached the disk before a power loss implies the
// intent did.

// deleteIntentName is the delete intent file in a topic's directory.
const deleteIntentName = "deleting"

// maxIntentFileBytes bounds what is read of an intent file, far above
// what is written there.
const maxIntentFileBytes = 4 << 10

func (l *Log) intentPath(name string) string {
	return filepath.Join(l.topicDir(name), deleteIntentName)
}

// deleteIntent is what topic name's intent file holds: a line naming the
// topic's ID (from topic.json; "-" for a topic without one, or whose
// topic.json is damaged, which may still be deleted). A file at the path
// that does not hold exactly this — damaged, or belonging to another
// topic — is no intent. The ID makes the intent a checked witness: a
// random 128-bit value no stray write reproduces, and one that names the
// topic a leftover belongs to.
func (l *Log) deleteIntent(name string) ([]byte, error) {
	tf, err := l.readTopicFile(name)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		tf.ID = ""
	case err != nil:
		return nil, err
	}
	return []byte("delete topic " + cmp.Or(tf.ID, "-") + "\n"), nil
}

// writeDeleteIntent writes topic name's delete intent file durably: a
// temporary file, fsynced, renamed into place, and the directory fsynced.
// The caller holds the name's admin lock.
func (l *Log) writeDeleteIntent(name string) error {
	data, err := l.deleteIntent(name)
	if err != nil {
		return err
	}
	return writeFileAtomic(l.intentPath(name), data)
}

// removeDeleteIntent removes topic name's delete intent file, if there is
// one, durably. The caller holds the name's admin lock, and no partition
// of the topic is marked deleted by the DeleteTopic that wrote it.
func (l *Log) removeDeleteIntent(name string) error {
	err := os.Remove(l.intentPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(l.topicDir(name))
}

// readIntent reports whether there is a file at topic name's intent path,
// and whether it is the topic's delete intent.
func (l *Log) readIntent(name string) (file, intent bool, err error) {
	data, err := readSmallFile(l.intentPath(name), maxIntentFileBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, false, nil
	case errors.Is(err, errFileTooLarge), errors.Is(err, ErrCorrupt):
		return true, false, nil // something there, but no intent
	case err != nil:
		return false, false, fmt.Errorf("runnel: topic %s: %w", name, err)
	}
	want, err := l.deleteIntent(name)
	if err != nil {
		return true, false, err
	}
	return true, bytes.Equal(data, want), nil
}

// deleteState is what a topic's files say of a delete.
type deleteState struct {
	marked     []markedPart // partitions whose deleted word is set, by number
	intentFile bool         // a file is at the intent's path
	intent     bool         // and it is the topic's delete intent
}

// markedPart is a partition marked deleted, and its partition.meta.
type markedPart struct {
	part int
	path string
}

// committed reports whether a DeleteTopic reached its commit point.
func (s deleteState) committed() bool { return len(s.marked) > 0 && s.intent }

// deleteState reads what topic name's files say of a delete, without
// taking a lock or creating a file: a topic that is not there has none.
// The words are read before the intent: a DeleteTopic writes its intent
// before it sets a word, and removes it only with the directory (or having
// set none), so a reader that finds a word set and no intent, in the
// directory the name had before it read them, has found damage, not a
// delete at work.
func (l *Log) deleteState(name string) (deleteState, error) {
	var s deleteState
	dir := l.topicDir(name)
	before, err := os.Stat(dir)
	if err != nil {
		return s, nil // no topic (or none to be sure of)
	}
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err != nil {
		return s, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("runnel: topic %s: %w", name, err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return cmp.Compare(partNum(a), partNum(b)) })
	for _, e := range entries {
		n := partNum(e)
		if n < 0 {
			continue
		}
		path := filepath.Join(dir, e.Name(), metaFileName)
		marked, err := metaDeleted(path)
		if err != nil {
			return s, err
		}
		if marked {
			s.marked = append(s.marked, markedPart{n, path})
		}
	}
	s.intentFile, s.intent, err = l.readIntent(name)
	if after, serr := os.Stat(dir); serr != nil || !os.SameFile(before, after) {
		return deleteState{}, nil // deleted meanwhile
	}
	return s, err
}

// partNum is the partition whose directory a topic directory's entry is
// (names.PartitionFromDir's rule), or -1.
func partNum(e fs.DirEntry) int {
	n, ok := names.PartitionFromDir(e.Name())
	if !ok || !e.IsDir() {
		return -1
	}
	return n
}

// errStrayDeleteMark is the cause of the *CorruptError of a partition
// marked deleted with no delete intent.
var errStrayDeleteMark = errors.New("the deleted word is set, but no DeleteTopic recorded an intent to delete the topic: damage, nothing was deleted (runnel verify names it, runnel repair clears it)")

// strayMark is called by whoever finds partition part of t marked
// deleted (a writer, a reader). It returns nil if a DeleteTopic marked it
// (its intent is there, or the topic is gone from the name already), and
// otherwise a *CorruptError naming the word: see deleteState. The intent
// is read before t is checked: the DeleteTopic that set the word wrote it
// before, and it goes only with the directory, which t's check sees gone.
func (l *Log) strayMark(t *topic, part int) error {
	_, intent, err := l.readIntent(t.name)
	if intent || !l.topicCurrent(t) {
		return nil
	}
	if err != nil {
		return err
	}
	return &CorruptError{Path: filepath.Join(t.parts()[part].dir, metaFileName), Pos: metaDeletedOff, Offset: -1, Err: errStrayDeleteMark}
}

// markedErr is what an append or a maintenance call gets, under the
// writer lock, from partition p whose deleted word is set: ErrTopicNotFound
// once a DeleteTopic set it (its commit point passed: nothing changes the
// topic after it, and a topic made anew under the name is another, whose
// files p's path may lead to), or the damage if none did (strayMark),
// reported at each call.
func (p *partition) markedErr() error {
	if err := p.log.strayMark(p.topic, p.id); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s was deleted", ErrTopicNotFound, p.topic.name)
}

// DeleteTopic removes a topic and all its data, and every consumer
// group's committed offsets for it, as Kafka does: a topic created again
// under the name starts with none. It fails with ErrTopicNotFound if there
// is no such topic. A DeleteTopic that meets a CreateTopic of the same
// name under way waits for it: it deletes only a topic it sees complete.
// Producers and consumers of the topic, in this Log and in other Logs and
// processes, get ErrTopicNotFound from then on; records still queued for
// it fail so. DeleteTopic waits as long as another process holds a
// partition's writer lock (it is appending) or the name's admin lock;
// DeleteTopicContext bounds the wait. It records its intent in the
// topic's directory, durably, before it marks the partitions deleted; once
// it has marked them, the delete happens even if its process dies before
// the files are gone: whoever meets the topic next (a producer, a
// consumer, an admin call on the name, Repair) finishes it, and Verify
// reports it until then (ProblemUnfinishedDelete). A partition marked
// deleted with no intent recorded is damage, and deletes nothing
// (ProblemStrayDeleteMark). The files are moved out of topics/ into
// trash/ and removed from there; if that removal fails, DeleteTopic
// returns the error (the topic is deleted all the same), and what is
// left, or what a process killed in the removal left, is removed by the
// next Open of the log, DeleteTopic (each ends by removing such
// leftovers, logging them, while its ctx lasts) or Repair
// (ProblemLeftoverGrave).
func (l *Log) DeleteTopic(name string) error {
	return l.DeleteTopicContext(context.Background(), name)
}

// DeleteTopicContext is DeleteTopic, waiting for other processes' locks
// only until ctx ends. If ctx ends first it returns an error wrapping
// ctx.Err() and the topic is untouched.
func (l *Log) DeleteTopicContext(ctx context.Context, name string) error {
	unlock, err := l.beginTopicAdmin(ctx, name)
	if err != nil {
		return err
	}
	grave, err := l.deleteLocked(ctx, name)
	// The topic is gone for everyone; its files go at leisure, under the
	// grave's own lock (trash.go).
	unlock()
	err = grave.removeAfter(name, err)
	// Then what earlier deletes left, while ctx lasts: a call bounded by
	// it must not wait out the removal of others' gigabytes.
	l.sweepTrashLogged(ctx)
	return err
}

// deleteLocked is DeleteTopic under the name's admin lock, up to the
// removal of the files: it returns the grave they were moved to, if they
// were, for the caller to remove.
func (l *Log) deleteLocked(ctx context.Context, name string) (grave *burial, err error) {
	dir := l.topicDir(name)
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	// A delete that committed and died is this one's too: its intent
	// stays if this one gives up.
	before, err := l.deleteState(name)
	if err != nil {
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	if err := l.writeDeleteIntent(name); err != nil {
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	// Flagged first, whole or not at all: then this Log's queued records
	// fail at their next append, which finds the flag, instead of being
	// written and acknowledged into a topic about to vanish.
	if err := markDeleted(ctx, dir); err != nil {
		// Nothing was marked: the topic stays as it was, and so must no
		// intent, which a damaged word would take for this delete's.
		if !before.committed() {
			if rerr := l.removeDeleteIntent(name); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove %s: %w (the next admin call on the name removes it)", l.intentPath(name), rerr))
			}
		}
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	l.mu.Lock()
	t := l.topics[name]
	l.mu.Unlock()
	if t != nil {
		// Only another process's append in progress is waited for.
		stop := context.AfterFunc(ctx, t.giveUp)
		l.forgetTopic(t)
		stop()
	}
	adminHook(hookDeleteMarked, name)
	return l.removeMarked(name)
}

// removeMarked is the end of a DeleteTopic, once every partition is
// marked deleted: it moves the directory away (the intent with it) and
// removes the groups' offsets, and returns the grave the files went to,
// if they did, for the caller to remove. The caller holds the name's
// admin lock.
func (l *Log) removeMarked(name string) (grave *burial, err error) {
	grave, err = l.buryTopicDir(name)
	if err != nil {
		return grave, err
	}
	if err := l.removeGroupOffsets(name); err != nil {
		return grave, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	return grave, nil
}

// deleteOutcome is what settleDeleteLocked did.
type deleteOutcome struct {
	finished string // the first marked partition.meta of a delete it finished
	removed  string // the stale intent file it removed
}

// settleDeleteLocked deals with what a DeleteTopic that is no longer at
// work left of topic name (see the top of this file): it finishes a
// committed delete, removes an intent that no mark follows, and leaves a
// stray mark alone. The caller holds the name's admin lock.
func (l *Log) settleDeleteLocked(ctx context.Context, name string) (deleteOutcome, error) {
	var out deleteOutcome
	st, err := l.deleteState(name)
	if err != nil {
		return out, err
	}
	switch {
	case st.committed():
	case len(st.marked) > 0:
		l.opts.Logger.Warn("runnel: a partition is marked deleted with no delete intent: damage, not deleting (runnel repair clears the mark)",
			"topic", name, "path", st.marked[0].path, "byte", metaDeletedOff)
		return out, nil
	case st.intentFile:
		l.opts.Logger.Info("runnel: removing the intent of a DeleteTopic that stopped before it marked the topic", "topic", name)
		if err := l.removeDeleteIntent(name); err != nil {
			return out, fmt.Errorf("runnel: topic %s: remove %s: %w", name, l.intentPath(name), err)
		}
		out.removed = l.intentPath(name)
		return out, nil
	default:
		return out, nil
	}
	marked := st.marked[0].path
	l.opts.Logger.Warn("runnel: finishing the delete of a topic whose DeleteTopic died", "topic", name, "marked", marked)
	// Marked whole again: the dead call may have stopped half way through
	// marking, and a partition left unmarked would take appends into the
	// files about to go.
	if err := markDeleted(ctx, l.topicDir(name)); err != nil {
		return out, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	grave, err := l.removeMarked(name)
	err = grave.removeAfter(name, err)
	out.finished = marked
	return out, err
}

// finishDeleteLocked is settleDeleteLocked for the admin calls: it
// returns the partition.meta whose mark it found if it finished a
// delete, or "" if the topic is (still) there.
func (l *Log) finishDeleteLocked(ctx context.Context, name string) (marked string, err error) {
	out, err := l.settleDeleteLocked(ctx, name)
	return out.finished, err
}

// finishDeadDelete is called by whoever meets a partition of t marked
// deleted by a DeleteTopic (a writer, a reader): it finishes the delete if
// that DeleteTopic is dead, and leaves it otherwise. Failures are logged:
// the caller fails with ErrTopicNotFound either way. Once the topic is
// gone from its name (or the name is another topic's by now), this Log
// forgets t; while a DeleteTopic is at work, it is left to it (this Log's
// closes t itself, and the next check of t after another's finds it gone).
func (l *Log) finishDeadDelete(t *topic) {
	if l.topicCurrent(t) && !l.tryFinishDelete(t.name) {
		return
	}
	l.forgetTopicLater(t) // a writer may call
}

// deadDeleteLockWait bounds tryFinishDelete's wait for the partitions'
// writer locks. A Log that keeps one between appends lets it go at once
// when asked (lockAnnounced), so only a holder that does not answer (a
// process stopped with Ctrl-Z or SIGSTOP, or hung) makes it give up: the
// call that met the mark reports the topic gone all the same, and leaves
// the delete to the next one, to an admin call on the name, or to Repair,
// instead of waiting for as long as that process is stopped.
const deadDeleteLockWait = time.Second

// tryFinishDelete is finishDeleteLocked if the name's admin lock is free.
// If it is not, the DeleteTopic that holds it finishes on its own, and any
// other holder finishes a dead one's delete before it lets the lock go
// (every admin call on the name looks); a holder that died left it free.
// It reports whether it finished a delete.
func (l *Log) tryFinishDelete(name string) bool {
	unlock, err := l.tryLockTopicName(name)
	if err != nil || unlock == nil {
		return false // not ours to do now (or, read-only, at all)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadDeleteLockWait)
	defer cancel()
	// Under the lock, the files the name has now decide: if the topic was
	// deleted meanwhile and the name made again, the new one is unmarked.
	marked, err := l.finishDeleteLocked(ctx, name)
	if err != nil {
		l.opts.Logger.Warn("runnel: finishing the delete of a topic failed", "topic", name, "err", err)
	}
	// A delete left unfinished keeps the lock file, as a DeleteTopic that
	// died left it, so that Topics, which tries the names that have one,
	// tries again.
	unlock(err != nil)
	return marked != "" && err == nil
}

// deletedByTopicDelete reports whether topic name is gone by a
// DeleteTopic: it finishes a dead one's delete (tryFinishDelete), and
// one it cannot finish now, at work or left waiting for a writer lock, is
// gone all the same once that DeleteTopic committed, as it is for
// DescribeTopic, producers and consumers.
func (l *Log) deletedByTopicDelete(name string) bool {
	if l.tryFinishDelete(name) {
		return true
	}
	st, err := l.deleteState(name)
	return err == nil && st.committed()
}

// markDeleted sets the deleted flag in every partition's shared meta
// file, so that writers and readers in every process that still have the
// files open stop instead of writing into or waiting on a topic that is
// gone. It sets the flags only once it holds every writer lock
// (lockPartitions): a flagged partition refuses appends for good, so the
// topic is flagged whole or not at all.
func markDeleted(ctx context.Context, dir string) error {
	return lockPartitions(ctx, dir, func(_ []int, metas []*metaMap) {
		for _, m := range metas {
			m.u32(metaDeletedOff).Store(1)
			m.published()
		}
	})
}

// lockPartitions opens the partition.meta of every partition in topic
// directory dir, takes every writer lock, waiting until ctx ends, and
// calls f with the partitions' numbers and metas while it holds them all.
func lockPartitions(ctx context.Context, dir string, f func(parts []int, metas []*metaMap)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var parts []int
	var metas []*metaMap
	defer func() {
		for _, m := range metas {
			m.close() // releases its writer lock
		}
	}()
	for _, e := range entries {
		n := partNum(e)
		if n < 0 {
			continue
		}
		m, err := openMeta(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		parts, metas = append(parts, n), append(metas, m)
		// Announced, so that a Log keeping the lock between appends lets
		// it go.
		if _, err := lockAnnounced(ctx, m.lf, m, nil); err != nil {
			return err
		}
	}
	f(parts, metas)
	return nil
}

// clearStrayMarks clears the deleted word of every partition of topic
// name marked with no delete intent (damage: see the top of this file),
// under the name's admin lock and every writer lock, as markDeleted sets
// them, waiting for them until ctx ends; it removes a file at the intent's
// path that is no intent too. It returns the partitions cleared: none if
// the topic has no stray mark, or a DeleteTopic's intent now.
func (l *Log) clearStrayMarks(ctx context.Context, name string) ([]markedPart, error) {
	unlock, err := l.lockTopicName(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := l.deleteState(name)
	if err != nil || st.intent || len(st.marked) == 0 {
		return nil, err
	}
	var cleared []markedPart
	err = lockPartitions(ctx, l.topicDir(name), func(parts []int, metas []*metaMap) {
		for i, m := range metas {
			if m.deleted() {
				m.u32(metaDeletedOff).Store(0)
				m.published()
				cleared = append(cleared, markedPart{parts[i], filepath.Join(partitionDir(l.topicDir(name), parts[i]), metaFileName)})
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("runnel: topic %s: %w", name, err)
	}
	l.opts.Logger.Warn("runnel: cleared the deleted word of partitions marked with no delete intent", "topic", name, "partitions", len(cleared))
	if st.intentFile {
		if err := l.removeDeleteIntent(name); err != nil {
			return cleared, fmt.Errorf("runnel: topic %s: remove %s: %w", name, l.intentPath(name), err)
		}
	}
	return cleared, nil
}
