package runnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/runnel-log/runnel/internal/frame"
)

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
		case rel <= prevRel || ts < prevTS:
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
