package runnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Verify's walk over a partition's segments: every frame, through the same
// cursor and tail rules as writers and readers.

// verifyFrame is a good frame found by the walk, for the index checks.
type verifyFrame struct {
	pos, base int64
	maxBefore int64 // newest timestamp of the records before it in the segment
}

// segCheck is the outcome of checking one segment.
type segCheck struct {
	gone    bool  // removed before it could be opened, or not a regular file
	sealed  bool  // ended in a good seal
	next    int64 // offset after the last good frame, or the seal's
	walked  int64 // bytes of good frames (and seal)
	frames  []verifyFrame
	maxTS   int64
	records int64
	lost    int64          // offsets in gap frames
	damaged []damagedRange // already reported: index entries there are not judged
}

// damagedRange is bytes [from, to) of a segment, holding offsets
// [offFrom, offTo), that the walk could not read.
type damagedRange struct{ from, to, offFrom, offTo int64 }

func (sc *segCheck) damagedAt(pos int64) bool {
	return slices.ContainsFunc(sc.damaged, func(d damagedRange) bool { return pos >= d.from && pos < d.to })
}

func (sc *segCheck) damagedOffset(off int64) bool {
	return slices.ContainsFunc(sc.damaged, func(d damagedRange) bool { return off >= d.offFrom && off < d.offTo })
}

func (v *verifier) partition(p *partition) error {
	pc := PartitionCheck{Topic: p.topic.name, Partition: p.id}
	defer func() { v.rep.Partitions = append(v.rep.Partitions, pc) }()
	// What partition.meta says was committed is read before the data, so
	// that a writer appending meanwhile is never taken for a loss.
	meta := v.meta(p)
	bases, err := listSegments(p.dir)
	if errors.Is(err, fs.ErrNotExist) {
		ce := missingPartDir(p.dir)
		v.problem(Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: ce.Path, Pos: ce.Pos, Offset: ce.Offset, Detail: ce.Err.Error()})
		return nil
	}
	if err != nil {
		return fmt.Errorf("runnel: list segments of %s: %w", p.dir, err)
	}
	expect := int64(-1) // base the next segment must have, from the seal before it
	for i := 0; i < len(bases); i++ {
		base, last := bases[i], i == len(bases)-1
		path := segmentPath(p.dir, base, logExt)
		if expect >= 0 && base != expect {
			pr := Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: path, Pos: 0, Offset: expect,
				Detail: fmt.Sprintf("segment starts at offset %d, but the seal before it names %d", base, expect)}
			if base > expect {
				// Named as readers name it: the file that should be there.
				ce := missingSegment(p.dir, expect, base)
				pr.Path, pr.To = ce.Path, ce.To
				pr.Detail = fmt.Sprintf("%v (%s unreadable)", ce.Err, lossText(expect, base))
			}
			v.problem(pr)
		}
		later := int64(-1)
		if !last {
			later = bases[i+1]
		}
		sc, err := v.segment(p, base, later, meta)
		if err != nil {
			return err
		}
		if sc.gone {
			expect = -1
			continue
		}
		if pc.Segments == 0 {
			pc.StartOffset = base
		}
		pc.Segments++
		pc.Frames += int64(len(sc.frames))
		pc.Records += sc.records
		pc.Lost += sc.lost
		pc.NextOffset = sc.next
		if st, err := os.Stat(path); err == nil {
			pc.Bytes += st.Size()
		}
		expect = -1
		if sc.sealed {
			expect = sc.next
			if last {
				// The writer may have rolled since the listing.
				if _, err := os.Stat(segmentPath(p.dir, sc.next, logExt)); err == nil {
					bases = append(bases, sc.next)
				} else if rules, _, _ := knownCommittedIn(meta); missingLast(p.dir, sc.next, rules) != nil {
					// Not a writer that died before creating it: records
					// in it were committed.
					ce := missingLast(p.dir, sc.next, rules)
					v.problem(Problem{Kind: ProblemLost, Topic: pc.Topic, Partition: p.id, Path: ce.Path,
						Pos: 0, Offset: ce.Offset, To: ce.To, Detail: ce.Err.Error()})
				}
			}
		}
	}
	v.logStart(p, &pc, meta)
	return nil
}

