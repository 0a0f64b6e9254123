package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// Verify, Repair and Dump look at a log's files the way an operator needs
// to (the runnel command's verify, repair and dump): every byte, not just
// the committed prefix a reader follows.

// ProblemKind classifies what Verify found.
type ProblemKind int

const (
	// ProblemCorrupt is damage inside committed data, or segment files
	// that do not fit together (a missing seal, a gap in the offsets, a
	// seal naming the wrong segment). Readers stop at it with a
	// *CorruptError. Repair cannot fix it.
	ProblemCorrupt ProblemKind = iota + 1

	// ProblemTornTail is what a writer that died mid-append leaves past
	// the committed data of a partition's last segment: an uncommitted or
	// torn frame, or stray bytes. No reader delivers it; the next append,
	// a reader stuck at it, or Repair cuts it off.
	ProblemTornTail

	// ProblemIndex is an index file that is missing, torn, or has an entry
	// that disagrees with its segment. Indexes are caches that lookups
	// check, so it costs speed, never records. Repair rebuilds the index.
	ProblemIndex

	// ProblemOffsets is a consumer-group offsets file that cannot be read.
	ProblemOffsets
)

func (k ProblemKind) String() string {
	switch k {
	case ProblemCorrupt:
		return "corrupt"
	case ProblemTornTail:
		return "torn tail"
	case ProblemIndex:
		return "index"
	case ProblemOffsets:
		return "offsets"
	}
	return fmt.Sprintf("ProblemKind(%d)", int(k))
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Kind      ProblemKind
	Topic     string
	Partition int    // -1 for a problem that is not a partition's
	Path      string // the file
	Pos       int64  // byte position in Path, or -1 for the whole file
	Offset    int64  // first record offset affected, or -1 if unknown
	Detail    string
}

// Repairable reports whether Repair fixes this kind of problem.
func (p Problem) Repairable() bool { return p.Kind == ProblemTornTail || p.Kind == ProblemIndex }

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Pos >= 0 {
		fmt.Fprintf(&b, " at byte %d", p.Pos)
	}
	if p.Offset >= 0 {
		fmt.Fprintf(&b, " (offset %d)", p.Offset)
	}
	fmt.Fprintf(&b, ": %s: %s", p.Kind, p.Detail)
	return b.String()
}

// PartitionCheck summarizes one partition as Verify read it.
type PartitionCheck struct {
	Topic       string
	Partition   int
	Segments    int
	Frames      int64 // records frames, seals not counted
	Records     int64
	Bytes       int64 // bytes of .log files
	StartOffset int64
	NextOffset  int64 // after the last committed record
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Partitions []PartitionCheck
	Problems   []Problem
	Notes      []string // what was not checked, or was in flux, and why
	Bytes      int64    // bytes of segment files read
}

// OK reports whether Verify found no problem.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// VerifyOptions configure Verify and Repair. A nil *VerifyOptions means the
// defaults.
type VerifyOptions struct {
	// Progress, if not nil, is called on the calling goroutine as the
	// check advances, with the bytes of segment files checked so far and
	// the total there were when it started. Default: none.
	Progress func(done, total int64)
}

// maxProblemsPerFile bounds the report for a badly damaged file.
const maxProblemsPerFile = 20

// Verify reads every segment, index and offsets file of topic (of every
// topic if topic is "") and reports what is wrong: frames whose checksum,
// commit byte, header or records are bad, offsets that do not follow on,
// segments that do not end in a seal naming the next one, index entries
// that disagree with the log. Each problem names the file and the byte
// position. It takes no lock and changes nothing, so it may run while
// other processes produce and consume: a frame being written at the tail
// is noted, not reported, and segments removed by retention meanwhile are
// skipped. The error is for failures to check (ctx, I/O, a topic that does
// not exist), not for problems found.
func (l *Log) Verify(ctx context.Context, topic string, opts *VerifyOptions) (VerifyReport, error) {
	v := &verifier{l: l, ctx: ctx}
	if opts != nil {
		v.progress = opts.Progress
	}
	parts, err := v.partitions(topic)
	if err != nil {
		return v.rep, err
	}
	for _, p := range parts {
		if err := v.partition(p); err != nil {
			return v.rep, err
		}
	}
	v.offsets(topic)
	if v.progress != nil {
		v.progress(v.total, v.total)
	}
	return v.rep, nil
}

