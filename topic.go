package runnel

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TopicConfig describes a topic. Zero fields take the documented defaults.
type TopicConfig struct {
	// Partitions is the number of partitions, at least 1 (required).
	Partitions int `json:"partitions"`

	// SegmentBytes is the size at which a partition rolls to a new
	// segment file. Default 64 MiB (DefaultSegmentBytes); at least 64 KiB.
	SegmentBytes int64 `json:"segment_bytes"`

	// IndexIntervalBytes is how many log bytes pass between two sparse
	// index entries. Default 4096.
	IndexIntervalBytes int64 `json:"index_interval_bytes"`

	// RetentionAge removes sealed segments whose newest record is older.
	// An active segment whose newest record is older, and which nothing
	// has written for as long, is sealed by the retention check of a Log
	// that may write the partition and removed, as Kafka rolls it: a
	// partition too slow to fill a segment loses its old records too, and
	// goes on at the same next offset in a new segment. Zero keeps
	// records forever.
	RetentionAge time.Duration `json:"retention_age_ns"`

	// RetentionBytes removes a partition's oldest sealed segments while it
	// holds more bytes than this. Zero means no limit.
	RetentionBytes int64 `json:"retention_bytes"`
}

// DefaultSegmentBytes is the segment size of a topic created with
// TopicConfig.SegmentBytes zero.
const DefaultSegmentBytes = 64 << 20

const (
	minSegmentBytes      = 64 << 10
	maxSegmentBytes      = 1 << 31 // index positions are u32; leave room for one frame past the limit
	defaultIndexInterval = 4096
	topicFileName        = "topic.json"
)

// Validate reports whether CreateTopic would accept c, its zero fields
// taking their defaults: nil, or an error wrapping ErrInvalidArgument.
// AlterTopic checks the config its change makes the same way.
func (c TopicConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c TopicConfig) withDefaults() (TopicConfig, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = defaultIndexInterval
	}
	switch {
	case c.Partitions < 1 || c.Partitions > 1<<16:
		return c, fmt.Errorf("%w: %d partitions (want 1 to 65536)", ErrInvalidArgument, c.Partitions)
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes:
		return c, fmt.Errorf("%w: segment bytes %d outside [%d, %d]", ErrInvalidArgument, c.SegmentBytes, minSegmentBytes, int64(maxSegmentBytes))
	case c.IndexIntervalBytes < 0:
		return c, fmt.Errorf("%w: negative index interval", ErrInvalidArgument)
	case c.RetentionAge < 0 || c.RetentionBytes < 0:
		return c, fmt.Errorf("%w: negative retention", ErrInvalidArgument)
	}
	return c, nil
}

// TopicInfo is what DescribeTopic reports.
type TopicInfo struct {
	Name string
	// ID tells this topic from earlier and later ones of the same name (a
	// name deleted and created again gets a new ID), as Kafka's topic IDs
	// do. Empty for topics created before runnel recorded IDs.
	ID         string
	Config     TopicConfig
	Partitions []PartitionInfo
}

// PartitionInfo describes one partition at the moment it was read.
type PartitionInfo struct {
	Partition   int
	StartOffset int64 // first offset still stored
	NextOffset  int64 // offset the next record will get
	Bytes       int64 // size of the segment files, without the zeros the last may end in (FORMAT.md, Zeros ahead of the tail)
	Segments    int
}

func (l *Log) topicDir(name string) string { return filepath.Join(l.dir, "topics", name) }

// CreateTopic creates a topic. It fails with ErrTopicExists if the name is
// taken, ErrInvalidName or ErrInvalidArgument for bad input. Admin calls on
// one name (CreateTopic, DeleteTopic, AlterTopic) are serialized across
// goroutines and processes: a CreateTopic racing others for a free name
// succeeds in exactly one of them, the rest get ErrTopicExists. One waits
// for another as long as it takes; CreateTopicContext bounds the wait.
func (l *Log) CreateTopic(name string, cfg TopicConfig) error {
	return l.CreateTopicContext(context.Background(), name, cfg)
}

