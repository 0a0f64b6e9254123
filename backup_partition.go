package runnel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// A partition's side of Backup (backup.go): where its copy ends, the copy
// of its segments, the check of each, and its fresh partition.meta.

// partPlan is a partition as the plan found it.
type partPlan struct {
	p *partition
	// meta is a copy of partition.meta read before the tail (nil: none):
	// what it says was committed is judged against the data, as Verify
	// does, and tells whether a machine restart left the data after its
	// checkpoint unrecovered.
	meta  *metaMap
	tail  logPos  // where the committed data ended
	segs  []int64 // the segments to copy, the tail's last
	bytes int64   // bytes to copy
}

// planPartition reads p's partition.meta, then where its committed data
// ends, then which segments hold the data before it.
func planPartition(p *partition) (*partPlan, error) {
	pp := &partPlan{p: p}
	m, _, err := readMetaCopy(p.dir)
	if err != nil {
		return nil, err
	}
	pp.meta = m
	if pp.tail, err = committedTail(p); err != nil {
		return nil, err
	}
	if rules, _, _ := knownCommittedIn(m); rules.missing(pp.tail.next) {
		// Records partition.meta says were committed are gone: a copy that
		// ended here would hide the loss.
		return nil, &CorruptError{Path: segmentPath(p.dir, pp.tail.base, logExt), Pos: pp.tail.pos, Offset: pp.tail.next, To: rules.knownEnd,
			Err: fmt.Errorf("the data ends at offset %d, but offsets to %d are known committed (%s): they are gone", pp.tail.next, rules.knownEnd-1, rules.knownBy)}
	}
	// Listed after the tail was found, so that every segment up to it is
	// there (but for those retention removes).
	bases, err := listSegments(p.dir)
	if err != nil {
		return nil, fmt.Errorf("runnel: backup: list segments of %s: %w", p.dir, err)
	}
	if len(bases) == 0 && pp.tail == (logPos{}) {
		return pp, nil // never written: nothing to copy
	}
	for _, b := range bases {
		if b < pp.tail.base {
			pp.segs = append(pp.segs, b)
			if st, err := os.Stat(segmentPath(p.dir, b, logExt)); err == nil {
				pp.bytes += st.Size()
			}
		}
	}
	pp.segs = append(pp.segs, pp.tail.base)
	pp.bytes += pp.tail.pos
	return pp, nil
}

// committedTail returns where p's committed data ends now, by the rules
// readers follow to the end (partReader.seekEnd): after the last good
// frame of the last segment, or at the start of the segment a seal names
// that is not created yet.
func committedTail(p *partition) (logPos, error) {
	r := newPartReader(p, 0)
	defer r.close()
	if err := r.seekEnd(); err != nil {
		return logPos{}, err
	}
	if r.f == nil {
		return logPos{base: r.base, pos: 0, next: r.base}, nil
	}
	return logPos{base: r.base, pos: r.cur.pos, next: r.next}, nil
}

// segCopy is the copy of one segment.
type segCopy struct {
	base, size, next int64
	records          int64
}

// partCopy is a partition's copy as it is built.
type partCopy struct {
	pp      *partPlan
	src     string // the source partition directory
	dst     string // its copy
	segs    []segCopy
	removed int  // sealed segments retention removed before they were copied
	cut     bool // the copy ends before the plan's tail (judgeBreak)
}

// copyPartition copies pp's partition into dst.
func (b *backup) copyPartition(pp *partPlan, dst string) (PartitionBackup, error) {
	p := pp.p
	pb := PartitionBackup{Topic: p.topic.name, Partition: p.id}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return pb, fmt.Errorf("runnel: backup: %w", err)
	}
	if len(pp.segs) == 0 {
		return pb, nil
	}
	pc := &partCopy{pp: pp, src: p.dir, dst: dst}
	if err := b.copySegments(pc); err != nil {
		return pb, err
	}
	// The start DeleteRecords recorded, read once the segments are
	// copied: a call that returned while they were copied holds in the
	// copy too (it may have removed segments before they were copied,
	// as retention may, and the first one left would otherwise be taken
	// for the start, showing records the call deleted). The copy holds
	// every record from its first segment on, so any start up to its end
	// is one it can keep.
	recorded, err := readLogStart(p.dir)
	if err != nil {
		return pb, fmt.Errorf("runnel: backup: %w", err)
	}
	last := pc.segs[len(pc.segs)-1]
	cp := checkpoint{boot: currentBootID, base: last.base, pos: last.size, next: last.next}
	if err := writeBackupMeta(dst, cp); err != nil {
		return pb, fmt.Errorf("runnel: backup: %w", err)
	}
	pb.StartOffset, pb.NextOffset = partStart(pc.segs[0].base, recorded, last.next), last.next
	if pb.StartOffset > pc.segs[0].base {
		if err := writeLogStart(dst, pb.StartOffset); err != nil {
			return pb, fmt.Errorf("runnel: backup: %w", err)
		}
	}
	pb.Segments, pb.SegmentsRemoved = len(pc.segs), pc.removed
	if pc.cut {
		pb.LeftOut = max(0, pp.tail.next-last.next)
	}
	for _, s := range pc.segs {
		pb.Records += s.records
		pb.Bytes += s.size
	}
	if pc.removed > 0 {
		b.note("%s/%d: retention or DeleteRecords removed %d segment(s) while the backup ran; the copy starts at offset %d", pb.Topic, pb.Partition, pc.removed, pb.StartOffset)
	}
	return pb, nil
}