type verifier struct {
	l        *Log
	ctx      context.Context
	progress func(done, total int64)
	rep      VerifyReport
	done     int64
	total    int64
	perFile  map[string]int
	lastTick time.Time
}

// partitions resolves the topics to check and adds up their size.
func (v *verifier) partitions(topic string) ([]*partition, error) {
	names := []string{topic}
	if topic == "" {
		var err error
		if names, err = v.l.Topics(); err != nil {
			return nil, err
		}
	}
	var parts []*partition
	for _, name := range names {
		t, err := v.l.topic(name)
		var ce *CorruptError
		if errors.As(err, &ce) {
			v.problem(Problem{Kind: ProblemCorrupt, Topic: name, Partition: -1, Path: ce.Path, Pos: -1, Offset: -1, Detail: ce.Err.Error()})
			continue
		}
		if err != nil {
			if topic == "" && errors.Is(err, ErrTopicNotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		for _, p := range t.parts {
			parts = append(parts, p)
			bases, _ := listSegments(p.dir)
			for _, b := range bases {
				if st, err := os.Stat(segmentPath(p.dir, b, logExt)); err == nil {
					v.total += st.Size()
				}
			}
		}
	}
	return parts, nil
}

func (v *verifier) problem(p Problem) {
	if v.perFile == nil {
		v.perFile = map[string]int{}
	}
	v.perFile[p.Path]++
	switch n := v.perFile[p.Path]; {
	case n < maxProblemsPerFile:
		v.rep.Problems = append(v.rep.Problems, p)
	case n == maxProblemsPerFile:
		p.Detail = "more problems in this file not listed"
		v.rep.Problems = append(v.rep.Problems, p)
	}
}

func (v *verifier) note(format string, args ...any) {
	v.rep.Notes = append(v.rep.Notes, fmt.Sprintf(format, args...))
}

// tick reports progress at most every 50ms, and checks ctx.
func (v *verifier) tick(done int64) error {
	if v.progress != nil {
		if now := time.Now(); now.Sub(v.lastTick) >= 50*time.Millisecond {
			v.lastTick = now
			v.progress(min(done, v.total), v.total)
		}
	}
	return v.ctx.Err()
}

// verifyFrame is a good frame found by the walk, for the index checks.
type verifyFrame struct {
	pos, base int64
	maxBefore int64 // newest timestamp of the records before it in the segment
}

// segCheck is the outcome of checking one segment.
type segCheck struct {
	gone    bool  // removed before it could be opened
	sealed  bool  // ended in a good seal
	next    int64 // offset after the last good frame, or the seal's
	walked  int64 // bytes of good frames (and seal)
	frames  []verifyFrame
	maxTS   int64
	records int64
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
	bases, err := listSegments(p.dir)
	if errors.Is(err, fs.ErrNotExist) {
		v.problem(Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: p.dir, Pos: -1, Offset: -1,
			Detail: "partition directory missing"})
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
			v.problem(Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: path, Pos: 0, Offset: expect,
				Detail: fmt.Sprintf("segment starts at offset %d, but the seal before it names %d", base, expect)})
		}
		sc, err := v.segment(p, base, last)
		if err != nil {
			return err
		}
		if sc.gone {
			v.note("%s: removed by retention during the check", path)
			expect = -1
			continue
		}
		if pc.Segments == 0 {
			pc.StartOffset = base
		}
		pc.Segments++
		pc.Frames += int64(len(sc.frames))
		pc.Records += sc.records
		pc.NextOffset = sc.next
		if st, err := os.Stat(path); err == nil {
			pc.Bytes += st.Size()
		}
		expect = -1
		switch {
		case sc.sealed:
			expect = sc.next
			if last {
				// The writer may have rolled since the listing.
				if _, err := os.Stat(segmentPath(p.dir, sc.next, logExt)); err == nil {
					bases = append(bases, sc.next)
				}
			}
		case !last:
			v.problem(Problem{Kind: ProblemCorrupt, Topic: pc.Topic, Partition: p.id, Path: path, Pos: sc.walked, Offset: sc.next,
				Detail: fmt.Sprintf("segment ends without a seal, but segment %020d follows; readers stop here", bases[i+1])})
		}
	}
	return nil
}

