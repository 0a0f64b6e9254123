package runnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// TopicConfig describes a topic. Zero fields take the documented defaults.
type TopicConfig struct {
	// Partitions is the number of partitions, at least 1 (required).
	Partitions int `json:"partitions"`

	// SegmentBytes is the size at which a partition rolls to a new
	// segment file. Default 64 MiB; at least 64 KiB.
	SegmentBytes int64 `json:"segment_bytes"`

	// IndexIntervalBytes is how many log bytes pass between two sparse
	// index entries. Default 4096.
	IndexIntervalBytes int64 `json:"index_interval_bytes"`

	// RetentionAge removes sealed segments whose newest record is older.
	// Zero keeps records forever.
	RetentionAge time.Duration `json:"retention_age_ns"`

	// RetentionBytes removes a partition's oldest sealed segments while it
	// holds more bytes than this. Zero means no limit.
	RetentionBytes int64 `json:"retention_bytes"`
}

const (
	defaultSegmentBytes  = 64 << 20
	minSegmentBytes      = 64 << 10
	maxSegmentBytes      = 1 << 31 // index positions are u32; leave room for one frame past the limit
	defaultIndexInterval = 4096
	topicFileName        = "topic.json"
)

func (c TopicConfig) withDefaults() (TopicConfig, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = defaultSegmentBytes
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
	Name       string
	Config     TopicConfig
	Partitions []PartitionInfo
}

// PartitionInfo describes one partition at the moment it was read.
type PartitionInfo struct {
	Partition   int
	StartOffset int64 // first offset still stored
	NextOffset  int64 // offset the next record will get
	Bytes       int64 // size of the segment files
	Segments    int
}

func (l *Log) topicDir(name string) string { return filepath.Join(l.dir, "topics", name) }

