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
// Both are caches. Lookups check the entry they use against the log and
// fall back to scanning (indexedStart for offsets, checkTimeEntry for
// times, which retention and the writer use too); the writer rebuilds an
// index that disagrees with its segment.

const (
	indexEntrySize     = 8
	timeIndexEntrySize = 12
)

type indexEntry struct {
	rel uint32 // offset - segment base
	pos uint32 // byte position of the frame in the .log
}

type timeEntry struct {
	ts  int64 // no record of the segment before offset rel is newer
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
	f, err := openRegularRead(path)
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

// lookupTime returns the entry to start scanning at for the first record
// with a timestamp at or after ts, or -1 for the segment's start: every
// record before the last entry older than ts is older than ts too, if the
// entry is right (checkTimeEntry).
func lookupTime(entries []timeEntry, ts int64) int {
	return sort.Search(len(entries), func(i int) bool { return entries[i].ts >= ts }) - 1
}

// timeCheck is what checkTimeEntry found.
type timeCheck struct {
	ok bool
	// pos is the position of the frame at the entry's offset; sealed
	// says that it is the segment's seal instead (the entry bounds every
	// record of the segment).
	pos    int64
	sealed bool
	why    string // what disagrees, when not ok
}

// checkTimeEntry checks entry k of segment base's time index (tim) against
// the log that c reads, before a lookup by time or retention trusts it.
// idx is the segment's offset index, which says where to start reading.
//
// The entry says that no record of the segment before its offset r is
// newer than its time. Records before the entry ahead of it are vouched
// for by that entry, whose time is no later (readTimeIndex cut the index
// where one is); the records from there to r are read here: the frame
// headers from the offset entry at or before that entry's offset (the
// segment's start, for the first entry, or when the offset entry points
// at no frame of its offset), about one IndexIntervalBytes of log. The
// entry holds if none of them is newer than its time and a frame, or the
// seal, starts exactly at r.
//
// This catches every entry that would start a lookup after a record at or
// after the time sought when only that entry is damaged (the one before it
// is then right, and bounds the records before it), and whatever the
// damage when timestamps do not decrease with offsets (the newest record
// before r is then in the frames read). Entries made older together over
// timestamps that go back and forth can still pass it: only reading the
// segment from its start rules that out, as Verify does.
func checkTimeEntry(c *cursor, base int64, idx []indexEntry, tim []timeEntry, k int) (timeCheck, error) {
	e := tim[k]
	target, from := base+int64(e.rel), base
	if k > 0 {
		from = base + int64(tim[k-1].rel)
	}
	// Headers alone: a frame's checksum costs reading all of it (frames
	// may be large), and the walk must lead from the offset entry's frame
	// to exactly the time entry's, frame by frame, which bytes that only
	// look like a header do not. The reads are a detour for a reader's
	// cursor: they must not grow its read-ahead as if it had moved on
	// (readSize).
	verify, ahead, lastFull, lastAt := c.verify, c.ahead, c.lastFull, c.lastAt
	defer func() { c.verify, c.ahead, c.lastFull, c.lastAt = verify, ahead, lastFull, lastAt }()
	c.verify = false
	c.seek(0, base)
	if i := sort.Search(len(idx), func(i int) bool { return base+int64(idx[i].rel) > from }); i > 0 {
		c.seek(int64(idx[i-1].pos), base+int64(idx[i-1].rel))
		if _, st, err := c.peek(); err != nil {
			return timeCheck{}, err
		} else if st != frameOK && st != frameGap {
			c.seek(0, base) // not a frame of its offset: from the start
		}
	}
	var newer segFrame
	f, st, err := c.walk(func(f segFrame) bool {
		if f.meta.Base >= target {
			return false
		}
		if f.meta.Kind == frame.KindRecords && f.meta.MaxTime > e.ts {
			newer = f
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return timeCheck{}, err
	case newer.meta.Length != 0:
		return timeCheck{why: fmt.Sprintf("entry %d says records before offset %d are no newer than %d, but the frame at byte %d (offsets %d to %d) holds one of %d",
			k, target, e.ts, newer.pos, newer.meta.Base, newer.meta.End()-1, newer.meta.MaxTime)}, nil
	case (st == frameOK || st == frameGap) && f.meta.Base == target:
		return timeCheck{ok: true, pos: f.pos}, nil
	case st == frameSeal && c.next == target:
		return timeCheck{ok: true, pos: f.pos, sealed: true}, nil
	}
	return timeCheck{why: fmt.Sprintf("entry %d names offset %d, where no frame of the log starts", k, target)}, nil
}

// sealCheck records that the time entry of a segment's seal held against
// its log (checkTimeEntry), with the entry before it (first: there was
// none). A sealed segment never changes, so the check holds for as long as
// the .log is the same file (device, inode and size) and the two entries
// read the same: lookups by time that pass over the segment again need not
// read its log or offset index. (A file given the inode of a removed one
// is taken for it, as in segcache.go; it would also need the same size
// and the same two entries to be trusted.)
type sealCheck struct {
	log        os.FileInfo
	prev, seal timeEntry
	first      bool
}

// sealCheckOf is the sealCheck for entry k of tim, the seal's.
func sealCheckOf(log os.FileInfo, tim []timeEntry, k int) sealCheck {
	sc := sealCheck{log: log, seal: tim[k], first: k == 0}
	if k > 0 {
		sc.prev = tim[k-1]
	}
	return sc
}

// sealChecked reports whether this Log found sc to hold for segment base
// before.
func (p *partition) sealChecked(base int64, sc sealCheck) bool {
	v, ok := p.sealChecks.Load(base)
	if !ok {
		return false
	}
	old := v.(sealCheck)
	return old.prev == sc.prev && old.seal == sc.seal && old.first == sc.first &&
		old.log.Size() == sc.log.Size() && os.SameFile(old.log, sc.log)
}

// forgetSealChecks drops the seal checks of the segments before start,
// the partition's first segment as this Log last found it: retention,
// here or in another process, removed them. Without it a long-running
// Log kept one for every segment it ever passed over.
func (p *partition) forgetSealChecks(start int64) {
	p.sealChecks.Range(func(base, _ any) bool {
		if base.(int64) < start {
			p.sealChecks.Delete(base)
		}
		return true
	})
}

// indexDamaged logs, once per index file for this Log, that an entry of it
// disagrees with the log, which was read instead: the damage costs speed,
// never records, and Repair rebuilds the index.
func (l *Log) indexDamaged(path, why string) {
	if _, seen := l.damagedIndexes.LoadOrStore(path, true); !seen {
		l.opts.Logger.Warn("runnel: index disagrees with the log, reading the log instead (repair rebuilds the index)",
			"path", path, "detail", why)
	}
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
// returns a writer positioned after them. With logFile, the segment's
// file, the last time entry is checked against it (checkTimeEntry), and
// the indexes found not consistent if it fails: the writer's newest
// timestamp starts from that entry, and a damaged one would be carried
// into every entry it adds, the seal's included.
func openIndexWriter(dir string, base, logSize, interval int64, logFile segmentFile) (*indexWriter, error) {
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
	if n := len(tentries); w.consistent && n > 0 && logFile != nil {
		chk, err := checkTimeEntry(newCursor(logFile, segmentPath(dir, base, logExt), 0, base), base, entries, tentries, n-1)
		if err != nil {
			return nil, err
		}
		w.consistent = chk.ok
	}
	w.entries, w.timeEntries = int64(len(entries)), int64(len(tentries))
	if w.off, err = openRegular(w.offPath, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if w.tim, err = openRegular(segmentPath(dir, base, timeIndexExt), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
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
// no record before it is newer than maxTS. A frame at an offset the last
// entry has already (the one after a salvage's gap of no offsets, which
// got that entry) gets none: the entries' offsets increase, and the
// earlier frame is where that offset's lookup starts.
//
// Every offset entry has a time entry at the same relative offset, written
// first, so a lost time entry shows as a time index shorter than the offset
// index (openIndexWriter then rebuilds both).
func (w *indexWriter) add(rel, pos, maxTS int64) error {
	if err := w.catchUp(); err != nil {
		return err
	}
	if w.entries > 0 && rel <= w.lastRel {
		return nil
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
	f, err := openRegularRead(segmentPath(dir, base, logExt))
	if err != nil {
		return iw, err
	}
	defer f.Close()
	// Truncated in place, not removed: another process's writer may have
	// the files open, and must go on appending to these inodes.
	w, err := openIndexWriter(dir, base, 0, interval, nil)
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
