package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// formatVersion is the on-disk format this package writes. Open refuses a
// directory whose runnel.format names a newer one.
const (
	formatVersion  = 1
	formatFileName = "runnel.format"
	formatPrefix   = "runnel format "
)

// Log is an open log directory. It is safe for concurrent use by many
// goroutines, and any number of Logs, in this process or others, may have
// the same directory open at once.
type Log struct {
	dir  string
	opts Options
	app  appender

	mu     sync.Mutex
	topics map[string]*topic
	// forgetting holds the stale handles taken out of topics whose close
	// is under way (topic_forget.go), and what is closed when it is done.
	forgetting map[*topic]chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	stats logStats

	recMu      sync.Mutex
	recoveries []RecoveryReport

	consMu    sync.Mutex
	consumers map[*Consumer]struct{} // open, for Close to wake their Polls

	stopSync chan struct{} // Periodic mode: stops syncLoop
	syncDone chan struct{}

	retention retentionLoop // retention.go
	ckpts     checkpointer  // checkpoint.go

	// The budget of open files (Options.MaxOpenFiles): partitions with
	// their files open (openparts.go), readers' segments (segcache.go).
	parts *openParts
	segs  *segCache

	// damagedIndexes holds the index files whose damage this Log has
	// logged (indexDamaged), so that each is logged once.
	damagedIndexes sync.Map
}

// topic is a Log's open handle on one topic: its config and partitions.
type topic struct {
	name    string
	cfg     TopicConfig // Partitions as loaded: topicConfig has the count now
	id      string      // from topic.json: a re-created topic has another
	dirInfo os.FileInfo // the topic's directory, which tells topics without an ID apart

	// partList holds the partitions: more once the topic grows (AlterTopic
	// here or in another process, growTopic), never fewer. Hot paths load
	// it without a lock; a slice stored here is never changed.
	partList atomic.Pointer[[]*partition]

	// hint is the topic's published partition count, mapped at the first
	// Producer or Consumer that follows growth (topic_hint.go); nil until
	// then, or where it cannot be mapped. hintMu serializes its mapping
	// and its release when t closes (hintDropped).
	hint        atomic.Pointer[partsHint]
	hintMu      sync.Mutex
	hintDropped bool
}

// parts returns t's partitions as this Log knows them now.
func (t *topic) parts() []*partition { return *t.partList.Load() }

// Open opens the log in dir, creating the directory if it does not exist.
// A nil opts means the defaults of Options.
func Open(dir string, opts *Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"", "topics", "groups"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil && !readOnlyLog(dir, err) {
			return nil, fmt.Errorf("runnel: open %s: %w", dir, err)
		}
	}
	if err := checkFormat(dir); err != nil {
		return nil, err
	}
	app, err := chooseBackend(o)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("runnel: log opened", "dir", dir, "backend", app.name(), "durability", o.Durability.String())
	l := &Log{dir: dir, opts: o, app: app, topics: map[string]*topic{}}
	partLimit, segLimit := splitBudget(o.MaxOpenFiles)
	l.parts, l.segs = newOpenParts(partLimit), newSegCache(segLimit)
	l.parts.startSweeps(idleRelease, l.segs.sweep)
	if o.Durability == Periodic {
		l.stopSync, l.syncDone = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	l.sweepTrashLogged(context.Background()) // graves of deletes that died or failed: trash.go
	l.startRetention()
	return l, nil
}

// readOnlyLog reports whether err, from creating a directory of the log in
// dir, only says that this process may not write there, while the log
// exists: it can still be read (consumers without a group, Verify, Dump),
// and whatever needs writing fails with the permission error then.
func readOnlyLog(dir string, err error) bool {
	_, serr := os.Stat(filepath.Join(dir, formatFileName))
	return isPermission(err) && serr == nil
}

// syncLoop fdatasyncs, every SyncInterval, each partition written since
// its last sync: Periodic mode's bound on what a power loss can take.
func (l *Log) syncLoop() {
	defer close(l.syncDone)
	tick := time.NewTicker(l.opts.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.stopSync:
			return
		case <-tick.C:
		}
		l.mu.Lock()
		var parts []*partition
		for _, t := range l.topics {
			parts = append(parts, t.parts()...)
		}
		l.mu.Unlock()
		for _, p := range parts {
			// A partition whose writer waits for another process's lock
			// (held by a stopped or hung process) is tried again at a
			// later tick, once the wait that gave up got p.wmu; the
			// others are synced meanwhile.
			if p.wmuWaitsLeft.Load() > 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.SyncInterval)
			err := p.syncNow(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				l.opts.Logger.Error("runnel: periodic sync failed", "partition", p.dir, "err", err)
			}
		}
	}
}