// logStart checks partition p's log-start file and counts pc's start from
// it: a damaged file is a problem (readers refuse it too); a start past
// the end, which only a restore of older segments beside a newer file
// leaves, a note. The log start word of meta, p's partition.meta read
// before the file, is never ahead of the file (a DeleteRecords writes the
// file, then raises the word): a word ahead is damage, once
// logStartWordAhead has ruled out a DeleteTopic meanwhile.
func (v *verifier) logStart(p *partition, pc *PartitionCheck, meta *metaMap) {
	recorded, err := readLogStart(p.dir)
	var ce *CorruptError
	if errors.As(err, &ce) {
		// Neither repair nor salvage can tell the start it held.
		v.problem(Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: ce.Path, Pos: ce.Pos, Offset: -1,
			Detail: ce.Err.Error() + ": restore the file from a backup, or remove it (the start goes back to the first segment's base)"})
		return
	}
	if err != nil {
		v.note("%s: unreadable (%v)", logStartPath(p.dir), err)
		return
	}
	if w, ahead := logStartWordAhead(p, meta, recorded); ahead {
		v.problem(Problem{Kind: ProblemMeta, Topic: pc.Topic, Partition: p.id, Path: filepath.Join(p.dir, metaFileName), Pos: metaLogStartOff, Offset: -1,
			Detail: fmt.Sprintf("the log start word %d is ahead of the log start %d that %s records: readers take the file's; Repair sets the word back", w, recorded, logStartFileName)})
	}
	if pc.Segments == 0 {
		return
	}
	if recorded > pc.NextOffset {
		v.note("%s: the log start %d is past the end %d: the partition starts at its end, and the next append goes on at %d, removing the segments below it", logStartPath(p.dir), recorded, pc.NextOffset, recorded)
	}
	pc.StartOffset = partStart(pc.StartOffset, recorded, pc.NextOffset)
}

// logStartWordAhead returns the log start word of meta, p's partition.meta
// read before the log-start file gave recorded, and whether it is ahead of
// the file while partition.meta, read again after the file, still holds
// it. A DeleteTopic (in any process) between the first read and the file's
// takes the file away, or a CreateTopic of the name puts another
// partition's there: the word read first is then ahead of no file of its
// partition, which is no damage, and partition.meta is gone or another.
func logStartWordAhead(p *partition, meta *metaMap, recorded int64) (int64, bool) {
	if meta == nil {
		return 0, false
	}
	w := meta.logStart().Load()
	if w <= recorded {
		return w, false
	}
	again, _, err := readMetaCopy(p.dir)
	return w, err == nil && again != nil && again.logStart().Load() == w
}

// meta reads partition p's partition.meta (a copy: Verify writes nothing
// and needs only read permission) and checks it. nil if there is none.
func (v *verifier) meta(p *partition) *metaMap {
	path := filepath.Join(p.dir, metaFileName)
	m, ckptOK, err := readMetaCopy(p.dir)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		v.problem(Problem{Kind: ProblemCorrupt, Topic: p.topic.name, Partition: p.id, Path: ce.Path, Pos: ce.Pos, Offset: -1, Detail: ce.Err.Error()})
		return nil
	case err != nil:
		v.note("%s: unreadable (%v): what it says was committed is not checked", path, err)
		return nil
	case m == nil:
		if bases, _ := listSegments(p.dir); len(bases) > 0 {
			v.note("%s: missing: nothing says what was committed or synced; the next writer verifies the whole partition", path)
		}
		return nil
	case !ckptOK:
		v.problem(Problem{Kind: ProblemMeta, Topic: p.topic.name, Partition: p.id, Path: path, Pos: metaCkptOff, Offset: -1,
			Detail: "the synced checkpoint does not check out: the next writer verifies the whole partition"})
	}
	return m
}