// segment walks every frame of one segment file, then checks its indexes.
func (v *verifier) segment(p *partition, base int64, last bool) (segCheck, error) {
	sc := segCheck{next: base, maxTS: -1 << 63}
	path := segmentPath(p.dir, base, logExt)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
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
	report := func(kind ProblemKind, pos, off int64, format string, args ...any) {
		v.problem(Problem{Kind: kind, Topic: p.topic.name, Partition: p.id, Path: path, Pos: pos, Offset: off,
			Detail: fmt.Sprintf(format, args...)})
	}
	s := newScanner(f, path)
	pos := int64(0)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := v.tick(done0 + pos); err != nil {
				return sc, err
			}
		}
		m, data, status, cause := s.frameAt(pos)
		if status == frameOK && m.Base != sc.next {
			status, cause = frameBad, fmt.Errorf("frame starts at offset %d, expected %d", m.Base, sc.next)
		}
		if status == frameOK {
			sc.walked = pos + m.Size()
			if m.Kind == frame.KindSeal {
				sc.sealed = true
				if end := pos + m.Size(); size > end {
					report(ProblemCorrupt, end, sc.next, "%d bytes after the seal", size-end)
				}
				break
			}
			sc.frames = append(sc.frames, verifyFrame{pos: pos, base: m.Base, maxBefore: sc.maxTS})
			sc.maxTS = max(sc.maxTS, m.MaxTime)
			it := frame.NewRecords(data, m)
			var r frame.Record
			k := 0
			for ; it.Next(&r); k++ {
				if r.Timestamp > m.MaxTime {
					report(ProblemCorrupt, pos, m.Base+int64(k), "record timestamp %d is after the frame's max_time %d", r.Timestamp, m.MaxTime)
					break
				}
			}
			if err := it.Err(); err != nil {
				report(ProblemCorrupt, pos, m.Base+int64(k), "record %d of the frame: %v", k, err)
			}
			sc.records += int64(m.Count)
			pos += m.Size()
			sc.next = m.End()
			continue
		}
		if status == frameEnd && pos >= size {
			break
		}
		// Not a good frame. A live writer may have just committed it, or
		// cut it and written another: look again, past the read-ahead.
		if s.invalidate(); s.frameOK(pos, sc.next) {
			continue
		}
		// Damage if committed data follows, else a tail.
		if cause == nil {
			cause = errUncommitted
			if status == frameEnd {
				cause = errors.New("zero bytes where a frame should start")
			}
		}
		at, found, err := s.committedAfter(pos)
		if err != nil {
			return sc, err
		}
		if found {
			if s.invalidate(); s.frameOK(pos, sc.next) {
				continue // repaired and appended to meanwhile
			}
			m2, _, _, _ := s.frameAt(at)
			detail := fmt.Sprintf("%v; committed data resumes at byte %d", cause, at)
			if m2.Base != sc.next {
				detail += fmt.Sprintf(" with offset %d (offsets %d to %d unreadable)", m2.Base, sc.next, m2.Base-1)
			}
			report(ProblemCorrupt, pos, sc.next, "%s", detail)
			sc.damaged = append(sc.damaged, damagedRange{pos, at, sc.next, m2.Base})
			pos, sc.next = at, m2.Base
			continue
		}
		sc.damaged = append(sc.damaged, damagedRange{pos, 1 << 62, sc.next, 1 << 62})
		if !last {
			report(ProblemCorrupt, pos, sc.next, "segment cut short before its seal: %v", cause)
			break
		}
		if settled, held := v.settle(s, p.dir, pos, sc.next); settled {
			sc.damaged = sc.damaged[:len(sc.damaged)-1]
			continue
		} else if held {
			v.note("%s at byte %d: a frame is being written", path, pos)
			break
		}
		st, _ := f.Stat()
		report(ProblemTornTail, pos, sc.next, "%d bytes past the committed data, left by a writer that died (%v)", max(st.Size(), pos)-pos, cause)
		break
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