// checkFormat creates dir's format file, or checks that it names a version
// this package can read.
func checkFormat(dir string) error {
	path := filepath.Join(dir, formatFileName)
	data, err := readSmallFile(path, maxFormatFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return writeFileAtomic(path, []byte(formatPrefix+strconv.Itoa(formatVersion)+"\n"))
	}
	if errors.Is(err, errFileTooLarge) {
		return fmt.Errorf("%w: %w", ErrUnsupportedFormat, err)
	}
	if err != nil {
		return fmt.Errorf("runnel: open %s: %w", dir, err)
	}
	text := strings.TrimSpace(string(data))
	v, err := strconv.Atoi(strings.TrimPrefix(text, formatPrefix))
	if !strings.HasPrefix(text, formatPrefix) || err != nil || v < 1 {
		return fmt.Errorf("%w: %s says %q, want %q", ErrUnsupportedFormat, path, text, formatPrefix+strconv.Itoa(formatVersion))
	}
	if v > formatVersion {
		return fmt.Errorf("%w: %s was written by a newer runnel (format %d; this version reads up to %d)", ErrUnsupportedFormat, dir, v, formatVersion)
	}
	return nil
}

// chooseBackend picks the append path that Options.Backend asks for.
//
// BackendAuto follows the measurements in the README, per durability mode.
// Buffered: on ext4 an io_uring write of buffered data is handed to a
// kernel worker thread (the file system cannot do it without blocking), so
// a frame costs a thread hand-off where pwrite costs one system call; it
// lost by 2-10x. Durable: the fdatasync dominates and the same hand-off
// remains; io_uring measured level with pwrite or behind it. So Auto takes
// pwrite in both modes, and io_uring is there for those whose kernel and
// file system measure the other way (BenchmarkProduce and bench/ run both
// side by side).
func chooseBackend(o Options) (appender, error) {
	if o.Backend != BackendIOURing {
		return pwriteAppender{}, nil
	}
	app, err := newRingAppender()
	if err != nil {
		return nil, fmt.Errorf("runnel: io_uring backend requested but unavailable: %w", err)
	}
	return app, nil
}

// Dir returns the directory the log was opened on.
func (l *Log) Dir() string { return l.dir }

func (l *Log) checkOpen() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// topic returns this Log's handle on topic name, loading it on first use.
// Another Log, maybe in another process, may have deleted the topic since
// it was loaded, or deleted it and created it anew: a handle is current
// while topics/<name> is the directory it was loaded from and its
// topic.json has the handle's topic ID (a stat and a small read per new
// producer or consumer, never per record). A stale handle is forgotten
// (topic_forget.go), so that its producers and consumers fail with
// ErrTopicNotFound, and the topic is loaded afresh.
func (l *Log) topic(name string) (*topic, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if err := validateName("topic", name); err != nil {
		return nil, err
	}
	for {
		l.mu.Lock()
		if l.closed.Load() { // Close swaps the map under l.mu
			l.mu.Unlock()
			return nil, ErrClosed
		}
		t := l.topics[name]
		if t == nil {
			t, err := l.loadTopic(name)
			if err == nil {
				l.topics[name] = t
			}
			l.mu.Unlock()
			if errors.Is(err, errMarkedDeleted) {
				l.tryFinishDelete(name) // outside l.mu: it waits for writer locks
				return nil, topicDeleted(name)
			}
			return t, err
		}
		tf, stale, err := l.checkTopic(t)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.mu.Unlock()
		if !stale {
			l.growTopic(t, tf.Partitions) // another process added some
			return t, nil
		}
		l.forgetTopic(t) // outside l.mu: closing waits for writes
	}
}

