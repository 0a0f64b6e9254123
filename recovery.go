package runnel

import (
	"fmt"
	"slices"

	"github.com/runnel-log/runnel/internal/frame"
)

// Power-loss recovery (DESIGN §3). A crash of a process leaves the page
// cache intact, so everything committed stays readable and only the tail
// needs the writer's usual repair. A power loss can lose any unsynced page,
// in any order: frames after the last fdatasync may be missing, torn or
// stale anywhere, not just at the tail, and so may index entries. So the
// first writer after a reboot trusts only the synced checkpoint in
// partition.meta (meta_checkpoint.go): it re-verifies every frame after it,
// through every later segment, truncates the last segment at the first
// frame that is not whole (a break in a segment that has a later one is
// damage: it was synced before the later one was created), drops index
// entries it did not verify, reports what was known committed and is gone,
// syncs what it verified, and records a new checkpoint.
//
// A reboot is detected by the boot id recorded with the checkpoint: a
// different id means the machine restarted since. No usable checkpoint (a
// new partition, one written by an older runnel, or a damaged
// partition.meta) means nothing says what was synced, so everything is
// verified.

// RecoveryReport describes one recovery: what it verified and cut, and
// which committed offsets it found gone.
type RecoveryReport struct {
	Partition string // topic/partition directory
	// Reboot is set for a recovery after the machine restarted (or with
	// no synced checkpoint to go by). Without it, the report is of a
	// writer that found committed records gone in the same boot: damage,
	// and it refuses appends until Repair.
	Reboot         bool
	FromSegment    int64  // base of the segment verification started in
	FromPos        int64  // byte position it started at
	FramesVerified int    // frames checked after the checkpoint
	CutFile        string // segment truncated, if any
	CutPos         int64  // where it was truncated; -1 if nothing was cut
	CutBytes       int64  // bytes cut from it
	// RemovedSegments is always empty: recovery never removes a segment
	// (one that has a later segment was synced before that one was
	// created, so a break in it is damage, not a power loss's doing).
	// Kept so that code reading it still compiles.
	RemovedSegments []int64
	NextOffset      int64 // the partition's next offset after recovery
	// LostFrom and LostTo are the offsets [LostFrom, LostTo) that were
	// known committed and are gone; equal when nothing known was lost.
	// In Durable mode a power loss never loses an acknowledged record;
	// in Periodic and Buffered modes it may, and this says which.
	LostFrom, LostTo int64
	LostReason       string // what knew they were committed
}