// segment walks every frame of one segment file, then checks its indexes.
// later is the base of the segment after it, or -1 for the last.
func (v *verifier) segment(p *partition, base, later int64, meta *metaMap) (segCheck, error) {
	sc := segCheck{next: base, maxTS: -1 << 63}
	last := later < 0
	path := segmentPath(p.dir, base, logExt)
	f, err := openRegularRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		if ce := leadsNowhere(path, err); ce != nil {
			v.problem(Problem{Kind: ProblemCorrupt, Topic: p.topic.name, Partition: p.id, Path: path, Pos: -1, Offset: -1,
				Detail: ce.Err.Error()})
		} else {
			v.note("%s: removed by retention during the check", path)
		}
		sc.gone = true
		return sc, nil
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		// Not a regular file (openRegular): nothing in it can be read,
		// and what is there is for a person to look at, not for a
		// salvage. The check goes on past it as past a segment gone.
		v.problem(Problem{Kind: ProblemCorrupt, Topic: p.topic.name, Partition: p.id, Path: path, Pos: -1, Offset: -1,
			Detail: ce.Err.Error()})
		sc.gone = true
		return sc, nil
	}
	if err != nil {
		return sc, fmt.Errorf("runnel: verify %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return sc, err
	}
	size := st.Size()
	done0 := v.done
	defer func() { v.done = done0 + size; v.rep.Bytes += size }()
	report := func(kind ProblemKind, pos, off, to int64, format string, args ...any) {
		v.problem(Problem{Kind: kind, Topic: p.topic.name, Partition: p.id, Path: path, Pos: pos, Offset: off, To: to,
			Detail: fmt.Sprintf(format, args...)})
	}
	c := newCursor(f, path, 0, base)
walk:
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := v.tick(done0 + c.pos); err != nil {
				return sc, err
			}
		}
		fr, status, err := c.Next()
		if err != nil {
			return sc, err
		}
		m := fr.meta
		switch status {
		case frameSeal:
			sc.sealed, sc.next, sc.walked = true, c.next, c.pos
			if size > c.pos {
				// The size read before the walk may hold the zeros a live
				// writer extended the segment by before it sealed it
				// (cutting them first): look again.
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
			}
			if size > c.pos {
				report(ProblemCorrupt, c.pos, sc.next, 0, "%d bytes after the seal", size-c.pos)
			}
			break walk
		case frameGap:
			sc.frames = append(sc.frames, verifyFrame{pos: fr.pos, base: m.Base, maxBefore: sc.maxTS})
			sc.lost += int64(m.Count)
			sc.next, sc.walked = c.next, c.pos
			if m.Count > 0 {
				v.rep.Gaps = append(v.rep.Gaps, Gap{Topic: p.topic.name, Partition: p.id, Path: path, Pos: fr.pos, From: m.Base, To: m.End()})
			}
			continue
		case frameOK:
			sc.frames = append(sc.frames, verifyFrame{pos: fr.pos, base: m.Base, maxBefore: sc.maxTS})
			sc.maxTS = max(sc.maxTS, m.MaxTime)
			if k, err := recordsErr(fr); err != nil {
				report(ProblemCorrupt, fr.pos, m.Base+int64(k), m.End(), "record %d of the frame: %v", k, err)
				sc.damaged = append(sc.damaged, damagedRange{fr.pos, c.pos, m.Base, m.End()})
			}
			sc.records += int64(m.Count)
			sc.next, sc.walked = c.next, c.pos
			continue
		}
		// Not a good frame: judge it as writers and readers do, with
		// what is known committed (read before the bytes are read again).
		rules := segmentRules(meta, base, c.pos, later, otherBoot)
		vd, err := c.judgeTail(rules)
		if err != nil {
			return sc, err
		}
		from, to := vd.lost(rules)
		switch vd.kind {
		case tailMoved:
			continue // a live writer committed it meanwhile
		case tailEnd:
			break walk
		case tailDamage:
			if vd.found {
				report(ProblemCorrupt, vd.pos, from, to, "%s", vd.describe(rules))
				sc.damaged = append(sc.damaged, damagedRange{vd.pos, vd.resume.pos, from, to})
				c.seek(vd.resume.pos, vd.resume.meta.Base)
				continue
			}
			sc.damaged = append(sc.damaged, damagedRange{vd.pos, 1 << 62, from, 1 << 62})
			switch {
			case last:
				report(ProblemLost, vd.pos, from, to, "%s", vd.describe(rules))
			case to > from:
				report(ProblemCorrupt, vd.pos, from, to, "segment cut short before its seal: %s; readers stop here", vd.describe(rules))
			default:
				report(ProblemCorrupt, vd.pos, from, 0, "%s; readers stop here", vd.describe(rules))
			}
			break walk
		}
		// A torn tail.
		sc.damaged = append(sc.damaged, damagedRange{vd.pos, 1 << 62, vd.next, 1 << 62})
		what := vd.describe(rules)
		if rules.powerLoss {
			detail := fmt.Sprintf("%d bytes written after the last synced checkpoint, before the machine restarted, did not all reach the disk (%s); the next writer's recovery cuts them", vd.size-vd.pos, what)
			if vd.found {
				detail += fmt.Sprintf(", with committed offsets %d to %d found past them", vd.resume.meta.Base, vd.resumeEnd-1)
			}
			report(ProblemTornTail, vd.pos, vd.next, 0, "%s", detail)
			break walk
		}
		if settled, held := v.settle(c, p.dir); settled {
			sc.damaged = sc.damaged[:len(sc.damaged)-1]
			continue
		} else if held {
			v.note("%s at byte %d: a frame is being written", path, vd.pos)
			break walk
		}
		if st, err := f.Stat(); err == nil {
			vd.size = max(st.Size(), vd.pos)
		}
		report(ProblemTornTail, vd.pos, vd.next, 0, "%d bytes past the committed data that no writer is writing (%s): a writer died or failed mid-append; the next append, a reader or repair cuts them", vd.size-vd.pos, what)
		break walk
	}
	// The file may have grown since the walk began; an active segment's
	// indexes may even run ahead of it.
	if st, err := f.Stat(); err == nil {
		checked := st.Size()
		if !sc.sealed {
			checked = sc.walked
		}
		v.indexes(p, base, path, &sc, checked, st.Size())
	}
	return sc, nil
}