// settle tells a dead writer's tail from a live writer's frame in
// progress: it reports whether the frame at pos became good (settled), or
// a writer holds the lock (held). Neither, a few times over, is a tail
// nobody is writing.
func (v *verifier) settle(s *scanner, dir string, pos, next int64) (settled, held bool) {
	for range 3 {
		if writerHolds(dir) {
			return false, true
		}
		if s.invalidate(); s.frameOK(pos, next) {
			return true, false
		}
		time.Sleep(time.Millisecond)
	}
	return false, false
}

// frameOK reports whether a good committed frame for offset next starts
// at pos.
func (s *scanner) frameOK(pos, next int64) bool {
	m, _, st, _ := s.frameAt(pos)
	return st == frameOK && m.Base == next
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

// indexes checks a segment's two index files against the frames the walk
// found. Entries at or past checkedEnd are newer than the walk (an active
// segment) and are not judged; logSize bounds how much of them is read.
func (v *verifier) indexes(p *partition, base int64, logPath string, sc *segCheck, checkedEnd, logSize int64) {
	report := func(path string, pos int64, format string, args ...any) {
		v.problem(Problem{Kind: ProblemIndex, Topic: p.topic.name, Partition: p.id, Path: path, Pos: pos, Offset: -1,
			Detail: fmt.Sprintf(format, args...)})
	}
	limit := (logSize/frame.HeaderSize + 2) * timeIndexEntrySize
	frameAt := func(pos int64) (verifyFrame, bool) {
		i := sort.Search(len(sc.frames), func(i int) bool { return sc.frames[i].pos >= pos })
		if i < len(sc.frames) && sc.frames[i].pos == pos {
			return sc.frames[i], true
		}
		return verifyFrame{}, false
	}
	relAt := func(rel int64) (verifyFrame, bool) {
		i := sort.Search(len(sc.frames), func(i int) bool { return sc.frames[i].base >= base+rel })
		if i < len(sc.frames) && sc.frames[i].base == base+rel {
			return sc.frames[i], true
		}
		return verifyFrame{}, false
	}

	idxPath := segmentPath(p.dir, base, indexExt)
	data, missing, err := readIndexBounded(idxPath, limit)
	// The active segment's index files appear just after its .log when a
	// writer rolls, and its next writer creates them if it died first.
	if missing && sc.sealed {
		if _, err := os.Stat(logPath); errors.Is(err, fs.ErrNotExist) {
			return // retention removed the segment (its .log first) meanwhile
		}
	}
	switch {
	case missing && sc.sealed:
		report(idxPath, -1, "index file missing")
	case errors.Is(err, errIndexTooLong) && !sc.sealed:
		// The writer appended entries since the log's size was read.
	case err != nil:
		report(idxPath, -1, "%v", err)
	}
	// One problem per index file: lookups stop trusting an index at its
	// first bad entry, and a rebuild replaces all of it.
	var prevRel, prevPos int64 = -1, -1
	bad := false
	for i := 0; i+indexEntrySize <= len(data) && !bad; i += indexEntrySize {
		rel := int64(binary.LittleEndian.Uint32(data[i:]))
		pos := int64(binary.LittleEndian.Uint32(data[i+4:]))
		if pos >= checkedEnd && !sc.sealed {
			break
		}
		if sc.damagedAt(pos) {
			prevRel, prevPos = rel, pos
			continue // the damage is reported; the entry may be right
		}
		fr, ok := frameAt(pos)
		bad = true
		switch {
		case rel <= prevRel || pos <= prevPos:
			report(idxPath, int64(i), "entry %d (offset %d, byte %d) is out of order", i/indexEntrySize, base+rel, pos)
		case !ok:
			report(idxPath, int64(i), "entry %d points at byte %d of %s, where no frame starts", i/indexEntrySize, pos, filepath.Base(logPath))
		case fr.base != base+rel:
			report(idxPath, int64(i), "entry %d says offset %d is at byte %d, but the frame there starts at offset %d", i/indexEntrySize, base+rel, pos, fr.base)
		default:
			bad = false
		}
		prevRel, prevPos = rel, pos
	}
	if n := len(data) % indexEntrySize; n != 0 && !bad {
		report(idxPath, int64(len(data)-n), "torn entry of %d bytes at the end", n)
	}

	timPath := segmentPath(p.dir, base, timeIndexExt)
	data, missing, err = readIndexBounded(timPath, limit)
	if missing && sc.sealed {
		if _, err := os.Stat(logPath); errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
	switch {
	case missing && sc.sealed:
		report(timPath, -1, "time index file missing")
	case errors.Is(err, errIndexTooLong) && !sc.sealed:
		// The writer appended entries since the log's size was read.
	case err != nil:
		report(timPath, -1, "%v", err)
	}
	count := sc.next - base
	var prevTS int64 = -1 << 63
	prevRel, bad = -1, false
	for i := 0; i+timeIndexEntrySize <= len(data) && !bad; i += timeIndexEntrySize {
		ts := int64(binary.LittleEndian.Uint64(data[i:]))
		rel := int64(binary.LittleEndian.Uint32(data[i+8:]))
		if rel > count && !sc.sealed {
			break // written after the walk
		}
		if sc.damagedOffset(base + rel) {
			prevTS, prevRel = ts, rel
			continue
		}
		newest, known := int64(0), true
		if fr, ok := relAt(rel); ok {
			newest = fr.maxBefore
		} else if rel == count {
			newest = sc.maxTS
		} else {
			known = false
		}
		bad = true
		switch {
		case rel < prevRel || ts < prevTS:
			report(timPath, int64(i), "entry %d (time %d, offset %d) is out of order", i/timeIndexEntrySize, ts, base+rel)
		case !known:
			report(timPath, int64(i), "entry %d names offset %d, where no frame starts", i/timeIndexEntrySize, base+rel)
		case ts < newest:
			report(timPath, int64(i), "entry %d says records before offset %d are no newer than %d, but one is %d", i/timeIndexEntrySize, base+rel, ts, newest)
		default:
			bad = false
		}
		prevTS, prevRel = ts, rel
	}
	if n := len(data) % timeIndexEntrySize; n != 0 && !bad {
		report(timPath, int64(len(data)-n), "torn entry of %d bytes at the end", n)
	}
}

var errIndexTooLong = errors.New("more entries than the log has frames")

// readIndexBounded reads an index file, at most limit bytes of it.
func readIndexBounded(path string, limit int64) (data []byte, missing bool, err error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	data, err = readBounded(path, limit)
	if err == nil && st.Size() > limit {
		err = errIndexTooLong
	}
	return data, false, err
}

// offsets checks the consumer-group offsets files of topic (every topic
// if ""): header, both commit slots of every partition, and each committed
// offset against the partition's extent as the check found it.
func (v *verifier) offsets(topic string) {
	groups, err := os.ReadDir(filepath.Join(v.l.dir, "groups"))
	if err != nil {
		return
	}
	for _, g := range groups {
		if !g.IsDir() || validateName("group", g.Name()) != nil {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(v.l.dir, "groups", g.Name()))
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), offsetsExt)
			if !ok || validateName("topic", name) != nil || topic != "" && name != topic {
				continue
			}
			v.offsetsFile(g.Name(), name)
		}
	}
}