// CreateTopicContext is CreateTopic, waiting for a concurrent admin call
// on the name in another process only until ctx ends; then it returns an
// error wrapping ctx.Err() and creates nothing.
func (l *Log) CreateTopicContext(ctx context.Context, name string, cfg TopicConfig) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := validateName("topic", name); err != nil {
		return err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	unlock, err := l.lockTopicName(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	dir := l.topicDir(name)
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err == nil {
		// Unless a DeleteTopic that died had marked it: then it is
		// finished, and the name free.
		marked, err := l.finishDeleteLocked(ctx, name)
		if err != nil {
			return err
		}
		if marked == "" {
			return fmt.Errorf("%w: %s", ErrTopicExists, name)
		}
	}
	if err := l.clearLeftover(name); err != nil {
		return err
	}
	// Offsets a DeleteTopic that died left behind would be taken for the
	// new topic's.
	if err := l.removeGroupOffsets(name); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	// Partition directories first, topic.json last: the topic exists for
	// every process exactly when its config file does.
	if err := makePartitionDirs(dir, 0, cfg.Partitions); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	adminHook(hookCreateDirs, name)
	if err := l.writeTopicFile(name, topicFile{TopicConfig: cfg, ID: newTopicID()}); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	return nil
}

// clearLeftover removes what a CreateTopic that died before writing
// topic.json left of topic name: partition directories, maybe a
// partition.meta in them. The caller holds the name's admin lock and has
// seen no topic.json. A directory that holds segment files is somebody's
// data, not a leftover (topic.json lost to damage, say), and is refused
// rather than removed.
func (l *Log) clearLeftover(name string) error {
	dir := l.topicDir(name)
	parts, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	if holdsSegments(dir, parts) {
		return fmt.Errorf("%w: %s holds segment files but no %s (restore it, or remove the directory to reuse the name)",
			ErrTopicExists, dir, topicFileName)
	}
	l.opts.Logger.Info("runnel: removing an unfinished topic creation", "dir", dir)
	grave, err := l.buryTopicDir(name)
	return grave.removeAfter(name, err)
}

// holdsSegments reports whether a directory of topics/, whose entries
// are entries, has a partition directory with segment files in it:
// somebody's data, not what a CreateTopic that died before it wrote
// topic.json leaves.
func holdsSegments(dir string, entries []fs.DirEntry) bool {
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if bases, err := listSegments(filepath.Join(dir, e.Name())); err == nil && len(bases) > 0 {
			return true
		}
	}
	return false
}

// topicFile is the content of topic.json: the config, and the topic's ID.
type topicFile struct {
	TopicConfig
	// ID tells this topic from earlier ones of the same name, as Kafka's
	// topic IDs do: a handle loaded before the name was deleted and
	// created again must not take the new topic for its own. Empty in
	// topics created before runnel wrote IDs; their directory's identity
	// has to do.
	ID string `json:"id,omitempty"`
}

// newTopicID returns a random topic ID: 128 bits, in hex.
func newTopicID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readTopicConfig loads a topic's config, rejecting one that is damaged.
func (l *Log) readTopicConfig(name string) (TopicConfig, error) {
	tf, err := l.readTopicFile(name)
	return tf.TopicConfig, err
}