// readTopicFiles runs read, which reads topic name's files by path, on
// this Log's handle on the topic, and returns the handle and the topic's
// file as checked after the read. The handle is taken unchecked: if the
// topic was deleted (and maybe created anew) since it was made, what read
// saw may be another topic's, or missing, and the handle's partition count
// wrong; the check after the read tells, and then read runs again through
// a fresh handle. So a read costs one check of topic.json (a stat and a
// small read), not one before and one after.
func (l *Log) readTopicFiles(name string, read func(*topic) error) (*topic, topicFile, error) {
	l.mu.Lock()
	t := l.topics[name]
	l.mu.Unlock()
	var err error
	if t == nil || l.closed.Load() {
		t, err = l.topic(name)
	}
	for err == nil {
		rerr := read(t)
		tf, stale, cerr := l.checkTopic(t)
		switch {
		case cerr != nil:
			return nil, tf, cerr
		case stale:
			t, err = l.topic(name)
			continue
		case tf.Partitions > len(t.parts()):
			l.growTopic(t, tf.Partitions) // another process added some
			if tf.Partitions > len(t.parts()) {
				t, err = l.topic(name) // t is no longer the Log's handle
			}
			continue
		case rerr != nil:
			return nil, tf, l.orGone(t, rerr)
		}
		return t, tf, nil
	}
	return nil, topicFile{}, err
}

// errMarkedDeleted says a DeleteTopic marked the topic loaded deleted.
var errMarkedDeleted = errors.New("marked deleted")

// loadTopic reads topic name's topic.json and opens a handle on it. A
// topic that a DeleteTopic has marked deleted (at work, or dead) gets
// none: errMarkedDeleted. One marked with no delete intent is loaded: the
// marked partitions fail their appends and reads with the damage
// (strayMark), the others work.
func (l *Log) loadTopic(name string) (*topic, error) {
	tf, err := l.readTopicFile(name)
	if err != nil {
		return nil, err
	}
	// A partition.meta that cannot be read is left to the first use of
	// the partition to report.
	if st, _ := l.deleteState(name); st.committed() {
		return nil, errMarkedDeleted
	}
	// If the topic is re-created between the read and the stat, the
	// handle is stale from the start, and the next topicCurrent says so.
	st, err := os.Stat(l.topicDir(name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	t := &topic{name: name, cfg: tf.TopicConfig, id: tf.ID, dirInfo: st}
	t.partList.Store(&[]*partition{})
	t.addPartitions(l, tf.Partitions)
	return t, nil
}

// giveUp ends every wait of the topic's partitions for their writer locks
// and for other processes' fdatasyncs.
func (t *topic) giveUp() {
	for _, p := range t.parts() {
		p.giveUp()
	}
}

// abandoned reports whether a bounded close ended a wait of one of the
// topic's partitions for its writer lock or another process's fdatasync.
func (t *topic) abandoned() bool {
	return slices.ContainsFunc(t.parts(), func(p *partition) bool { return p.abandoned.Load() })
}

// topicCurrent reports whether t is still the topic of its name: its
// directory is the one t was loaded from, and its topic.json is there and
// has t's ID. The directory check alone is not enough: once a deleted
// topic's files are gone, a new directory may get its inode number. When
// the files cannot be read, it cannot tell, and says true: the caller's
// next use of the files meets the same trouble and reports it.
func (l *Log) topicCurrent(t *topic) bool {
	_, stale, _ := l.checkTopic(t)
	return !stale
}

// checkTopic is topicCurrent with the topic.json read and the error met
// reading it (stale is false then).
func (l *Log) checkTopic(t *topic) (tf topicFile, stale bool, err error) {
	st, err := os.Stat(l.topicDir(t.name))
	if errors.Is(err, fs.ErrNotExist) {
		return tf, true, nil
	}
	if err != nil {
		return tf, false, fmt.Errorf("runnel: topic %s: %w", t.name, err)
	}
	if !os.SameFile(st, t.dirInfo) {
		return tf, true, nil
	}
	tf, err = l.readTopicFile(t.name)
	if errors.Is(err, ErrTopicNotFound) {
		return tf, true, nil
	}
	if err != nil {
		return tf, false, err
	}
	return tf, tf.ID != t.id, nil
}

// orGone turns err, met while reading or opening t's files, into
// ErrTopicNotFound when t is no longer current: a file is missing because
// another Log deleted the topic, not because something is wrong with it.
// This Log then forgets t (topic_forget.go).
func (l *Log) orGone(t *topic, err error) error {
	if err != nil && errors.Is(err, fs.ErrNotExist) && !l.topicCurrent(t) {
		l.forgetTopicLater(t) // a writer with the files open may call
		return fmt.Errorf("%w (%v)", topicDeleted(t.name), err)
	}
	return err
}

// close flushes and closes every partition of the topic; later sends
// through it fail with reason.
func (t *topic) close(reason error) error {
	var errs []error
	for _, p := range t.parts() {
		errs = append(errs, p.close(reason))
	}
	errs = append(errs, t.dropHint())
	return errors.Join(errs...)
}

// Close flushes every queued record, waits for writes in flight, and closes
// the log's files. It is idempotent; every later call on the Log, its
// producers and its consumers returns ErrClosed. A group member among its
// consumers that is still open leaves its group at once, as a member whose
// process dies does: it commits nothing and calls no OnRevoked (records
// handed out since its last commit go to the next owner again); close
// consumers first to leave as Consumer.Close does. Close waits as long as
// another process holds a partition's writer lock that a queued record
// needs, or the sync lock of a partition with records waiting for their
// fdatasync (in a Buffered or Periodic Log, the one Close makes);
// CloseContext bounds those waits.
func (l *Log) Close() error { return l.CloseContext(context.Background()) }

// CloseContext is Close, waiting for other processes' writer and sync
// locks only until ctx ends. Then the records still queued fail with
// ErrClosed (their Send, SendAsync callback or Flush says so), and so do
// records committed and still waiting for an fdatasync that another
// process holds back (they may be in the log, not known durable; in a
// Buffered or Periodic Log they were acknowledged, and Close's fdatasync
// is given up); the files are closed all the same, and CloseContext
// returns an error wrapping ctx.Err(). Only the first Close or
// CloseContext of a Log does the work; later ones return its result.
func (l *Log) CloseContext(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.wakeConsumers()
		groupsErr := l.abandonGroups()
		l.mu.Lock()
		topics := l.topics
		l.topics = map[string]*topic{}
		forgetting, forgotten := l.forgettingNow()
		l.mu.Unlock()
		stop := context.AfterFunc(ctx, func() {
			for _, t := range topics {
				t.giveUp()
			}
			for _, t := range forgetting {
				t.giveUp()
			}
		})
		l.stopRetention()
		l.ckpts.stop()
		l.parts.stopSweeps()
		if l.stopSync != nil {
			close(l.stopSync)
			<-l.syncDone
		}
		for _, done := range forgotten { // before the backend and cache close
			<-done
		}
		errs := []error{groupsErr}
		for _, t := range topics {
			errs = append(errs, t.close(ErrClosed))
		}
		errs = append(errs, l.app.close())
		l.segs.close()
		if !stop() && slices.ContainsFunc(slices.Collect(maps.Values(topics)), (*topic).abandoned) {
			errs = append(errs, fmt.Errorf("runnel: close %s: gave up waiting for another process's writer or sync lock; records still waiting for it failed: %w", l.dir, ctx.Err()))
		}
		l.closeErr = errors.Join(errs...)
		traceWrite() // the tracing build's trace file (trace_on.go)
	})
	return l.closeErr
}