// copySegments copies the planned segments, oldest first.
func (b *backup) copySegments(pc *partCopy) error {
	tail, todo := pc.pp.tail, pc.pp.segs
	for i, base := range todo {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		last := i == len(todo)-1
		callBackupHook("segment", pc.pp.p.topic.name, pc.pp.p.id, base)
		path := segmentPath(pc.src, base, logExt)
		src, err := openRegularRead(path)
		if errors.Is(err, fs.ErrNotExist) {
			if ce := leadsNowhere(path, err); ce != nil {
				// Not retention's doing: the segments before it are there.
				return fmt.Errorf("runnel: backup: %w", ce)
			}
			if err := pc.segmentGone(base, last); err != nil {
				return err
			}
			if last {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		want := tail.pos
		if !last {
			st, err := src.Stat()
			if err != nil {
				src.Close()
				return fmt.Errorf("runnel: backup: %w", err)
			}
			want = st.Size()
		}
		following := int64(-1)
		if !last {
			following = todo[i+1]
		}
		done, err := b.copySegment(pc, src, base, want, following)
		src.Close()
		if err != nil || done {
			return err
		}
	}
	return nil
}

// segmentGone handles a source segment that retention removed before it
// could be opened. Retention removes oldest first, so the segments copied
// before it are gone from the source too: the copy drops them and starts
// after it. When the tail's segment is gone (sealed, then removed, since
// the plan), every record the plan held is: the copy is an empty segment
// at the tail, where the next record would have gone.
func (pc *partCopy) segmentGone(base int64, last bool) error {
	tail := pc.pp.tail
	if last && tail.pos == 0 {
		// Not created yet (a seal named it), or created and removed
		// after the copies before it, whose seals name it: an empty
		// segment continues them either way.
		return pc.createEmpty(base)
	}
	pc.removed++
	if err := pc.dropCopied(); err != nil {
		return err
	}
	if last {
		return pc.createEmpty(tail.next)
	}
	return nil
}

// dropCopied removes the segments copied so far.
func (pc *partCopy) dropCopied() error {
	for _, s := range pc.segs {
		pc.removed++
		if err := removeSegmentFiles(pc.dst, s.base); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
	}
	pc.segs = nil
	return nil
}

// createEmpty makes an empty segment at base the copy's last.
func (pc *partCopy) createEmpty(base int64) error {
	if err := writeNewFile(segmentPath(pc.dst, base, logExt), nil); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	if _, err := indexSegment(pc.dst, base, pc.pp.p.log.topicConfig(pc.pp.p.topic).IndexIntervalBytes); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	pc.segs = append(pc.segs, segCopy{base: base, next: base})
	return syncSegmentIndexes(pc.dst, base)
}

// backupChunk is how much of a segment is copied between two looks at ctx
// and two progress reports.
const backupChunk = 8 << 20

// copySegment copies the first want bytes of the source segment src (of
// base) into the copy, then walks the copy to check it and rebuild its
// indexes. following is the base of the next segment to copy, or -1 if
// src holds the tail. done is set when the partition's copy ends here
// before the plan's tail (what followed is left out).
func (b *backup) copySegment(pc *partCopy, src *os.File, base, want, following int64) (done bool, err error) {
	path := segmentPath(pc.dst, base, logExt)
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, fmt.Errorf("runnel: backup: %w", err)
	}
	copied, err := b.copyBytes(dst, src, want)
	if err == nil {
		err = fdatasync(int(dst.Fd()))
	}
	if err = errors.Join(err, dst.Close()); err != nil {
		return false, err
	}
	iw, err := indexSegment(pc.dst, base, pc.pp.p.log.topicConfig(pc.pp.p.topic).IndexIntervalBytes)
	if err != nil {
		return false, fmt.Errorf("runnel: backup: %w", err)
	}
	seg := segCopy{base: base, size: copied, next: iw.next, records: iw.records}
	switch {
	case following < 0 && iw.status == frameEnd && iw.stop.eof && iw.pos == want && iw.next == pc.pp.tail.next:
		// The tail, as planned.
	case following >= 0 && iw.status == frameSeal && iw.pos == copied && iw.next == following:
		// A sealed segment, whole, naming the next.
	case iw.status == frameSeal:
		return false, pc.badSeal(base, iw, copied, following)
	default:
		if err := b.judgeBreak(pc, src, base, iw); err != nil {
			return false, err
		}
		seg.size = iw.pos
		pc.segs = append(pc.segs, seg)
		return true, syncSegmentIndexes(pc.dst, base)
	}
	pc.segs = append(pc.segs, seg)
	return false, syncSegmentIndexes(pc.dst, base)
}

// copyBytes copies the first n bytes of src into dst, both at their start,
// in chunks between which it looks at ctx and reports progress. It
// returns how many it copied: fewer if src is shorter. (*os.File).ReadFrom
// copies with copy_file_range where the system has it.
func (b *backup) copyBytes(dst, src *os.File, n int64) (int64, error) {
	var done int64
	for done < n {
		if err := b.ctx.Err(); err != nil {
			return done, err
		}
		m, err := dst.ReadFrom(io.LimitReader(src, min(n-done, backupChunk)))
		done += m
		b.advance(m)
		if err != nil {
			return done, fmt.Errorf("runnel: backup: copy %s: %w", src.Name(), err)
		}
		if m == 0 {
			break
		}
	}
	return done, nil
}

// badSeal reports a sealed segment that does not fit the next one: bytes
// after its seal, or a seal naming another segment.
func (pc *partCopy) badSeal(base int64, iw indexedWalk, size, following int64) error {
	path := segmentPath(pc.src, base, logExt)
	switch {
	case following < 0:
		// The plan's tail lies past this seal: the segment changed.
		return &CorruptError{Path: path, Pos: iw.stop.pos, Offset: iw.next, Err: errors.New("a seal where the data was to go on")}
	case iw.pos < size:
		return &CorruptError{Path: path, Pos: iw.pos, Offset: iw.next, Err: fmt.Errorf("%d bytes after the seal", size-iw.pos)}
	case iw.next < following:
		return &CorruptError{Path: segmentPath(pc.src, iw.next, logExt), Pos: 0, Offset: iw.next, To: following,
			Err: fmt.Errorf("segment missing: the seal before it names it, and segment %020d%s follows", following, logExt)}
	}
	return &CorruptError{Path: segmentPath(pc.src, following, logExt), Pos: 0, Offset: following,
		Err: fmt.Errorf("segment starts at offset %d, but the seal before it names %d", following, iw.next)}
}

// judgeBreak judges, on the source, where the walk of a segment's copy
// stopped short of the plan, by the rules every reader of the format
// follows (judgeTail): damage fails the backup; what the source's next
// writer or recovery will cut — a dead writer's torn frame, bytes after
// the synced checkpoint that a machine restart did not let reach the disk
// — is cut from the copy, which ends there.
func (b *backup) judgeBreak(pc *partCopy, src *os.File, base int64, iw indexedWalk) error {
	path := segmentPath(pc.src, base, logExt)
	later, err := nextSegmentAfter(pc.src, base)
	if err != nil {
		return err
	}
	if later == 0 {
		later = -1
	}
	unsynced := otherBoot
	if b.opts.CrashImage {
		unsynced = anyBoot
	}
	rules := segmentRules(pc.pp.meta, base, iw.pos, later, unsynced)
	c := newCursor(src, path, iw.pos, iw.next)
	v, err := c.judgeTail(rules)
	if err != nil {
		return err
	}
	switch v.kind {
	case tailDamage:
		from, to := v.lost(rules)
		if to <= from {
			to = -1
		}
		return &CorruptError{Path: path, Pos: v.pos, Offset: from, To: to, Err: errors.New(v.describe(rules))}
	case tailMoved:
		return fmt.Errorf("runnel: backup: the copy of %s differs from it at byte %d (offset %d): %v", path, iw.pos, iw.next, iw.stop.cause)
	}
	cut := filepath.Join(pc.dst, filepath.Base(path))
	if err := os.Truncate(cut, iw.pos); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	if err := syncFile(cut); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	pc.cut = true
	what := v.describe(rules)
	why := "a writer that died left them unfinished; its partition's next writer cuts them"
	switch {
	case v.kind == tailEnd:
		what, why = "the segment ends there now", "they were cut since the backup began"
	case rules.powerLoss && unsynced == anyBoot:
		why = "they follow the last synced checkpoint of a log that was not shut down when this image of it was taken, and did not all reach the image; a recovery would cut them"
	case rules.powerLoss:
		why = "they follow the last synced checkpoint, and the machine restarted before they all reached the disk; the partition's recovery cuts them"
	}
	b.note("%s at byte %d (offset %d): %s: %s; left out of the copy, which ends there", path, iw.pos, iw.next, what, why)
	return nil
}

// syncSegmentIndexes syncs the index files of segment base in dir.
func syncSegmentIndexes(dir string, base int64) error {
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := syncFile(segmentPath(dir, base, ext)); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
	}
	return nil
}

// writeBackupMeta writes a new partition.meta in the partition directory
// dir holding only the synced checkpoint cp. Every other field (the
// durable point, the live words) starts at zero, as in a partition no
// process has opened: a little-endian checkpoint and zeros read the same
// on every machine.
func writeBackupMeta(dir string, cp checkpoint) error {
	path := filepath.Join(dir, metaFileName)
	m := newMetaMap(make([]byte, metaSize), path, false, true)
	if err := m.setCheckpointBytes(cp); err != nil {
		return err
	}
	return writeNewFile(path, m.mem)
}