func (v *verifier) offsetsFile(group, topic string) {
	path := offsetsPath(v.l.dir, group, topic)
	var parts []PartitionCheck
	for _, pc := range v.rep.Partitions {
		if pc.Topic == topic {
			parts = append(parts, pc)
		}
	}
	nparts := len(parts)
	if nparts == 0 {
		nparts = -1 // topic gone or not checked: take the file's word
	}
	report := func(pos int64, detail string) {
		v.problem(Problem{Kind: ProblemOffsets, Topic: topic, Partition: -1, Path: path, Pos: pos, Offset: -1, Detail: detail})
	}
	o, err := openOffsets(v.l.dir, group, topic, nparts, false)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			report(ce.Pos, ce.Err.Error())
		} else if !errors.Is(err, fs.ErrNotExist) {
			report(-1, err.Error())
		}
		return
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
			report(blockPos(p), fmt.Sprintf("partition %d: committed offset %d is past the end %d of the partition", p, st.offset, pc.NextOffset))
		case st.offset < pc.StartOffset:
			v.note("%s: partition %d: committed offset %d is below the start %d (retention removed records the group had not read)", path, p, st.offset, pc.StartOffset)
		}
	}
}

// RepairKind says what Repair did.
type RepairKind int

const (
	// RepairCutTail: a torn tail was cut off a segment.
	RepairCutTail RepairKind = iota + 1
	// RepairRebuiltIndex: a segment's index files were rebuilt from it.
	RepairRebuiltIndex
	// RepairRecovered: post-reboot recovery ran (see RecoveryReport).
	RepairRecovered
)