func (l *Log) addConsumer(c *Consumer) {
	l.consMu.Lock()
	if l.consumers == nil {
		l.consumers = map[*Consumer]struct{}{}
	}
	l.consumers[c] = struct{}{}
	l.consMu.Unlock()
}

func (l *Log) removeConsumer(c *Consumer) {
	l.consMu.Lock()
	delete(l.consumers, c)
	l.consMu.Unlock()
}

// wakeConsumers ends every sleeping Poll of this Log's consumers, which
// then see the Log closed.
func (l *Log) wakeConsumers() {
	l.consMu.Lock()
	defer l.consMu.Unlock()
	for c := range l.consumers {
		c.cancel.Add(1)
		wakePrivate(&c.cancel)
	}
}

// recordRecovery keeps a post-reboot recovery's report for Recoveries.
func (l *Log) recordRecovery(r RecoveryReport) {
	l.recMu.Lock()
	l.recoveries = append(l.recoveries, r)
	l.recMu.Unlock()
}

// Recoveries returns what the recoveries run by this Log verified, cut and
// found lost, in the order they ran: one report per partition recovered
// after a reboot (by the first writer after it, so a report appears after
// this Log's first append to the partition, or a reader's repair), and one
// for each partition in which a writer found committed records gone
// without one (RecoveryReport.Reboot false).
func (l *Log) Recoveries() []RecoveryReport {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	return slices.Clone(l.recoveries)
}