// readTopicFile loads a topic's topic.json, rejecting one that is damaged.
func (l *Log) readTopicFile(name string) (topicFile, error) {
	path := filepath.Join(l.topicDir(name), topicFileName)
	data, err := readSmallFile(path, maxTopicFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return topicFile{}, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	if errors.Is(err, errFileTooLarge) {
		return topicFile{}, &CorruptError{Path: path, Pos: maxTopicFileBytes, Offset: -1, Err: err}
	}
	if errors.Is(err, ErrCorrupt) {
		return topicFile{}, err // not a regular file (openRegular)
	}
	if err != nil {
		return topicFile{}, fmt.Errorf("runnel: read topic %s: %w", name, err)
	}
	return parseTopicFile(path, data)
}

// parseTopicFile parses data, the topic.json at path, rejecting one that
// is damaged.
func parseTopicFile(path string, data []byte) (topicFile, error) {
	var tf topicFile
	if err := json.Unmarshal(data, &tf); err != nil {
		pos := int64(-1) // the whole file
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			pos = se.Offset
		case errors.As(err, &te):
			pos = te.Offset
		}
		return tf, &CorruptError{Path: path, Pos: pos, Offset: -1, Err: err}
	}
	var err error
	if tf.TopicConfig, err = tf.withDefaults(); err != nil {
		return tf, &CorruptError{Path: path, Pos: -1, Offset: -1, Err: err}
	}
	return tf, nil
}

// writeTopicFile replaces topic name's topic.json atomically.
func (l *Log) writeTopicFile(name string, tf topicFile) error {
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(l.topicDir(name), topicFileName), append(data, '\n'))
}

// Topics lists the topics in the log, sorted by name.
func (l *Log) Topics() ([]string, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	names, locked, err := l.topicNames()
	if err != nil {
		return nil, err
	}
	// A name's lock file outlives only an admin call at work, or one that
	// died (or could not remove it); every admin call finishes a dead
	// DeleteTopic's delete before it lets the lock go. So a topic whose
	// DeleteTopic died is finished here, not listed.
	names = slices.DeleteFunc(names, func(name string) bool {
		return locked[name] && l.deletedByTopicDelete(name)
	})
	l.forgetUnlisted(names) // deleted by others: see topic_forget.go
	return names, nil
}

// topicNames lists the topics, sorted by name, and the names that have an
// admin lock file; unlike Topics, it changes nothing.
func (l *Log) topicNames() (names []string, locked map[string]bool, err error) {
	entries, err := os.ReadDir(filepath.Join(l.dir, "topics"))
	if err != nil {
		return nil, nil, fmt.Errorf("runnel: list topics: %w", err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), topicLockSuffix); ok {
			if locked == nil {
				locked = map[string]bool{}
			}
			locked[name] = true
			continue
		}
		if validateName("topic", e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(l.topicDir(e.Name()), topicFileName)); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, locked, nil
}

// DescribeTopic reports a topic's config and, per partition, its offsets
// and size as they are on disk now (including other processes' appends
// and AlterTopic calls). It does not wait for this Log's writers: a
// config another process changed is reported as it is on disk at once,
// even while they wait for a writer lock that another process keeps.
func (l *Log) DescribeTopic(name string) (TopicInfo, error) {
	var info TopicInfo
	t, tf, err := l.readTopicFiles(name, func(t *topic) error {
		// A DeleteTopic has committed (at work, or dead and finished
		// now). A topic marked with no delete intent is described: its
		// records are all there.
		st, err := l.deleteState(name)
		if err != nil {
			return err
		}
		if st.committed() {
			l.finishDeadDelete(t)
			return topicDeleted(name)
		}
		info = TopicInfo{Name: name, ID: t.id}
		for _, p := range t.parts() {
			pi, err := p.describe()
			if err != nil {
				return err
			}
			info.Partitions = append(info.Partitions, pi)
		}
		return nil
	})
	if err != nil {
		return TopicInfo{}, err
	}
	if info.Config = tf.TopicConfig; info.Config != l.topicConfig(t) {
		l.applyTopicConfigIfFree(t, info.Config) // another process altered it
	}
	return info, nil
}

