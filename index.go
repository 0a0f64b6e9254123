package runnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/runnel-log/runnel/internal/frame"
)

// Each segment has two sparse indexes, appended by the writer as the log
// grows, one entry every TopicConfig.IndexIntervalBytes of log:
//
//	.index      (relative offset u32, position u32): a frame that starts at
//	            that position holds that offset as its first record
//	.timeindex  (timestamp i64, relative offset u32): every record before
//	            that offset in the segment is no newer than timestamp
//
// Both are caches. Lookups verify what they find against the log and fall
// back to scanning; the writer rebuilds an index that disagrees with its
// segment.

const (
	indexEntrySize     = 8
	timeIndexEntrySize = 12
)

type indexEntry struct {
	rel uint32 // offset - segment base
	pos uint32 // byte position of the frame in the .log
}

type timeEntry struct {
	ts  int64 // max timestamp up to and including the frame at rel
	rel uint32
}

// readIndex loads a segment's offset index, keeping only entries that are
// in order and inside a log of logSize bytes: a short, torn or stale tail
// is dropped, never trusted. A missing file is an empty index.
func readIndex(path string, logSize int64) ([]indexEntry, error) {
	data, err := readBounded(path, indexEntrySize*(logSize/frame.HeaderSize+1))
	if err != nil {
		return nil, err
	}
	entries := make([]indexEntry, 0, len(data)/indexEntrySize)
	for i := 0; i+indexEntrySize <= len(data); i += indexEntrySize {
		e := indexEntry{
			rel: binary.LittleEndian.Uint32(data[i:]),
			pos: binary.LittleEndian.Uint32(data[i+4:]),
		}
		if int64(e.pos) >= logSize || e.pos%frame.Align != 0 {
			break
		}
		if n := len(entries); n > 0 && (e.rel <= entries[n-1].rel || e.pos <= entries[n-1].pos) {
			break
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// readTimeIndex loads a segment's time index, keeping the ordered prefix
// of at most maxEntries entries whose relative offsets are at most maxRel.
func readTimeIndex(path string, maxEntries, maxRel int64) ([]timeEntry, error) {
	data, err := readBounded(path, timeIndexEntrySize*maxEntries)
	if err != nil {
		return nil, err
	}
	entries := make([]timeEntry, 0, len(data)/timeIndexEntrySize)
	for i := 0; i+timeIndexEntrySize <= len(data); i += timeIndexEntrySize {
		e := timeEntry{
			ts:  int64(binary.LittleEndian.Uint64(data[i:])),
			rel: binary.LittleEndian.Uint32(data[i+8:]),
		}
		if int64(e.rel) > maxRel {
			break
		}
		if n := len(entries); n > 0 && (e.rel <= entries[n-1].rel || e.ts < entries[n-1].ts) {
			break
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// readBounded reads at most limit bytes of path; a missing file reads as
// empty. The limit comes from the log's size, so a damaged index can never
// make runnel allocate more than the log justifies.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, max(0, min(st.Size(), limit)))
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("runnel: read %s: %w", path, err)
	}
	return buf[:n], nil
}

// lookupIndex returns the position to start scanning at for offset rel
// (relative to the segment base): the last entry at or before it.
func lookupIndex(entries []indexEntry, rel int64) int64 {
	i := sort.Search(len(entries), func(i int) bool { return int64(entries[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(entries[i-1].pos)
}

// lookupTime returns the relative offset to start scanning at for the first
// record with a timestamp at or after ts: every record before the last
// entry older than ts is older than ts too.
func lookupTime(entries []timeEntry, ts int64) int64 {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return int64(entries[i-1].rel)
}

// indexWriter appends to the active segment's two index files. Only the
// holder of the partition's writer lock uses it.
type indexWriter struct {
	off, tim    *os.File
	offPath     string
	entries     int64 // entries in .index
	timeEntries int64 // entries in .timeindex
	lastPos     int64 // log position of the newest .index entry
	lastRel     int64 // relative offset of the newest .index entry
	lastTimeRel int64 // relative offset of the newest .timeindex entry
	maxTS       int64 // newest timestamp recorded in .timeindex
	interval    int64
	offBuf      [indexEntrySize]byte
	timBuf      [timeIndexEntrySize]byte
	// consistent is false when openIndexWriter found the two indexes
	// disagreeing (an entry lost or damaged): the caller rebuilds them.
	consistent bool
	// stale: other writers may have added entries since the counts above
	// were read (this one took the writer lock after them). They are
	// re-read only when an entry may be due (due, add, addTime): most
	// appends add none, and re-reading costs four system calls.
	stale bool
}

// openIndexWriter opens the index files of segment base in dir, trims them
// to their entries that agree with the log (logSize bytes long), and
// returns a writer positioned after them.
func openIndexWriter(dir string, base, logSize, interval int64) (*indexWriter, error) {
	w := &indexWriter{offPath: segmentPath(dir, base, indexExt), interval: interval, maxTS: -1 << 63}
	entries, err := readIndex(w.offPath, logSize)
	if err != nil {
		return nil, err
	}
	var maxRel int64
	if n := len(entries); n > 0 {
		w.lastPos, w.lastRel = int64(entries[n-1].pos), int64(entries[n-1].rel)
		maxRel = w.lastRel
	}
	// A time entry past the last trusted offset entry may describe records
	// a repair cut off; lookups would skip their replacements, so drop it.
	tentries, err := readTimeIndex(segmentPath(dir, base, timeIndexExt), int64(len(entries))+1, maxRel)
	if err != nil {
		return nil, err
	}
	if n := len(tentries); n > 0 {
		w.maxTS, w.lastTimeRel = tentries[n-1].ts, int64(tentries[n-1].rel)
	}
	w.consistent = len(tentries) == len(entries)
	for i := 0; w.consistent && i < len(entries); i++ {
		w.consistent = tentries[i].rel == entries[i].rel
	}
	w.entries, w.timeEntries = int64(len(entries)), int64(len(tentries))
	if w.off, err = os.OpenFile(w.offPath, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if w.tim, err = os.OpenFile(segmentPath(dir, base, timeIndexExt), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		w.off.Close()
		return nil, err
	}
	// Drop anything past the trusted entries, so appends continue a
	// consistent file.
	if err := w.off.Truncate(w.entries * indexEntrySize); err != nil {
		w.close()
		return nil, err
	}
	if err := w.tim.Truncate(w.timeEntries * timeIndexEntrySize); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// due reports whether a frame at pos should get an index entry. Stale
// counts can only make an entry look due that is not (other writers' entries
// only move lastPos forward), so they are re-read only then.
func (w *indexWriter) due(pos int64) bool {
	if !w.dueAfter(pos) {
		return false
	}
	if w.stale && w.refresh() != nil {
		return true // add tries again, and says why it fails
	}
	return w.dueAfter(pos)
}

// dueAfter is due by the counts as they are.
func (w *indexWriter) dueAfter(pos int64) bool {
	return pos > 0 && (w.entries == 0 && pos >= w.interval || w.entries > 0 && pos-w.lastPos >= w.interval)
}

// add records that the frame at pos starts at relative offset rel and that
// no record before it is newer than maxTS.
//
// Every offset entry has a time entry at the same relative offset, written
// first, so a lost time entry shows as a time index shorter than the offset
// index (openIndexWriter then rebuilds both).
func (w *indexWriter) add(rel, pos, maxTS int64) error {
	if err := w.catchUp(); err != nil {
		return err
	}
	if err := w.addTime(rel, maxTS); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(w.offBuf[:], uint32(rel))
	binary.LittleEndian.PutUint32(w.offBuf[4:], uint32(pos))
	if _, err := w.off.WriteAt(w.offBuf[:], w.entries*indexEntrySize); err != nil {
		return err
	}
	w.entries++
	w.lastPos, w.lastRel = pos, rel
	return nil
}

// addTime appends a time entry for rel unless one exists. Its timestamp
// never goes back: a lookup relies on the entries being sorted.
func (w *indexWriter) addTime(rel, maxTS int64) error {
	if err := w.catchUp(); err != nil {
		return err
	}
	if w.timeEntries > 0 && rel <= w.lastTimeRel {
		return nil
	}
	ts := max(maxTS, w.maxTS)
	binary.LittleEndian.PutUint64(w.timBuf[:], uint64(ts))
	binary.LittleEndian.PutUint32(w.timBuf[8:], uint32(rel))
	if _, err := w.tim.WriteAt(w.timBuf[:], w.timeEntries*timeIndexEntrySize); err != nil {
		return err
	}
	w.timeEntries++
	w.maxTS, w.lastTimeRel = ts, rel
	return nil
}

// refresh re-reads where the index files end, after another process's
// writer appended to them: four syscalls, not a re-read of the index.
func (w *indexWriter) refresh() error {
	w.stale = true // until the counts are read whole
	st, err := w.off.Stat()
	if err != nil {
		return err
	}
	tst, err := w.tim.Stat()
	if err != nil {
		return err
	}
	// A dead writer's torn entry is a partial one at the end: the next
	// entry overwrites it.
	w.entries, w.timeEntries = st.Size()/indexEntrySize, tst.Size()/timeIndexEntrySize
	if w.entries > 0 {
		var b [indexEntrySize]byte
		if _, err := w.off.ReadAt(b[:], (w.entries-1)*indexEntrySize); err != nil {
			return err
		}
		w.lastRel = int64(binary.LittleEndian.Uint32(b[:]))
		w.lastPos = int64(binary.LittleEndian.Uint32(b[4:]))
	}
	if w.timeEntries > 0 {
		var b [timeIndexEntrySize]byte
		if _, err := w.tim.ReadAt(b[:], (w.timeEntries-1)*timeIndexEntrySize); err != nil {
			return err
		}
		w.maxTS = int64(binary.LittleEndian.Uint64(b[:]))
		w.lastTimeRel = int64(binary.LittleEndian.Uint32(b[8:]))
	}
	w.stale = false
	return nil
}

// catchUp re-reads stale counts (refresh).
func (w *indexWriter) catchUp() error {
	if !w.stale {
		return nil
	}
	return w.refresh()
}

func (w *indexWriter) close() error {
	return errors.Join(w.off.Close(), w.tim.Close())
}

// sync makes the index files durable.
func (w *indexWriter) sync() error {
	if err := fdatasync(int(w.off.Fd())); err != nil {
		return err
	}
	return fdatasync(int(w.tim.Fd()))
}

// trimIndexFiles drops the entries of segment base's indexes from the
// first one that does not point below pos (and the time entries beyond
// the ones kept), so that no entry describes bytes at or after pos.
func trimIndexFiles(dir string, base, pos int64) error {
	entries, err := readIndex(segmentPath(dir, base, indexExt), pos)
	if err != nil {
		return err
	}
	n := int64(len(entries))
	for _, t := range []struct {
		ext  string
		size int64
	}{{indexExt, indexEntrySize}, {timeIndexExt, timeIndexEntrySize}} {
		path := segmentPath(dir, base, t.ext)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st.Size() > n*t.size {
			if err := os.Truncate(path, n*t.size); err != nil {
				return err
			}
		}
	}
	return nil
}

// rebuildIndex rewrites a segment's indexes from its log, for a segment
// whose index files are missing or disagree with it.
func rebuildIndex(dir string, base, interval int64) error {
	_, err := indexSegment(dir, base, interval)
	return err
}

// indexedWalk is where the walk of an index rebuild stopped: after the
// segment's seal, or at the first frame that is not good (the end of the
// data, or bytes that are not a good frame).
type indexedWalk struct {
	status    frameStatus // frameSeal, or what the cursor found at pos
	stop      segFrame    // the frame there
	pos, next int64       // the cursor: the position, and the offset due there
	records   int64       // records in the records frames walked
}

// indexSegment rebuilds segment base's indexes from its log, walking
// every frame with a verifying cursor, and says where the walk stopped:
// the index entries describe the good frames before that point, and
// nothing else.
func indexSegment(dir string, base, interval int64) (indexedWalk, error) {
	var iw indexedWalk
	f, err := os.Open(segmentPath(dir, base, logExt))
	if err != nil {
		return iw, err
	}
	defer f.Close()
	// Truncated in place, not removed: another process's writer may have
	// the files open, and must go on appending to these inodes.
	w, err := openIndexWriter(dir, base, 0, interval)
	if err != nil {
		return iw, err
	}
	var werr error
	maxTS := int64(-1 << 63)
	c := newCursor(f, f.Name(), 0, base)
	iw.stop, iw.status, err = c.walk(func(fr segFrame) bool {
		if werr == nil && w.due(fr.pos) {
			werr = w.add(fr.meta.Base-base, fr.pos, maxTS)
		}
		if fr.meta.Kind == frame.KindRecords {
			maxTS = max(maxTS, fr.meta.MaxTime)
			iw.records += int64(fr.meta.Count)
		}
		return true
	})
	iw.pos, iw.next = c.pos, c.next
	if werr == nil && iw.status == frameSeal {
		werr = w.addTime(c.next-base, maxTS)
	}
	return iw, errors.Join(err, werr, w.close())
}