// unsyncedAfter says whose synced checkpoint marks the start of bytes that
// may have been lost, for segmentRules.
type unsyncedAfter int

const (
	// noneUnsynced: same-boot rules everywhere (a salvage, which runs
	// after the writer's recovery).
	noneUnsynced unsyncedAfter = iota
	// otherBoot: a checkpoint written before a machine restart that no
	// writer has recovered from yet (Verify, Backup).
	otherBoot
	// anyBoot: every checkpoint, this boot's too: the directory is an
	// image of a log that was never shut down (a file-system snapshot or
	// a disk image, Backup with BackupOptions.CrashImage), so nothing after
	// its checkpoints is known to have reached the image.
	anyBoot
)

// segmentRules gathers what is known committed, for judging the bytes at
// pos of segment base by a walk over every segment (Verify, salvage,
// Backup): partition.meta's word (meta), and the next segment, whose base
// every record before it had (later, -1 for none). Past a checkpoint that
// unsynced says may not have reached the disk, what follows it in the last
// segment is unsynced bytes (powerLoss) rather than damage.
func segmentRules(meta *metaMap, base, pos, later int64, unsynced unsyncedAfter) tailRules {
	rules, cp, ok := knownCommittedIn(meta)
	switch unsynced {
	case otherBoot:
		rules.powerLoss = unsyncedAfterReboot(cp, ok, base, pos)
	case anyBoot:
		rules.powerLoss = ok && pastCheckpoint(cp, base, pos)
	}
	if later >= 0 {
		// Evidence even after a power loss: a segment is synced before
		// the next one is created (followSeal).
		rules.addSegment(later)
	}
	return rules
}

// settle tells a dead writer's tail from a live writer's frame in
// progress: it reports whether the frame at the cursor became good
// (settled), or a writer holds the lock (held). Neither, a few times over,
// is a tail nobody is writing.
func (v *verifier) settle(c *cursor, dir string) (settled, held bool) {
	for range 3 {
		if writerHolds(dir) {
			return false, true
		}
		c.invalidate()
		if _, st, err := c.peek(); err == nil && st.good() {
			return true, false
		}
		time.Sleep(time.Millisecond)
	}
	return false, false
}

// writerHolds reports whether some writer holds the partition's writer
// lock now.
func writerHolds(dir string) bool {
	lf, err := openLockFile(filepath.Join(dir, metaFileName))
	if err != nil {
		return false
	}
	defer lf.Close()
	held, _ := lf.HeldByOther(writerLockByte)
	return held
}