// CreateTopic creates a topic. It fails with ErrTopicExists if the name is
// taken, ErrInvalidName or ErrInvalidArgument for bad input.
func (l *Log) CreateTopic(name string, cfg TopicConfig) error {
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
	dir := l.topicDir(name)
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err == nil {
		return fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	// Partition directories first, topic.json last: the topic exists for
	// every process exactly when its config file does.
	for p := 0; p < cfg.Partitions; p++ {
		if err := os.MkdirAll(filepath.Join(dir, strconv.Itoa(p)), 0o755); err != nil {
			return fmt.Errorf("runnel: create topic %s: %w", name, err)
		}
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	// A rename would silently replace a concurrent creator's config, so
	// claim the name with a byte-range lock first: the kernel drops it if
	// the creator dies, so a crash never blocks the name.
	lf, err := openLockFile(filepath.Join(dir, ".create.lock"))
	if err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	defer lf.Close()
	if got, err := lf.TryLock(0); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	} else if !got {
		return fmt.Errorf("%w: %s (being created by another process)", ErrTopicExists, name)
	}
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err == nil {
		return fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	if err := writeFileAtomic(filepath.Join(dir, topicFileName), append(data, '\n')); err != nil {
		return fmt.Errorf("runnel: create topic %s: %w", name, err)
	}
	return syncDir(filepath.Dir(dir))
}

// markDeleted sets the deleted flag in every partition's shared meta
// file, so that writers and readers in every process that still have the
// files open stop instead of writing into or waiting on a topic that is
// gone. It takes every partition's writer lock first, waiting until ctx
// ends, and sets the flags only once it holds them all: a flagged
// partition refuses appends for good, so the topic is flagged whole or
// not at all.
func markDeleted(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var metas []*metaMap
	defer func() {
		for _, m := range metas {
			m.close() // releases its writer lock
		}
	}()
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		m, err := openMeta(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		metas = append(metas, m)
		// Announced, so that a Log keeping the lock between appends lets
		// it go.
		if _, err := lockAnnounced(ctx, m.lf, m, nil); err != nil {
			return err
		}
	}
	for _, m := range metas {
		m.u32(metaDeletedOff).Store(1)
		m.published()
	}
	return nil
}

// readTopicConfig loads a topic's config, rejecting one that is damaged.
func (l *Log) readTopicConfig(name string) (TopicConfig, error) {
	path := filepath.Join(l.topicDir(name), topicFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return TopicConfig{}, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	if err != nil {
		return TopicConfig{}, fmt.Errorf("runnel: read topic %s: %w", name, err)
	}
	var cfg TopicConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		pos := int64(-1) // the whole file
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			pos = se.Offset
		case errors.As(err, &te):
			pos = te.Offset
		}
		return cfg, &CorruptError{Path: path, Pos: pos, Offset: -1, Err: err}
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return cfg, &CorruptError{Path: path, Pos: -1, Offset: -1, Err: err}
	}
	return cfg, nil
}

// Topics lists the topics in the log, sorted by name.
func (l *Log) Topics() ([]string, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(l.dir, "topics"))
	if err != nil {
		return nil, fmt.Errorf("runnel: list topics: %w", err)
	}
	var names []string
	for _, e := range entries {
		if validateName("topic", e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(l.topicDir(e.Name()), topicFileName)); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// DescribeTopic reports a topic's config and, per partition, its offsets
// and size as they are on disk now (including other processes' appends).
func (l *Log) DescribeTopic(name string) (TopicInfo, error) {
	t, err := l.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	info := TopicInfo{Name: name, Config: l.topicConfig(t)}
	for _, p := range t.parts {
		pi, err := p.describe()
		if err != nil {
			return info, err
		}
		info.Partitions = append(info.Partitions, pi)
	}
	return info, nil
}

// DeleteTopic removes a topic and all its data. Producers and consumers
// of it, in this Log and in other processes, get ErrTopicNotFound from
// then on; records still queued for it fail so. DeleteTopic waits as long
// as another process holds a partition's writer lock (it is appending);
// DeleteTopicContext bounds the wait.
func (l *Log) DeleteTopic(name string) error {
	return l.DeleteTopicContext(context.Background(), name)
}

// DeleteTopicContext is DeleteTopic, waiting for other processes' writer
// locks only until ctx ends. If ctx ends first it returns an error
// wrapping ctx.Err() and the topic is untouched.
func (l *Log) DeleteTopicContext(ctx context.Context, name string) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := validateName("topic", name); err != nil {
		return err
	}
	dir := l.topicDir(name)
	if _, err := os.Stat(filepath.Join(dir, topicFileName)); err != nil {
		return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	if err := markDeleted(ctx, dir); err != nil {
		return fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	l.mu.Lock()
	t := l.topics[name]
	delete(l.topics, name)
	l.mu.Unlock()
	if t != nil {
		t.gone.Store(true)
		// Its queued records fail at their next append, which finds the
		// flag; only another process's append in progress is waited for.
		stop := context.AfterFunc(ctx, t.giveUp)
		t.close()
		stop()
	}
	// Rename first so that the topic disappears at once for everybody,
	// then remove the files at leisure.
	// The graveyard is outside topics/, so no topic name can meet it.
	graveyard := filepath.Join(l.dir, "trash", fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(graveyard), 0o755); err != nil {
		return fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	if err := os.Rename(dir, graveyard); err != nil {
		return fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(l.dir, "topics")); err != nil {
		return err
	}
	return os.RemoveAll(graveyard)
}

// AlterTopic changes an existing topic's configuration: change gets the
// current config and edits it. SegmentBytes, IndexIntervalBytes,
// RetentionAge and RetentionBytes may change; Partitions may not
// (ErrInvalidArgument). The new config is validated as CreateTopic's is and
// written atomically. This Log uses it at once: the next roll uses the new
// segment size, the next segment the new index interval, and retention the
// new limits, removing what they exclude at the next check (or now, with
// EnforceRetention). Other processes pick it up at their next retention
// check (Options.RetentionInterval) or when they reopen the log.
// Concurrent AlterTopic calls, in any processes, are serialized: one waits
// for the other, as long as it takes; AlterTopicContext bounds the wait.
func (l *Log) AlterTopic(name string, change func(*TopicConfig)) error {
	return l.AlterTopicContext(context.Background(), name, change)
}

// AlterTopicContext is AlterTopic, waiting for a concurrent AlterTopic in
// another process only until ctx ends; then it returns an error wrapping
// ctx.Err() and changes nothing.
func (l *Log) AlterTopicContext(ctx context.Context, name string, change func(*TopicConfig)) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := validateName("topic", name); err != nil {
		return err
	}
	if _, err := l.readTopicConfig(name); err != nil {
		return err
	}
	lock, err := openLockFile(filepath.Join(l.topicDir(name), ".alter.lock"))
	if err != nil {
		return fmt.Errorf("runnel: alter topic %s: %w", name, err)
	}
	defer lock.Close()
	if err := lock.Lock(ctx, 0); err != nil {
		return fmt.Errorf("runnel: alter topic %s: %w", name, err)
	}
	old, err := l.readTopicConfig(name)
	if err != nil {
		return err
	}
	cfg := old
	change(&cfg)
	if cfg.Partitions != old.Partitions {
		return fmt.Errorf("%w: topic %s has %d partitions; the number cannot change", ErrInvalidArgument, name, old.Partitions)
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	if err := writeFileAtomic(filepath.Join(l.topicDir(name), topicFileName), append(data, '\n')); err != nil {
		return fmt.Errorf("runnel: alter topic %s: %w", name, err)
	}
	l.mu.Lock()
	t := l.topics[name]
	l.mu.Unlock()
	if t != nil {
		l.applyTopicConfig(t, cfg)
	}
	return nil
}

// topicConfig returns t's config. Writers read it under a partition's
// wmu; everyone else reads it through here.
func (l *Log) topicConfig(t *topic) TopicConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return t.cfg
}

// applyTopicConfig makes a changed config current for t. It holds every
// partition's wmu and l.mu while it writes, so that a reader under either
// sees the old config or the new one; it never writes Partitions.
func (l *Log) applyTopicConfig(t *topic, cfg TopicConfig) {
	for _, p := range t.parts {
		p.wmu.Lock()
	}
	l.mu.Lock()
	t.cfg.SegmentBytes = cfg.SegmentBytes
	t.cfg.IndexIntervalBytes = cfg.IndexIntervalBytes
	t.cfg.RetentionAge = cfg.RetentionAge
	t.cfg.RetentionBytes = cfg.RetentionBytes
	l.mu.Unlock()
	for _, p := range t.parts {
		if p.w != nil {
			p.w.idx.interval = cfg.IndexIntervalBytes
		}
		p.batchCap.Store(cfg.SegmentBytes / 2)
		p.wmu.Unlock()
	}
}
