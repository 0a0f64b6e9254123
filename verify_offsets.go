package runnel

import (
	"errors"
	"fmt"
	"io/fs"
)

// offsets checks the consumer-group offsets files of topic (every topic
// if ""): header, both commit slots of every partition, and each committed
// offset against the partition's extent. A commit outside it is noted,
// not a problem: the API stores any offset (CommitOffsets, an Unchecked
// ResetGroupOffsets, a Kafka OffsetCommit, as Kafka's broker stores one
// past the log's end), and a member that starts there applies its
// OutOfRange policy. A commit past the end the check found is checked
// again against the end now: members commit what they read, and the
// partition grows meanwhile.
func (v *verifier) offsets(topic string) error {
	groups, err := readGroupDirs(v.l.dir)
	if err != nil {
		return nil
	}
	for _, group := range groups {
		topics, _ := v.l.groupTopics(group)
		for _, name := range topics {
			if topic != "" && name != topic {
				continue
			}
			if err := v.offsetsFile(group, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *verifier) offsetsFile(group, topic string) error {
	path := offsetsPath(v.l.dir, group, topic)
	var parts []PartitionCheck
	for _, pc := range v.rep.Partitions {
		if pc.Topic == topic {
			parts = append(parts, pc)
		}
	}
	// The count and ID the topic has now, read together: it may have
	// grown since its partitions were checked, and a group joined it
	// for the first time, its file made for the grown count. Commits of
	// partitions not checked are not compared with an end.
	nparts, id := -1, "" // topic gone or not checked: take the file's word
	if tf, err := v.l.readTopicFile(topic); err == nil && len(parts) > 0 {
		nparts, id = tf.Partitions, tf.ID
	}
	report := func(pos int64, detail string) {
		v.problem(Problem{Kind: ProblemOffsets, Topic: topic, Partition: -1, Path: path, Pos: pos, Offset: -1, Detail: detail})
	}
	o, err := openOffsets(v.l.dir, group, topic, nparts, id, false)
	if err != nil {
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			report(ce.Pos, ce.Err.Error())
		case isPermission(err):
			return fmt.Errorf("runnel: verify %s: %w", path, err) // a failure to check, not damage
		case !errors.Is(err, fs.ErrNotExist):
			report(-1, err.Error())
		}
		return nil
	}
	defer o.close()
	for p := range o.nparts {
		st, err := o.readCommit(p)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			report(ce.Pos, ce.Err.Error())
			continue
		case err != nil:
			report(blockPos(p), err.Error())
			continue
		case st.offset == noCommit || p >= len(parts):
			continue
		}
		switch pc := parts[p]; {
		case st.offset > pc.NextOffset:
			if end, ok := v.endNow(topic, p); ok && st.offset <= end {
				continue // committed after the check read the partition
			}
			v.note("%s: partition %d: committed offset %d is past the end %d of the partition (committed or reset there on purpose, as Kafka's OffsetCommit may, or records lost with writes a machine's restart did not keep): a member that starts there applies its OutOfRange policy; one that starts once records reach it skips those below it",
				path, p, st.offset, pc.NextOffset)
		case st.offset < pc.StartOffset:
			v.note("%s: partition %d: committed offset %d is below the start %d (retention removed records the group had not read)", path, p, st.offset, pc.StartOffset)
		}
	}
	return nil
}

// endNow reads partition p of topic's end offset again, after a commit was
// read that the end the check found did not reach. A commit is of records
// read, so it is at most the end when it was made, and the end only
// grows: read after the commit, the end covers it unless records are gone.
func (v *verifier) endNow(topic string, p int) (int64, bool) {
	t, err := v.l.topic(topic)
	if err != nil || p >= len(t.parts()) {
		return 0, false
	}
	end, err := t.parts()[p].endOffset()
	return end, err == nil
}
