package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// Retention (DESIGN §8) removes a partition's oldest segments, whole, when
// they fall outside the topic's limits:
//
//   - RetentionAge: a sealed segment whose newest record is older than the
//     limit. The newest timestamp is the last .timeindex entry, which the
//     writer adds when it seals the segment, once it checks out against
//     the log (checkTimeEntry: the frame headers since the entry before
//     it are no newer, and lead to the seal): a damaged entry must not
//     make a segment look older than its records. When that entry is
//     missing (an index lost or from an older writer) or does not check
//     out, the frame headers' max_time fields are scanned, from the last
//     entry if that one checks out, else from the segment's start; when
//     the segment cannot be scanned either, the .log file's modification
//     time stands in (the moment of the seal, never older than the
//     records).
//   - RetentionBytes: the oldest sealed segments while the partition's
//     .log files hold more bytes than the limit.
//
// Only a prefix of the partition is removed, oldest first, and never the
// last segment, which is (or is about to become) the active one (an
// active segment past the age limit is sealed first: retention_active.go,
// and the new, empty one it leaves is the last); so the
// partition always stays one contiguous run of offsets, and its start moves
// to the base of the oldest segment left.
//
// Removal needs the partition's writer lock, so it never races an append, a
// roll or another process's retention. It is done by the lock holder when it
// rolls a segment, by each Log for the topics it has open every
// Options.RetentionInterval, and by EnforceRetention.
//
// A segment's .log is unlinked first: the segment leaves every listing in
// one step, and a reader that listed it a moment before and then fails to
// open it knows from the later segments that it was removed (ErrOutOfRange).
// Its index files go next; a crash in between leaves index files without a
// .log, which nothing reads and the next removal sweeps away. A reader that
// has the .log open keeps reading it, as unlinked files stay readable, and
// moves on through its seal to the next segment if that one is still there.

// retentionLoop is a Log's background retention check.
type retentionLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *Log) startRetention() {
	if l.opts.RetentionInterval < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.retention = retentionLoop{cancel: cancel, done: make(chan struct{})}
	go l.retentionLoop(ctx, l.retention.done)
}

// stopRetention stops the background check and waits for a pass in
// progress to give up.
func (l *Log) stopRetention() {
	if l.retention.done == nil {
		return
	}
	l.retention.cancel()
	<-l.retention.done
}

func (l *Log) retentionLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(l.opts.RetentionInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.retentionPass(ctx)
	}
}

// retentionPass is one round of the background check: every topic this
// Log has a handle on, its config read afresh, its limits applied. A
// handle on a topic deleted since is dropped (refreshTopicConfig): this is
// where a Log lets go of topics others deleted that it no longer uses.
func (l *Log) retentionPass(ctx context.Context) {
	l.mu.Lock()
	topics := slices.Collect(maps.Values(l.topics))
	l.mu.Unlock()
	for _, t := range topics {
		if ctx.Err() != nil {
			return
		}
		// The wait for the append mutexes is bounded as each partition's
		// wait for its locks is (enforceTopic).
		rctx, cancel := context.WithTimeout(ctx, l.opts.RetentionInterval)
		err := l.refreshTopicConfig(rctx, t)
		cancel()
		if err != nil {
			continue // deleted (and forgotten), unreadable, or ctx ended: nothing to enforce here
		}
		if _, err := l.enforceTopic(ctx, t, l.opts.RetentionInterval); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			l.opts.Logger.Warn("runnel: retention check failed", "topic", t.name, "err", err)
		}
	}
}

