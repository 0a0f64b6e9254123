package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// A topic's partition count may grow (AlterTopic, as Kafka's
// CreatePartitions), never shrink; docs/FORMAT.md (Adding partitions) has
// the order on disk. A Log's handle takes the partitions topic.json adds
// whenever it reads the file for the handle anyway (a look-up of the name,
// DescribeTopic, the retention check), when the count another process
// published in partition 0's partition.meta moves (topic_hint.go: at a
// Send, a Poll of a consumer of every partition) and, so that no caller
// is told a partition does not exist that another process has just added,
// before it refuses a partition number past the ones it knows
// (partitionOf).

// maxPartitions is the most partitions a topic may have.
const maxPartitions = 1 << 16

// makePartitionDirs creates the directories of partitions from … to-1 of
// the topic whose directory is dir, CreateTopic's and a growth's first
// step: an empty one left by a creation or growth that died is taken as
// it is.
func makePartitionDirs(dir string, from, to int) error {
	for p := from; p < to; p++ {
		if err := os.MkdirAll(partitionDir(dir, p), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// addPartitions gives t handles on its partitions up to n. The caller
// holds l.mu, or is loading t, which nobody else sees yet.
func (t *topic) addPartitions(l *Log, n int) {
	old := t.parts()
	if n <= len(old) {
		return
	}
	parts := make([]*partition, len(old), n)
	copy(parts, old)
	for p := len(old); p < n; p++ {
		parts = append(parts, newPartition(l, t, p))
	}
	t.partList.Store(&parts)
}

// growTopic gives t, this Log's handle, the partitions up to n that
// topic.json lists (n read from it). A handle the Log no longer lists is
// closed or being closed (deleted, or the Log closing), and gets none:
// nothing would close them.
func (l *Log) growTopic(t *topic, n int) {
	if n <= len(t.parts()) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.topics[t.name] == t && !l.closed.Load() {
		t.addPartitions(l, n)
	}
}

// refreshPartitions reads topic.json and gives t the partitions another
// process added. A topic.json that cannot be read, or is another topic's,
// adds nothing; the caller's next use of the files reports it.
func (l *Log) refreshPartitions(t *topic) {
	if tf, stale, err := l.checkTopic(t); err == nil && !stale {
		l.growTopic(t, tf.Partitions)
	}
}

// partitionOf returns partition id of t, or ErrInvalidArgument naming what
// the topic has. A number past the partitions t has is looked up in
// topic.json first.
func (l *Log) partitionOf(t *topic, id int) (*partition, error) {
	parts := t.parts()
	if id >= len(parts) && id < maxPartitions {
		l.refreshPartitions(t)
		parts = t.parts()
	}
	if id < 0 || id >= len(parts) {
		return nil, fmt.Errorf("%w: partition %d of topic %s with %d partitions", ErrInvalidArgument, id, t.name, len(parts))
	}
	return parts[id], nil
}

// partitionDirsPast lists the partition directories of topic name from n
// up: those a growth to more than n created and then died (or failed)
// before it wrote topic.json. Nothing reads them; a later growth takes
// them as they are.
func (l *Log) partitionDirsPast(name string, n int) ([]int, error) {
	entries, err := os.ReadDir(l.topicDir(name))
	if err != nil {
		return nil, err
	}
	var past []int
	for _, e := range entries {
		if p := partNum(e); p >= n {
			past = append(past, p)
		}
	}
	slices.Sort(past)
	return past, nil
}

// prepareGrowth does the work of a growth of topic name (ID id) from n to
// more partitions that must be durable before topic.json names them: the
// new partition directories, synced, and every group's offsets file of
// the topic grown (offsets_grow.go). It returns those files, for the
// caller to wake their members once topic.json is written (wakeGrown).
// The caller holds the name's admin lock, under which offsets files are
// created, so none appears meanwhile.
func (l *Log) prepareGrowth(ctx context.Context, name, id string, n, more int) ([]*offsetsFile, error) {
	dir := l.topicDir(name)
	if err := makePartitionDirs(dir, n, more); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	adminHook(hookGrowDirs, name)
	groups, err := readGroupDirs(l.dir)
	if err != nil {
		return nil, err
	}
	var grown []*offsetsFile
	for _, group := range groups {
		off, err := lockAdmin(ctx, func() (*offsetsFile, error) {
			return openOffsets(l.dir, group, name, n, id, false)
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = off.grow(more, id)
			off.lf.Unlock(adminLockOff)
			grown = append(grown, off)
		}
		if err != nil {
			wakeGrown(grown)
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
	}
	adminHook(hookGrowOffsets, name)
	return grown, nil
}

// wakeGrown wakes the members of each grown offsets file, so that they
// read how many partitions it covers now, and closes the files.
func wakeGrown(files []*offsetsFile) {
	for _, off := range files {
		off.bump(off.gen())
		off.close()
	}
}

// testHookOffsetsOfStale, if set, runs as openOffsetsOf is about to open
// a group's offsets file for the partitions t knows.
var testHookOffsetsOfStale func(l *Log, t *topic)

// openOffsetsOf opens group's offsets file of topic t for the partitions
// t knows (create as openOffsets takes it). Another process may have
// grown the topic since t last read topic.json, and a group's file been
// made at the new count: a file that does not fit is checked once more
// after t has read topic.json anew, and reported only if it still does
// not fit. A file that is damaged fails both times.
func (l *Log) openOffsetsOf(t *topic, group string, create bool) (*offsetsFile, error) {
	n := len(t.parts())
	if testHookOffsetsOfStale != nil {
		testHookOffsetsOfStale(l, t)
	}
	off, err := openOffsets(l.dir, group, t.name, n, t.id, create)
	if ce := (*CorruptError)(nil); errors.As(err, &ce) {
		l.refreshPartitions(t)
		if m := len(t.parts()); m != n {
			off, err = openOffsets(l.dir, group, t.name, m, t.id, create)
		}
	}
	return off, err
}