// openGroupOffsets opens group's offsets file for topic t, creating it if
// there is none. It creates the file under the name's admin lock, having
// checked that t is still the topic: a member joining while the topic is
// deleted must not leave a file behind (DeleteTopic removes them under the
// same lock) that a topic created again under the name would take for
// its own. Whatever goes wrong once t is no longer the topic is
// ErrTopicNotFound.
func (l *Log) openGroupOffsets(ctx context.Context, t *topic, group string) (*offsetsFile, error) {
	off, err := l.openOffsetsOf(t, group, false)
	if errors.Is(err, fs.ErrNotExist) {
		var unlock func()
		if unlock, err = l.lockTopicName(ctx, t.name); err != nil {
			return nil, err
		}
		defer unlock()
		tf, stale, cerr := l.checkTopic(t)
		if cerr != nil || stale {
			return nil, cmp.Or(cerr, topicDeleted(t.name))
		}
		// The file is made for the partitions the topic has, which may
		// be more than t had when its consumer began.
		l.growTopic(t, tf.Partitions)
		if marked, err := l.finishDeleteLocked(ctx, t.name); err != nil || marked != "" {
			return nil, cmp.Or(err, topicDeleted(t.name))
		}
		off, err = openOffsets(l.dir, group, t.name, len(t.parts()), t.id, true)
	}
	if err != nil && !l.topicCurrent(t) {
		return nil, fmt.Errorf("%w (%v)", topicDeleted(t.name), err)
	}
	return off, err
}