// recoverIfRebooted runs recovery if this is the first writer since the
// machine restarted (or since the checkpoint was lost). It reports whether
// it left p.w at the tail. The caller holds the writer lock.
func (p *partition) recoverIfRebooted(ev evidence) (bool, error) {
	cp, ok := p.shm.checkpoint()
	boot := currentBootID
	if ok && cp.boot == boot {
		return false, nil
	}
	bases, err := listSegments(p.dir)
	if err != nil {
		return false, fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
	}
	if len(bases) == 0 {
		// A new partition: start recording. Its directory entry for
		// partition.meta must be durable for the checkpoint to be.
		if err := syncDir(p.dir); err != nil {
			return false, err
		}
		if err := p.shm.setCheckpoint(checkpoint{boot: boot, base: 0, pos: 0, next: 0}); err != nil {
			return false, err
		}
		return false, p.setDurablePoint(currentBootID, 0, 0, 0)
	}
	// What was known committed, read before anything changes: synced
	// evidence decides (data it covers is damage if gone, never cut);
	// the index entries and later segments only add to the report.
	rules := p.knownCommitted(ev)
	rules.findNext = true
	start := checkpoint{base: bases[0], pos: 0, next: bases[0]}
	if from, usable := p.recoveryStart(cp, ok, bases); usable {
		// A checkpoint of another boot: the machine restarted, and what
		// follows the checkpoint may not have reached the disk.
		start, rules.powerLoss = from, true
	} else {
		// No usable checkpoint. The first one is synced before the first
		// segment is created, so this is not a power loss's doing but a
		// damaged or missing partition.meta (or one an older runnel
		// wrote): verify everything, and cut only what a writer left
		// unfinished, as in the same boot.
		p.log.opts.Logger.Warn("runnel: no usable synced checkpoint, verifying the whole partition", "partition", p.dir)
	}
	reported := rules
	if next, ok := indexHint(p.dir); ok && next > reported.knownEnd {
		reported.knownEnd, reported.knownBy = next, "an index entry written before the restart"
	}
	rep := RecoveryReport{Partition: p.dir, Reboot: true, FromSegment: start.base, FromPos: start.pos, CutPos: -1}

	p.dropActive()
	for _, b := range bases {
		if b < start.base {
			continue
		}
		keep := int64(0)
		if b == start.base {
			keep = start.pos
		}
		// Entries past the checkpoint may describe bytes the power loss
		// took; the walk below adds them again for the frames it verifies.
		if err := trimIndexFiles(p.dir, b, keep); err != nil {
			return false, fmt.Errorf("runnel: recover %s: %w", segmentPath(p.dir, b, indexExt), err)
		}
	}
	if err := p.openActive(start.base); err != nil {
		return false, err
	}
	if err := p.catchUpMaxTime(start); err != nil {
		return false, err
	}
	tf, err := p.walkTailReport(start.pos, start.next, true, rules)
	rep.FramesVerified = tf.frames
	if tf.cut > 0 {
		rep.CutFile, rep.CutPos, rep.CutBytes = tf.cutFile, tf.verdict.pos, tf.cut
	}
	if p.w != nil {
		rep.NextOffset = p.w.next
	}
	v := tf.verdict
	if v.found {
		reported.knownEnd = max(reported.knownEnd, v.resumeEnd)
	}
	if v.kind != tailDamage {
		v.found = false // the cut took what followed; report it by offset
		if reported.knownEnd > rep.NextOffset && reported.knownBy == "" {
			reported.knownBy = "committed frames found past the cut"
		}
	}
	v.next = rep.NextOffset
	from, to := v.lost(reported)
	if to > from {
		rep.LostFrom, rep.LostTo, rep.LostReason = from, to, reported.knownBy
		p.log.stats.recordsLost.Add(to - from)
		p.log.opts.Logger.Error("runnel: committed records lost to a power failure",
			"partition", p.dir, "from_offset", from, "to_offset", to-1, "count", to-from, "known_from", reported.knownBy)
	}
	if rep.CutPos >= 0 || len(rep.RemovedSegments) > 0 || err != nil {
		p.log.opts.Logger.Warn("runnel: recovered after reboot",
			"partition", rep.Partition, "from_segment", rep.FromSegment, "from_pos", rep.FromPos,
			"frames_verified", rep.FramesVerified, "cut_file", rep.CutFile, "cut_pos", rep.CutPos,
			"cut_bytes", rep.CutBytes, "removed_segments", rep.RemovedSegments, "next_offset", rep.NextOffset, "err", err)
	}
	p.log.recordRecovery(rep)
	if err != nil {
		return false, err
	}
	// Everything up to the tail is verified; it must be synced too before
	// the checkpoint may say so, or a second power loss could make it lie.
	// Without a checkpoint of another boot (partition.meta damaged, or
	// torn by a crash as it was rewritten) the log may hold bytes of this
	// boot that no one synced yet; and recovery rewrote the index entries
	// of every segment it walked.
	if err := syncSegments(p.dir, start.base, p.w.base, true); err != nil {
		return false, err
	}
	if err := p.shm.setCheckpoint(checkpoint{boot: boot, base: p.w.base, pos: p.w.pos, next: p.w.next}); err != nil {
		return false, err
	}
	if err := p.setDurablePoint(currentBootID, p.w.base, p.w.pos, p.w.next); err != nil {
		return false, err
	}
	// The published tail is live state of the last boot: it may name
	// bytes the cut took, and a syncer must not take them for the tail.
	p.shm.publishTail(p.w.tail(), p.w.maxTS)
	p.countFromCheckpoint()
	return true, nil
}