func (k RepairKind) String() string {
	switch k {
	case RepairCutTail:
		return "cut torn tail"
	case RepairRebuiltIndex:
		return "rebuilt index"
	case RepairRecovered:
		return "recovered after reboot"
	}
	return fmt.Sprintf("RepairKind(%d)", int(k))
}

// RepairAction is one change Repair made.
type RepairAction struct {
	Kind      RepairKind
	Topic     string
	Partition int
	Path      string
	Pos       int64 // RepairCutTail: the new end of the file
	Bytes     int64 // RepairCutTail: bytes cut
	Detail    string
}

func (a RepairAction) String() string {
	switch a.Kind {
	case RepairCutTail:
		return fmt.Sprintf("%s: %s: %d bytes cut at byte %d", a.Path, a.Kind, a.Bytes, a.Pos)
	case RepairRecovered:
		return fmt.Sprintf("%s: %s: %s", a.Path, a.Kind, a.Detail)
	}
	return fmt.Sprintf("%s: %s", a.Path, a.Kind)
}

// RepairReport is what Repair found and did.
type RepairReport struct {
	Found   VerifyReport   // the check Repair started with
	Actions []RepairAction // what it changed
	// Remaining are the problems Repair could not fix: damage inside
	// committed data and unreadable offsets files, which need a person
	// (or a backup). Empty when the log is whole again.
	Remaining []Problem
}