// removeGroupOffsets removes every group's offsets file for topic name,
// as Kafka drops a deleted topic's committed offsets: a topic created
// again under the name starts with none, whatever its partition count.
// Members still attached to a removed file keep it until they close, and
// learn from the partitions that the topic is gone. The caller holds the
// name's admin lock, and the topic does not exist (any more, or yet).
func (l *Log) removeGroupOffsets(name string) error {
	groups, err := readGroupDirs(l.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, group := range groups {
		if err := os.Remove(offsetsPath(l.dir, group, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// topicDeleted is what calls on a handle of a deleted topic fail with.
func topicDeleted(name string) error {
	return fmt.Errorf("%w: %s was deleted", ErrTopicNotFound, name)
}

// AlterTopic changes an existing topic's configuration: change gets the
// current config and edits it. SegmentBytes, IndexIntervalBytes,
// RetentionAge and RetentionBytes may change; Partitions may grow, as
// Kafka's CreatePartitions allows, but never shrink (ErrInvalidArgument).
// New partitions start empty; records already sent stay where they are,
// and since KeyHashPartitioner hashes a key modulo the partition count,
// records of one key sent after the growth may go to another partition
// than those sent before it (as in Kafka). A process that dies while
// adding partitions leaves the old count (docs/FORMAT.md, Adding
// partitions), and a retry finishes the work. This Log, its producers and
// its consumers see new partitions at once; other processes see them at
// their next retention check, look-up of the topic (a new producer or
// consumer, DescribeTopic) or use of a partition number past the ones
// they knew. A Consumer reading all partitions without a group reads new
// ones from their start. Groups' offsets files grow with the topic, and
// their members take the new partitions in their shares at once (other
// processes' members too), starting them at ConsumerOptions.Start, as
// partitions with no commit; a group's offsets file of the topic that is
// damaged stops the growth, with an error naming it. The new config is validated as CreateTopic's is and
// written atomically. This Log uses it at once: the next roll uses the new
// segment size, the next segment the new index interval, and retention the
// new limits, removing what they exclude at the next check (or now, with
// EnforceRetention). Other processes pick it up at their next retention
// check (Options.RetentionInterval) or when they reopen the log.
// Concurrent AlterTopic calls, in any processes, are serialized, and so
// are they with CreateTopic and DeleteTopic of the same name: change sees
// the config every earlier AlterTopic wrote, and runs while no other admin
// call on the name can; it must not call one itself. One waits for the
// other as long as it takes; AlterTopicContext bounds the wait.
func (l *Log) AlterTopic(name string, change func(*TopicConfig)) error {
	return l.AlterTopicContext(context.Background(), name, change)
}

// AlterTopicContext is AlterTopic, waiting for a concurrent admin call on
// the name in another process only until ctx ends; then it returns an error wrapping
// ctx.Err() and changes nothing. Once the change is written, ctx ending
// while this Log waits to use it (its writer waiting for another
// process's writer lock) does not undo it: AlterTopicContext returns nil,
// and this Log uses the change from its next retention check, as other
// processes do.
func (l *Log) AlterTopicContext(ctx context.Context, name string, change func(*TopicConfig)) error {
	if change == nil {
		return fmt.Errorf("%w: AlterTopic with a nil change", ErrInvalidArgument)
	}
	unlock, err := l.beginTopicAdmin(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	tf, err := l.readTopicFile(name)
	if err != nil {
		return err
	}
	if marked, err := l.finishDeleteLocked(ctx, name); err != nil || marked != "" {
		return cmp.Or(err, topicDeleted(name))
	}
	adminHook(hookAlterRead, name)
	cfg := tf.TopicConfig
	change(&cfg)
	if cfg.Partitions < tf.Partitions {
		return fmt.Errorf("%w: topic %s has %d partitions; the count can grow but never shrink (asked for %d)", ErrInvalidArgument, name, tf.Partitions, cfg.Partitions)
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return err
	}
	var grown []*offsetsFile
	if cfg.Partitions > tf.Partitions {
		if grown, err = l.prepareGrowth(ctx, name, tf.ID, tf.Partitions, cfg.Partitions); err != nil {
			return fmt.Errorf("runnel: alter topic %s: %w", name, err)
		}
	}
	grew := cfg.Partitions > tf.Partitions
	tf.TopicConfig = cfg
	err = l.writeTopicFile(name, tf)
	wakeGrown(grown) // after topic.json: they read the topic's count
	if err != nil {
		return fmt.Errorf("runnel: alter topic %s: %w", name, err)
	}
	if grew {
		l.publishGrowth(name, cfg.Partitions) // after topic.json, as wakeGrown
	}
	l.mu.Lock()
	t := l.topics[name]
	l.mu.Unlock()
	if t != nil && l.topicCurrent(t) {
		l.growTopic(t, cfg.Partitions)
		l.applyTopicConfig(ctx, t, cfg)
	}
	return nil
}

// topicConfig returns t's config. Writers read it under a partition's
// wmu; everyone else reads it through here. Its Partitions is the count t
// has now: t.cfg keeps the one t was loaded with, since a growth
// (addPartitions) holds no wmu.
func (l *Log) topicConfig(t *topic) TopicConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg := t.cfg
	cfg.Partitions = len(t.parts())
	return cfg
}

// applyTopicConfig makes a changed config current for t. It holds every
// partition's wmu and l.mu while it writes, so that a reader under either
// sees the old config or the new one; it never writes Partitions. It
// fails with ctx.Err(), changing nothing, if ctx ends while it waits for a
// wmu (held by a writer or a retention pass that waits for another
// process's writer lock).
func (l *Log) applyTopicConfig(ctx context.Context, t *topic, cfg TopicConfig) error {
	for i, p := range t.parts() {
		if err := p.lockWmuContext(ctx); err != nil {
			for _, q := range t.parts()[:i] {
				q.wmu.Unlock()
			}
			return err
		}
	}
	l.mu.Lock()
	t.cfg.SegmentBytes = cfg.SegmentBytes
	t.cfg.IndexIntervalBytes = cfg.IndexIntervalBytes
	t.cfg.RetentionAge = cfg.RetentionAge
	t.cfg.RetentionBytes = cfg.RetentionBytes
	l.mu.Unlock()
	for _, p := range t.parts() {
		if p.w != nil {
			p.w.idx.interval = cfg.IndexIntervalBytes
		}
		p.batchCap.Store(cfg.SegmentBytes / 2)
		p.wmu.Unlock()
	}
	return nil
}