// recoveryStart returns where recovery starts verifying, given the
// checkpoint cp (ok: there is one) and the segments there are, and whether
// it is usable at all. A checkpoint at the start of a segment that is
// missing is usable: the segment was created after it, and the power loss
// took its directory entry. One in a segment below the first (retention
// removed it, and the power loss took the update of the checkpoint) means
// every segment left follows it.
func (p *partition) recoveryStart(cp checkpoint, ok bool, bases []int64) (checkpoint, bool) {
	switch {
	case !ok:
		return cp, false
	case cp.base < bases[0]:
		return checkpoint{base: bases[0], pos: 0, next: bases[0]}, true
	case !slices.Contains(bases, cp.base):
		return cp, cp.pos == 0 && cp.next == cp.base
	}
	return cp, p.checkpointUsable(cp)
}

// checkpointUsable checks a checkpoint against the log: its position is
// inside its segment and aligned, and a good frame there, if any, starts
// at its offset.
func (p *partition) checkpointUsable(cp checkpoint) bool {
	if cp.pos%frame.Align != 0 {
		return false
	}
	if cp.pos == 0 {
		return cp.next == cp.base
	}
	f, err := openRegularRead(segmentPath(p.dir, cp.base, logExt))
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < cp.pos {
		return false
	}
	fr, st, err := newCursor(f, f.Name(), cp.pos, -1).peek()
	return err == nil && (!st.good() || fr.meta.Base == cp.next)
}

// catchUpMaxTime brings p.w.maxTS, which the time index gives as of its
// last entry, up to the records before start: the index entries the walk
// adds after it (the seal's time entry among them) must bound them too.
// It reads the frame headers between the last entry and start (synced
// data). If they do not lead there, the index is rebuilt from the whole
// segment, and the headers are read again from the rebuilt index's last
// entry: the rebuilt index, too, gives maxTS only as of that entry.
func (p *partition) catchUpMaxTime(start checkpoint) error {
	if landed, err := p.readMaxTimeTo(start.pos); err != nil || landed {
		return err
	}
	// The rebuild stops at the first frame that is not good, as the walk
	// after it does: its entries describe only verified frames.
	p.dropActive()
	if err := rebuildIndex(p.dir, start.base, p.topic.cfg.IndexIntervalBytes); err != nil {
		return err
	}
	if err := p.openActive(start.base); err != nil {
		return err
	}
	if landed, err := p.readMaxTimeTo(start.pos); err != nil || landed {
		return err
	}
	// The frames before the checkpoint do not lead to it: damage in
	// synced data, which Verify and readers report. maxTS bounds every
	// record the walk could read.
	p.log.opts.Logger.Warn("runnel: frames before the synced checkpoint do not lead to it", "path", p.w.path, "checkpoint", start)
	return nil
}

// readMaxTimeTo raises p.w.maxTS by the records from the active segment's
// last index entry (its start, with none) up to byte end, and reports
// whether the frames there lead exactly to end. A seal at end counts:
// the walk moves past a seal without visiting it, so where it stopped is
// the seal's position, not the cursor's.
func (p *partition) readMaxTimeTo(end int64) (bool, error) {
	pos, next := int64(0), p.w.base
	if p.w.idx.entries > 0 {
		pos, next = p.w.idx.lastPos, p.w.base+p.w.idx.lastRel
	}
	if pos >= end {
		return true, nil
	}
	c := newCursor(p.w.f, p.w.path, pos, next)
	c.verify = false
	stop, st, err := c.walk(func(f segFrame) bool {
		if f.pos >= end {
			return false
		}
		if f.meta.Kind == frame.KindRecords {
			p.w.maxTS = max(p.w.maxTS, f.meta.MaxTime)
		}
		return true
	})
	if err != nil {
		return false, err
	}
	return c.pos == end || st == frameSeal && stop.pos == end, nil
}