// EnforceRetention applies every topic's retention limits now, reading
// each topic's config afresh from disk. It waits for the writer lock of
// each partition that has segments to remove, or an expired active
// segment to seal, and returns ctx.Err() if ctx ends first. Segments
// removed are logged at level Info.
func (l *Log) EnforceRetention(ctx context.Context) error {
	names, err := l.Topics()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		t, err := l.topic(name)
		if errors.Is(err, ErrTopicNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := l.refreshTopicConfig(ctx, t); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, ErrTopicNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if _, err := l.enforceTopic(ctx, t, 0); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshTopicConfig picks up a config change made by another process
// (AlterTopic there), so that it takes effect here without a reopen. A
// handle on a topic another process deleted, or deleted and created anew,
// is forgotten (topic_forget.go), and the error is ErrTopicNotFound.
// ctx bounds the wait for the partitions' append mutexes (applyTopicConfig).
func (l *Log) refreshTopicConfig(ctx context.Context, t *topic) error {
	tf, stale, err := l.checkTopic(t)
	if err != nil {
		return err
	}
	if stale || tf.Partitions < len(t.parts()) {
		l.forgetTopic(t)
		return topicDeleted(t.name)
	}
	l.growTopic(t, tf.Partitions) // another process added some
	if cfg := tf.TopicConfig; cfg != l.topicConfig(t) {
		return l.applyTopicConfig(ctx, t, cfg)
	}
	return nil
}

// applyTopicConfigIfFree is applyTopicConfig for a call that has no ctx
// and no reason to wait (DescribeTopic): it makes cfg current only if no
// partition's append mutex is held, and otherwise leaves that to the next
// retention check (refreshTopicConfig). A writer holds its mutex while it
// waits for another process's writer lock, which a process stopped with
// Ctrl-Z or SIGSTOP keeps for as long as it is stopped.
func (l *Log) applyTopicConfigIfFree(t *topic, cfg TopicConfig) {
	ended, cancel := context.WithCancel(context.Background())
	cancel() // lockWmuContext takes a free mutex, and waits for none
	l.applyTopicConfig(ended, t, cfg)
}

// removedSegment is one segment retention removed.
type removedSegment struct {
	partition int
	base      int64
	next      int64 // base of the segment after it: the new start, if it was the last removed
	bytes     int64
	reason    string // "age" or "bytes"
}

// enforceTopic applies a topic's retention to each of its partitions.
// partWait, if not zero, bounds each partition's wait for its locks: the
// background check waits one RetentionInterval for a partition whose
// writer lock another process keeps (stopped with Ctrl-Z or SIGSTOP, or
// hung), and goes on to the next partition, leaving that one to the next
// check, rather than leave every partition after it unchecked for as long
// as the process keeps the lock.
func (l *Log) enforceTopic(ctx context.Context, t *topic, partWait time.Duration) ([]removedSegment, error) {
	cfg := l.topicConfig(t)
	if cfg.RetentionAge == 0 && cfg.RetentionBytes == 0 {
		return nil, nil
	}
	var removed []removedSegment
	var errs []error
	for _, p := range t.parts() {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if partWait > 0 {
			pctx, cancel = context.WithTimeout(ctx, partWait)
		}
		r, err := p.enforceRetention(pctx, cfg, time.Now())
		if err != nil && pctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("runnel: retention of %s: gave up waiting %v for its writer lock, until the next check: %w", p.dir, partWait, err)
		}
		cancel()
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// enforceRetention removes the partition's segments outside cfg's limits,
// sealing first an active segment whose records are all past the age
// limit (retention_active.go). It plans without any lock first, so that a
// partition with nothing to remove costs a directory listing and never
// delays a writer.
func (p *partition) enforceRetention(ctx context.Context, cfg TopicConfig, now time.Time) ([]removedSegment, error) {
	// One listing for both the plan and the active segment's check.
	bases, err := retentionSegments(p.dir)
	if err != nil {
		return nil, err
	}
	plan, err := planRetentionOf(p.dir, bases, cfg, now, p.log.indexDamaged)
	if err != nil {
		return nil, err
	}
	cutoff := now.Add(-cfg.RetentionAge)
	rollActive := cfg.RetentionAge > 0 && activeMaybeExpired(p.dir, bases, cutoff)
	if len(plan) == 0 && !rollActive {
		return nil, nil
	}
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil && len(plan) == 0 && isPermission(err) {
		// Only the seal was due, which only a writer can make: a Log
		// that may only read the partition (reading needs no more)
		// leaves it to the writers' checks, rather than fail at it
		// every RetentionInterval.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	if cp, ok := p.shm.checkpoint(); !ok || cp.boot != currentBootID {
		// No writer recovered since the machine restarted (or the
		// checkpoint did not check out): recovery goes first, from the
		// checkpoint as the last boot left it. Damage it finds stays for
		// Repair; retention of older segments goes on.
		if err := p.findTail(); err != nil && !errors.As(err, new(*CorruptError)) {
			return nil, err
		}
	}
	if rollActive {
		// Damage stays for Repair, as above; the sealed segments' removal
		// goes on.
		if err := p.rollExpiredActive(cutoff); err != nil && !errors.As(err, new(*CorruptError)) {
			return nil, err
		}
	}
	return p.removeExpired(cfg, now)
}

// retainAfterRoll applies retention as part of a roll: the writer holds
// the lock and has just sealed a segment, which may now be removable.
func (p *partition) retainAfterRoll() {
	cfg := p.topic.cfg // the caller holds p.wmu, which guards changes to it
	if cfg.RetentionAge == 0 && cfg.RetentionBytes == 0 {
		return
	}
	if _, err := p.removeExpired(cfg, time.Now()); err != nil {
		p.log.opts.Logger.Warn("runnel: retention after roll failed", "partition", p.dir, "err", err)
	}
}

// removeExpired removes what planRetention finds. The caller holds p.wmu
// and the writer lock.
func (p *partition) removeExpired(cfg TopicConfig, now time.Time) ([]removedSegment, error) {
	plan, err := planRetention(p.dir, cfg, now, p.log.indexDamaged)
	if err != nil || len(plan) == 0 {
		return nil, err
	}
	return p.removeSegments(plan)
}

// removeSegments removes plan's segments, a prefix of the partition's
// sealed ones, oldest first, and moves what pointed into them (the
// durable point, the checkpoint) to the first segment left. The caller
// holds p.wmu and the writer lock.
func (p *partition) removeSegments(plan []removedSegment) ([]removedSegment, error) {
	var removed []removedSegment
	for _, s := range plan {
		if err := removeSegmentFiles(p.dir, s.base); err != nil {
			return removed, fmt.Errorf("runnel: retention in %s: %w", p.dir, err)
		}
		p.forgetSealChecks(s.next)
		s.partition = p.id
		removed = append(removed, s)
		p.log.opts.Logger.Info("runnel: retention removed segment", "partition", p.dir,
			"base", s.base, "next", s.next, "bytes", s.bytes, "reason", s.reason)
	}
	start := plan[len(plan)-1].next
	if p.w != nil && p.w.base < start {
		// This Log's view of the tail is a segment another writer sealed
		// long ago: forget it rather than follow its seal.
		p.dropActive()
	}
	// Recovery after a reboot starts at the durable point; if that was in
	// a removed segment, start it at the new first segment instead, which
	// keeps its coverage of everything left (a point with no boot id means
	// "verify the last segment" and stays as it is).
	if err := p.durablePointFrom(start); err != nil {
		return removed, err
	}
	// The same for the synced checkpoint: sealed segments are synced
	// before a checkpoint passes them, so the new first one is covered.
	// Only one of this boot moves: one of another boot (recovery found
	// damage and kept it) says that what follows it was not verified since
	// the restart, and recovery starts at the first segment left anyway
	// (recoveryStart).
	if cp, ok := p.shm.checkpoint(); ok && cp.boot == currentBootID && cp.base < start {
		if err := syncDir(p.dir); err != nil {
			return removed, err
		}
		cp.base, cp.pos, cp.next = start, 0, start
		if err := p.shm.setCheckpoint(cp); err != nil {
			return removed, err
		}
	}
	sweepOrphanIndexes(p.dir, start)
	return removed, syncDir(p.dir)
}

// planRetention lists the segments to remove, oldest first: a prefix of
// the sealed ones, each outside the byte limit or the age limit. damaged,
// if not nil, hears of time index entries the log does not bear out
// (segmentNewest).
func planRetention(dir string, cfg TopicConfig, now time.Time, damaged func(path, why string)) ([]removedSegment, error) {
	if cfg.RetentionAge == 0 && cfg.RetentionBytes == 0 {
		return nil, nil
	}
	bases, err := retentionSegments(dir)
	if err != nil {
		return nil, err
	}
	return planRetentionOf(dir, bases, cfg, now, damaged)
}

// retentionSegments lists dir's segments for retention: none if the
// topic was deleted.
func retentionSegments(dir string) ([]int64, error) {
	bases, err := listSegments(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runnel: list segments of %s: %w", dir, err)
	}
	return bases, nil
}

// planRetentionOf is planRetention of the segments bases, listed by the
// caller.
func planRetentionOf(dir string, bases []int64, cfg TopicConfig, now time.Time, damaged func(path, why string)) ([]removedSegment, error) {
	if len(bases) < 2 {
		return nil, nil
	}
	sizes := make([]int64, len(bases))
	var total int64
	for i, b := range bases {
		st, err := os.Stat(segmentPath(dir, b, logExt))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile by another process's retention
		}
		if err != nil {
			return nil, err
		}
		sizes[i] = st.Size()
		if i == len(bases)-1 {
			// The last segment may end in the zeros a writer extends it
			// by (prealloc.go): they are not data.
			sizes[i] = dataSize(dir, b, sizes[i])
		}
		total += sizes[i]
	}
	// Segments wholly below the start DeleteRecords recorded go too (it
	// removes them itself; this is for one that died before it could). A
	// damaged file is reported by the readers, never taken as a start.
	start, _ := readLogStart(dir)
	cutoff := now.Add(-cfg.RetentionAge).UnixNano()
	var plan []removedSegment
	for i := 0; i < len(bases)-1; i++ {
		s := removedSegment{base: bases[i], next: bases[i+1], bytes: sizes[i]}
		switch {
		case bases[i+1] <= start:
			s.reason = "log start"
		case cfg.RetentionBytes > 0 && total > cfg.RetentionBytes:
			s.reason = "bytes"
		case cfg.RetentionAge > 0:
			newest, err := segmentNewest(dir, bases[i], bases[i+1]-bases[i], sizes[i], damaged)
			if err != nil {
				return plan, err
			}
			if newest < cutoff {
				s.reason = "age"
			}
		}
		if s.reason == "" {
			break
		}
		plan = append(plan, s)
		total -= sizes[i]
	}
	return plan, nil
}

// segmentNewest returns the newest record timestamp of the sealed segment
// base, which holds count offsets in size bytes (see the top of this file
// for where it comes from). The time index is trusted only as far as its
// last entry checks out against the log (checkTimeEntry): an entry that
// does not, which damaged would make the segment look older than its
// records, is passed to damaged (if not nil), and the segment is scanned
// instead.
func segmentNewest(dir string, base, count, size int64, damaged func(path, why string)) (int64, error) {
	tpath := segmentPath(dir, base, timeIndexExt)
	tentries, err := readTimeIndex(tpath, size/frame.HeaderSize+2, count)
	if err != nil {
		tentries = nil
	}
	path := segmentPath(dir, base, logExt)
	f, err := openRegularRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 1<<63 - 1, nil // removed meanwhile: certainly nothing to do
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Records before the last time entry are no newer than it says; scan
	// the rest, from the frame it names.
	c := newCursor(f, path, 0, base)
	pos, next, newest := int64(0), base, int64(-1<<63)
	if n := len(tentries); n > 0 {
		entries, _ := readIndex(segmentPath(dir, base, indexExt), size)
		chk, err := checkTimeEntry(c, base, entries, tentries, n-1)
		if err != nil {
			return 0, err
		}
		switch {
		case chk.ok && chk.sealed && int64(tentries[n-1].rel) == count:
			return tentries[n-1].ts, nil
		case chk.ok && !chk.sealed:
			pos, next, newest = chk.pos, base+int64(tentries[n-1].rel), tentries[n-1].ts
		case !chk.ok && damaged != nil:
			damaged(tpath, chk.why)
		}
	}
	c.seek(pos, next)
	c.invalidate()
	c.verify = false
	maxTS := int64(-1 << 63)
	_, st, err := c.walk(func(fr segFrame) bool {
		if fr.meta.Kind == frame.KindRecords {
			maxTS = max(maxTS, fr.meta.MaxTime)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if st != frameSeal {
		st, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return max(newest, maxTS, st.ModTime().UnixNano()), nil
	}
	return max(newest, maxTS), nil
}

// removeSegmentFiles unlinks a segment's files, the .log first.
func removeSegmentFiles(dir string, base int64) error {
	for _, ext := range []string{logExt, indexExt, timeIndexExt} {
		if err := os.Remove(segmentPath(dir, base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// sweepOrphanIndexes removes index files below start whose .log is gone:
// what a crash in the middle of removeSegmentFiles leaves.
func sweepOrphanIndexes(dir string, start int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if len(name) <= segNameLen {
			continue
		}
		ext := name[segNameLen:]
		if ext != indexExt && ext != timeIndexExt {
			continue
		}
		base, ok := segmentBase(name[:segNameLen])
		if !ok || base >= start {
			continue
		}
		if _, err := os.Stat(segmentPath(dir, base, logExt)); errors.Is(err, fs.ErrNotExist) {
			os.Remove(segmentPath(dir, base, ext))
		}
	}
}

// activeRemoved reports whether this Log's active segment is no longer in
// the partition directory (retention removed it after another writer
// rolled past it). The caller holds the writer lock, so the answer holds
// until it releases it.
func (p *partition) activeRemoved() bool {
	fst, err := p.w.f.Stat()
	if err != nil {
		return true
	}
	st, err := os.Stat(p.w.path)
	return err != nil || !os.SameFile(st, fst)
}

// segmentGone handles a reader's move to segment base that found no such
// file. With no later segment it is simply not created yet (its
// predecessor was just sealed): the reader waits. With later segments it
// was removed by retention: ErrOutOfRange, or, for a reader that resets,
// a move to the oldest segment left.
func (r *partReader) segmentGone(base int64) error {
	for {
		bases, err := listSegments(r.p.dir)
		if err != nil {
			return fmt.Errorf("runnel: list segments of %s: %w", r.p.dir, err)
		}
		if len(bases) == 0 || bases[len(bases)-1] < base {
			return nil
		}
		if !slices.Contains(bases, base) && bases[0] < base {
			later := bases[len(bases)-1]
			for _, b := range bases {
				if b > base {
					later = b
					break
				}
			}
			return missingSegment(r.p.dir, base, later)
		}
		if bases[0] > base {
			if !r.resetOutOfRange {
				return r.p.outOfRange(base)
			}
			base = bases[0]
		}
		// base exists now: created, or reset to, since the last look.
		path := segmentPath(r.p.dir, base, logExt)
		f, err := r.p.log.segs.openSegmentFile(path)
		if err == nil {
			r.useSegment(f, base)
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("runnel: open segment: %w", err)
		}
		if err := leadsNowhere(path, err); err != nil {
			return err
		}
	}
}

// leadsNowhere is the damage of a file's name that is there but leads to
// no file (a symbolic link whose target is gone), given openErr, the
// ErrNotExist that opening path gave; nil when the name is gone too (a
// segment retention removed since the listing, a file of kafka/ the
// server replaced). Listed again and again, such a segment's name would
// keep segmentGone looking for good.
func leadsNowhere(path string, openErr error) *CorruptError {
	if !danglingLink(path) {
		return nil
	}
	return &CorruptError{Path: path, Pos: -1, Offset: -1, Err: fmt.Errorf("a symbolic link that leads to no file: %w", openErr)}
}

// danglingLink reports whether path is a symbolic link whose target is
// not there. Only a link: a file made at path since an open found none
// (a segment begun again at the same base) is no damage.
func danglingLink(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	_, err = os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// belowStart handles a seek to an offset that retention removed: the
// start instead for a reader that resets, ErrOutOfRange otherwise.
func (r *partReader) belowStart(offset, start int64) (int64, error) {
	if r.resetOutOfRange {
		return start, nil
	}
	return 0, r.p.outOfRange(offset)
}