// Repair runs Verify on topic (every topic if ""), then fixes what can be
// fixed without losing a committed record: under each affected
// partition's writer lock it cuts torn tails (running post-reboot recovery
// if it is due) and rebuilds index files that are missing or disagree with
// their segment. Damage inside committed data is left alone and reported
// in Remaining. It is safe while other processes produce and consume; they
// wait for the writer lock while a partition is repaired.
func (l *Log) Repair(ctx context.Context, topic string, opts *VerifyOptions) (RepairReport, error) {
	found, err := l.Verify(ctx, topic, opts)
	rep := RepairReport{Found: found}
	if err != nil {
		return rep, err
	}
	type key struct {
		topic string
		part  int
	}
	todo := map[key][]Problem{}
	var keys []key
	for _, pr := range found.Problems {
		if !pr.Repairable() {
			rep.Remaining = append(rep.Remaining, pr)
			continue
		}
		k := key{pr.Topic, pr.Partition}
		if todo[k] == nil {
			keys = append(keys, k)
		}
		todo[k] = append(todo[k], pr)
	}
	for _, k := range keys {
		t, err := l.topic(k.topic)
		if err != nil {
			return rep, err
		}
		p := t.parts[k.part]
		actions, err := p.repairProblems(ctx, todo[k])
		rep.Actions = append(rep.Actions, actions...)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				return rep, err
			}
			rep.Remaining = append(rep.Remaining, Problem{Kind: ProblemCorrupt, Topic: k.topic, Partition: k.part,
				Path: ce.Path, Pos: ce.Pos, Offset: ce.Offset, Detail: ce.Err.Error()})
		}
	}
	return rep, nil
}

// repairProblems fixes one partition's repairable problems under its
// writer lock: indexes first (tail discovery starts from the index), then
// the tail.
func (p *partition) repairProblems(ctx context.Context, problems []Problem) ([]RepairAction, error) {
	unlock, err := p.lockForMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var actions []RepairAction
	act := func(a RepairAction) {
		a.Topic, a.Partition = p.topic.name, p.id
		actions = append(actions, a)
	}
	rebuilt := map[int64]bool{}
	var torn []Problem
	for _, pr := range problems {
		if pr.Kind == ProblemTornTail {
			torn = append(torn, pr)
			continue
		}
		base, ok := segmentBaseOf(pr.Path)
		if !ok || rebuilt[base] {
			continue
		}
		rebuilt[base] = true
		if _, err := os.Stat(segmentPath(p.dir, base, logExt)); err != nil {
			continue // removed by retention meanwhile
		}
		if p.w != nil && p.w.base == base {
			p.dropActive() // it has the old index files open
		}
		if err := rebuildIndex(p.dir, base, p.topic.cfg.IndexIntervalBytes); err != nil {
			return actions, fmt.Errorf("runnel: rebuild index of %s: %w", segmentPath(p.dir, base, logExt), err)
		}
		act(RepairAction{Kind: RepairRebuiltIndex, Path: segmentPath(p.dir, base, indexExt), Pos: -1})
	}
	if len(torn) == 0 {
		return actions, nil
	}
	sizes := map[string]int64{}
	for _, pr := range torn {
		if st, err := os.Stat(pr.Path); err == nil {
			sizes[pr.Path] = st.Size()
		}
	}
	recovered := len(p.log.Recoveries())
	// Forget this Log's view of the tail, and a sticky corruption verdict:
	// the tail is judged afresh, from the last index entry.
	p.dropActive()
	p.broken = nil
	err = p.findTail()
	for _, r := range p.log.Recoveries()[recovered:] {
		if r.Partition == p.dir && (r.CutPos >= 0 || len(r.RemovedSegments) > 0) {
			act(RepairAction{Kind: RepairRecovered, Path: r.CutFile, Pos: r.CutPos, Bytes: r.CutBytes,
				Detail: fmt.Sprintf("verified %d frames after the durable point, cut %d bytes at byte %d, removed segments %v", r.FramesVerified, r.CutBytes, r.CutPos, r.RemovedSegments)})
		}
	}
	paths := make([]string, 0, len(sizes))
	for path := range sizes {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		if st, serr := os.Stat(path); serr == nil && st.Size() < sizes[path] {
			act(RepairAction{Kind: RepairCutTail, Path: path, Pos: st.Size(), Bytes: sizes[path] - st.Size()})
		}
	}
	return actions, err
}

// segmentBaseOf parses the base offset out of a segment file's path.
func segmentBaseOf(path string) (int64, bool) {
	name := filepath.Base(path)
	base, err := strconv.ParseInt(name[:min(len(name), segNameLen)], 10, 64)
	return base, err == nil && len(name) > segNameLen
}
