package runnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// partReader reads one partition's committed records in order, lock-free,
// through a segment cursor: it delivers only good frames, and where it
// stops short of them it says why (reader_end.go judges it).
type partReader struct {
	p    *partition
	base int64      // base offset of the current segment
	f    *segHandle // current segment, through the Log's cache; nil while it does not exist yet
	path string
	cur  *cursor // on f: the next frame to read, and the offset it starts at
	next int64   // next offset to deliver: cur.next, or inside the frame at cur.pos after a seek
	// endSize is, after seekEnd, the bytes of segment base up to the end
	// of its data (dataSize's rule, from the same walk).
	endSize int64

	// With byTime, records older than minTime are skipped until the first
	// one at or after it is delivered: a start by timestamp.
	byTime  bool
	minTime int64

	bufSize      int
	bytesDecoded int64 // frame bytes decode read, for Stats

	// Where the last fill stopped, for reader_end.go: at the end of its
	// file (atEnd), at bytes that are not a good frame (stuck), or at
	// neither (it delivered what it could read in one go).
	atEnd, stuck bool
	advanced     bool           // the last fill moved through frames
	fillSeq      uint32         // the append sequence when it began
	seq          *atomic.Uint32 // the partition's append sequence, if mapped
	lastSeg      bool           // the segment was the partition's last as of lastSeq
	lastSeq      uint32
	movedSeq     int64 // fillSeq of a fill that read frames and stopped short of the end, or -1 (reachedEnd)

	// A fill that stopped at its record limit leaves the cursor's window
	// as it is (resume), and, if it stopped inside a frame, that frame
	// (partial, at the cursor) and where its records go on (rest, at
	// offset restNext): the next fill goes on from them without reading
	// or verifying again. Any move of the reader drops them.
	resume   bool
	partial  segFrame
	rest     frame.Records
	restNext int64 // -1: rest is not valid

	resetOutOfRange bool // below the start, move to it (retention.go)
	stopAtGaps      bool // a gap is an error, not skipped (ConsumerOptions.StopAtGaps)
	gapLogger       func(from, to int64)

	// startWord is partition.meta's log start word for a reader that maps
	// it (a Consumer's), and knownStart the start it last found the word
	// and the log-start file to agree on (log_start.go): atomic, as
	// DeletedBelow raises it from any goroutine while the poller does.
	startWord  *atomic.Int64
	knownStart atomic.Int64
	// startInFile: a Consumer's reader whose partition.meta is a private
	// copy, which the word never reaches, checks the log-start file
	// before each read instead.
	startInFile bool
}

func newPartReader(p *partition, bufSize int) *partReader {
	if bufSize <= 0 {
		bufSize = defaultMaxPollBytes
	}
	r := &partReader{p: p, bufSize: bufSize, restNext: -1, movedSeq: -1}
	r.cur = &cursor{verify: true, window: bufSize}
	return r
}

func (r *partReader) close() { r.closeSegment() }

func (r *partReader) closeSegment() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.resume, r.restNext = false, -1
}

// letGo closes the reader's segment file until its next read (segHandle.letGo).
func (r *partReader) letGo() {
	if r.f != nil {
		r.f.letGo()
	}
}

// filePos returns where the reader is: segment, byte, next offset.
func (r *partReader) filePos() (base, pos, next int64) { return r.base, r.cur.pos, r.next }

// useSegment makes the open segment file f, whose base is base, current,
// positioned at its start.
func (r *partReader) useSegment(f *segHandle, base int64) {
	r.closeSegment()
	r.base, r.f, r.next = base, f, base
	r.path = segmentPath(r.p.dir, base, logExt)
	var sf segmentFile // nil, not a nil *segHandle
	if f != nil {
		sf = f
	}
	r.cur.setFile(sf, r.path)
	r.cur.seek(0, base)
	r.lastSeg, r.movedSeq = false, -1
}

// openSegment makes segment base current, positioned at its start. A
// segment that does not exist yet (its predecessor was just sealed) is
// opened later, by fill.
func (r *partReader) openSegment(base int64) error {
	r.useSegment(nil, base)
	f, err := r.p.log.segs.openSegmentFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.segmentGone(base)
	}
	if err != nil {
		return fmt.Errorf("runnel: open segment: %w", err)
	}
	r.useSegment(f, base)
	return nil
}

// segmentFor returns the base of the segment that holds offset, and the
// offset; for an offset below the partition's start, ErrOutOfRange, or for
// a reader that resets, the start and its segment.
func (r *partReader) segmentFor(offset int64) (seg, at int64, err error) {
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return 0, 0, fmt.Errorf("runnel: list segments of %s: %w", r.p.dir, err)
	}
	if len(bases) == 0 {
		if offset == 0 {
			return 0, 0, nil
		}
		return 0, 0, r.p.outOfRange(offset)
	}
	recorded, err := r.recordedStart()
	if err != nil {
		return 0, 0, err
	}
	if start := max(bases[0], recorded); offset < start {
		if recorded > offset {
			// Below the start DeleteRecords recorded, which may be past
			// the end (partStart): only then is the end looked up.
			if start, err = r.startUpToEnd(bases[0], recorded); err != nil {
				return 0, 0, err
			}
		}
		if offset < start {
			if offset, err = r.belowStart(offset, start); err != nil {
				return 0, 0, err
			}
		}
	}
	seg = bases[0]
	for _, b := range bases {
		if b <= offset {
			seg = b
		}
	}
	return seg, offset, nil
}

// seek positions the reader at offset: the largest segment base at or
// below it, its index, then a walk over frame headers to the frame that
// holds it. An offset past the end is ErrOutOfRange; the end itself is
// valid (the reader waits there).
func (r *partReader) seek(offset int64) error {
	seg, offset, err := r.segmentFor(offset)
	if err != nil {
		return err
	}
	for {
		if err := r.openSegment(seg); err != nil {
			return err
		}
		offset = max(offset, r.base) // reset past records retention removed
		if r.f == nil {
			if offset == r.base {
				return nil
			}
			return r.p.outOfRange(offset)
		}
		pos, next, err := r.indexedStart(offset)
		if err != nil {
			return err
		}
		c := r.cur
		c.seek(pos, next)
		c.verify = false
		_, st, err := c.walk(func(f segFrame) bool { return f.meta.End() <= offset })
		c.verify = true
		c.invalidate()
		switch {
		case err != nil:
			return err
		case st == frameOK || st == frameGap:
			r.next = offset // the walk stopped at the frame that holds it
			return nil
		case st == frameSeal:
			seg = c.next
			continue
		case c.next == offset:
			r.next = offset
			return nil
		}
		return r.p.outOfRange(offset)
	}
}

// indexedStart finds where to start walking toward offset in the current
// segment: the index entry at or before it, if the log agrees with it.
func (r *partReader) indexedStart(offset int64) (pos, next int64, err error) {
	st, err := r.f.Stat()
	if err != nil {
		return 0, 0, err
	}
	entries, err := readIndex(segmentPath(r.p.dir, r.base, indexExt), st.Size())
	if err != nil {
		return 0, 0, err
	}
	pos = lookupIndex(entries, offset-r.base)
	if pos == 0 {
		return 0, r.base, nil
	}
	c := r.cur // not a cursor of its own: its buffer would be one more to fault in
	c.seek(pos, -1)
	f, status, err := c.peek()
	if err != nil {
		return 0, 0, err
	}
	if (status != frameOK && status != frameGap) || f.meta.Base > offset || f.meta.Base < r.base {
		return 0, r.base, nil // a stale entry: scan the segment instead
	}
	return pos, f.meta.Base, nil
}

// seekEnd positions the reader after the last committed record.
func (r *partReader) seekEnd() error {
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	seg := int64(0)
	if len(bases) > 0 {
		seg = bases[len(bases)-1]
	}
	return r.seekEndFrom(seg)
}

// seekEndFrom is seekEnd from segment seg, the last one listed (or a
// later one, if it is gone by now).
func (r *partReader) seekEndFrom(seg int64) error {
	for {
		if err := r.openSegmentOrLater(seg); err != nil || r.f == nil {
			return err
		}
		seg = r.base
		st, err := r.f.Stat()
		if err != nil {
			return err
		}
		c := r.cur
		f, status, err := c.walkToEnd(r.p.dir, seg, st.Size())
		c.invalidate()
		if err != nil {
			return err
		}
		if status == frameSeal {
			seg = c.next
			continue
		}
		r.next, r.endSize = c.next, c.dataEnd(f, status, st.Size())
		return nil
	}
}

// seekTime positions the reader at the first record whose timestamp is at
// or after t: sealed segments whose newest record is older are skipped by
// their time index, the rest is scanned from the entry of it before t.
// Each entry used is checked against the log first (checkTimeEntry); one
// that disagrees costs a scan of its segment from the start. A scan that
// reaches the seal of a segment goes on with the next segment's index.
func (r *partReader) seekTime(t time.Time) error {
	ts := unixNanoWithin(t)
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		r.byTime, r.minTime = true, ts
		return r.openSegment(0)
	}
	// The seal checks this lookup adds are bounded by the segments
	// listed: those of segments gone since the last one go first.
	r.p.forgetSealChecks(bases[0])
	for i, seg := range bases {
		next := int64(-1) // the next segment, where a scan stops
		if i < len(bases)-1 {
			next = bases[i+1]
		}
		start, err := r.timeIndexStart(seg, next, ts)
		if err != nil {
			return err
		}
		if start.older {
			continue
		}
		if !start.placed {
			err = r.seek(start.seek)
			if errors.Is(err, ErrOutOfRange) && start.seek != seg {
				// The segment ends before the seal's offset now (its
				// tail was cut since the check): scan it instead.
				err = r.seek(seg)
			}
			if err != nil {
				return err
			}
		}
		r.byTime, r.minTime = true, ts
		if sealed, err := r.skipOlder(next); err != nil || !sealed {
			return err
		}
		// No record of this segment is at or after t: go on with the
		// next one's index.
	}
	return nil
}

// timeStart is where timeIndexStart says a lookup by time goes on.
type timeStart struct {
	older  bool  // every record of the segment is older: go on to the next
	placed bool  // the reader is at the frame of the entry it used
	seek   int64 // otherwise, the offset to seek to
}

// timeIndexStart finds where segment seg's time index says to start
// looking for the first record at or after ts (its last entry older than
// ts), and checks that entry against the log. next is the base of the
// next segment listed, or -1 if seg is the last one: a segment is passed
// over only for a next one listed. Without an entry to use, or with one
// the log does not bear out, the lookup starts at the segment's start.
func (r *partReader) timeIndexStart(seg, next, ts int64) (timeStart, error) {
	// Bound what the time index may hold by what its log can: a segment
	// name or index file from elsewhere must not size an allocation. A
	// log of n bytes holds fewer than n records.
	logPath := segmentPath(r.p.dir, seg, logExt)
	logSize := int64(0)
	st, err := os.Stat(logPath)
	if err == nil {
		logSize = st.Size()
	}
	count := logSize
	if next >= 0 {
		count = min(count, next-seg)
	}
	scan := timeStart{seek: seg}
	tpath := segmentPath(r.p.dir, seg, timeIndexExt)
	entries, err := readTimeIndex(tpath, logSize/frame.HeaderSize+2, count)
	if err != nil {
		return scan, err
	}
	k := lookupTime(entries, ts)
	if k < 0 {
		return scan, nil
	}
	at := seg + int64(entries[k].rel)
	var sc sealCheck
	if st != nil && at == next {
		if sc = sealCheckOf(st, entries, k); r.p.sealChecked(seg, sc) {
			return timeStart{older: true}, nil
		}
	}
	if err := r.openSegment(seg); err != nil || r.f == nil || r.base != seg {
		return scan, nil // seek says what became of the segment
	}
	idx, err := readIndex(segmentPath(r.p.dir, seg, indexExt), logSize)
	if err != nil {
		return scan, err
	}
	c := r.cur
	chk, err := checkTimeEntry(c, seg, idx, entries, k)
	c.verify = true
	c.invalidate()
	if err != nil {
		return scan, err
	}
	switch {
	case !chk.ok:
		r.p.log.indexDamaged(tpath, chk.why)
		return scan, nil
	case chk.sealed && at == next:
		if sc.log != nil {
			r.p.sealChecks.Store(seg, sc)
		}
		return timeStart{older: true}, nil
	case chk.sealed:
		return timeStart{seek: at}, nil
	}
	c.seek(chk.pos, at)
	r.next = at
	return timeStart{placed: true}, nil
}

// skipOlder moves a reader started by time to its first record at or after
// minTime, so that Position reports it: frames whose newest record is older
// are skipped by their header alone. If no such record exists yet the
// reader stays at the end, still filtering. At a seal naming stopAt it
// stops instead of moving on to that segment, and reports sealed.
func (r *partReader) skipOlder(stopAt int64) (sealed bool, err error) {
	for r.byTime {
		if r.f == nil {
			return false, nil
		}
		c := r.cur
		// Headers alone decide most frames; only a frame that may hold
		// the record is read whole and checked.
		c.verify = false
		f, st, err := c.peek()
		c.verify = true
		if err != nil {
			return false, err
		}
		switch st {
		case frameSeal:
			if f.meta.Base == stopAt {
				return true, nil
			}
			if err := r.openSegment(f.meta.Base); err != nil {
				return false, err
			}
			continue
		case frameGap:
			c.skip(f)
			r.next = c.next
			continue
		case frameOK:
		default:
			return false, nil // fill will find out what is there
		}
		if f.meta.MaxTime >= r.minTime {
			c.invalidate()
			f, st, err := c.peek()
			if err != nil || st != frameOK {
				return false, err // fill will find out what is wrong
			}
			it := frame.NewRecords(f.data, f.meta)
			var fr frame.Record
			for off := f.meta.Base; it.Next(&fr); off++ {
				if off >= r.next && fr.Timestamp >= r.minTime {
					r.next, r.byTime = off, false
					return false, nil
				}
			}
			if err := it.Err(); err != nil {
				return false, &CorruptError{Path: r.path, Pos: f.pos, Offset: f.meta.Base, To: f.meta.End(), Err: err}
			}
		}
		c.skip(f)
		r.next = c.next
	}
	return false, nil
}

// fill appends the committed records available now to dst, at most max of
// them, reading at most about one buffer of bytes, and returns the
// extended slice. The records alias the reader's buffer until a later
// fill reads into it. Where it stops short of the end of its file it sets
// stuck, at the end atEnd: a write in progress, what a writer left
// unfinished, damage or the end of the data, which reader_end.go tells
// apart.
func (r *partReader) fill(dst []Record, max int) ([]Record, error) {
	if r.advanced && !r.atEnd {
		// The last fill read frames and stopped short of the end (its
		// window was full, or MaxPollRecords): reachedEnd may count them.
		r.movedSeq = int64(r.fillSeq)
	}
	r.atEnd, r.stuck, r.advanced = false, false, false
	if err := r.checkStart(); err != nil {
		return dst, err
	}
	if r.seq != nil {
		r.fillSeq = r.seq.Load()
	}
	start := len(dst)
	limit := start + max
	resume := r.resume
	r.resume = false
	for {
		if r.f == nil {
			// The segment a seal named is not there yet (its writer is
			// creating it): the end of the data, for now.
			if err := r.openSegment(r.base); err != nil || r.f == nil {
				r.atEnd = err == nil
				return dst, err
			}
		}
		c := r.cur
		if !resume {
			c.unpin()
			r.restNext = -1
		}
		resume = false
	frames:
		for {
			var f segFrame
			var st frameStatus
			var err error
			if r.restNext >= 0 && r.partial.pos == c.pos {
				// The frame the last fill stopped inside, checked then.
				f, st = r.partial, frameOK
			} else if f, st, err = c.peek(); err != nil {
				return dst, r.readFailed(err, len(dst) > start)
			}
			switch st {
			case frameOK:
				before := len(dst)
				var whole bool
				if dst, whole, err = r.decode(dst, f, limit); err != nil {
					// Records that do not decode in a checksummed frame:
					// none of those this fill read is delivered, and the
					// reader stays before them, so every Poll reports
					// it. (A frame split between Polls by MaxPollRecords
					// delivered its records before them already.)
					return dst[:before], err
				}
				if whole {
					c.skip(f)
				} else {
					r.partial = f
				}
				r.advanced = true
				if len(dst) > before {
					c.pin() // the records alias the window
				}
				if len(dst) >= limit {
					// MaxPollRecords: the next fill goes on from here.
					r.resume = true
					return dst, nil
				}
				continue
			case frameGap:
				if r.stopAtGaps && len(dst) > start {
					return dst, nil // the records first; the gap next time
				}
				if err := r.crossGap(f); err != nil {
					return dst, err
				}
				c.skip(f)
				r.advanced = true
				continue
			case frameSeal:
				r.advanced = true
				if err := r.openSegment(f.meta.Base); err != nil {
					return dst, err
				}
				if len(dst) > start {
					return dst, nil // the next fill reads the new segment
				}
				break frames
			case frameMore:
				if len(dst) == start {
					// Every record read was skipped (before the start
					// offset or time): keep reading, or Poll would sleep
					// on unread data.
					c.unpin()
					continue
				}
				return dst, nil
			case frameEnd:
				if f.eof {
					r.reachedEnd()
					return dst, nil
				}
			}
			r.stuck = true
			return dst, nil
		}
	}
}

// readFailed is what a fill returns when reading its segment failed with
// err. A segment that retention removed while the cache had its file
// closed (for room, or idle) is handled as a removal found on opening it
// (segmentGone), unless the fill has records to return first. A reader
// that had read every record of the segment goes on in the segment that
// starts at its offset: retention seals an active segment past the age
// limit (retention_active.go) under readers that are caught up, and
// removing what they have read takes nothing from them.
func (r *partReader) readFailed(err error, delivered bool) error {
	if !errors.Is(err, errSegmentGone) {
		return err
	}
	if delivered {
		return nil
	}
	if _, serr := os.Stat(r.path); !errors.Is(serr, fs.ErrNotExist) {
		return err // replaced, not removed: the topic was deleted
	}
	base, next := r.base, r.next
	if next > base {
		bases, err := listSegments(r.p.dir)
		if err != nil {
			return fmt.Errorf("runnel: list segments of %s: %w", r.p.dir, err)
		}
		if slices.Contains(bases, next) {
			return r.openSegment(next)
		}
	}
	r.useSegment(nil, base)
	return r.segmentGone(base)
}

// crossGap moves the reader over a gap frame, whose offsets a salvage
// found unreadable: counted and logged, or, with stopAtGaps, a *GapError
// that leaves the reader before it.
func (r *partReader) crossGap(f segFrame) error {
	from, to := max(r.next, f.meta.Base), f.meta.End()
	if to <= from {
		return nil
	}
	if r.stopAtGaps {
		return &GapError{Topic: r.p.topic.name, Partition: r.p.id, From: from, To: to}
	}
	r.p.noteGapCrossed(to - from)
	r.p.log.opts.Logger.Warn("runnel: consumer skipped lost records", "topic", r.p.topic.name, "partition", r.p.id,
		"from_offset", from, "to_offset", to-1, "count", to-from)
	r.next = to
	return nil
}

// decode appends the records of one verified frame from r.next on, until
// dst holds limit records, and reports whether it reached the frame's end.
// The slice grows once per frame, by the records it will take from it.
func (r *partReader) decode(dst []Record, f segFrame, limit int) ([]Record, bool, error) {
	m := f.meta
	var it frame.Records
	off := m.Base
	if r.restNext >= 0 && r.restNext == r.next && r.partial.pos == f.pos {
		it, off = r.rest, r.next // where the last fill stopped in this frame
	} else {
		it = frame.NewRecords(f.data, m)
		// Records before the start offset (a seek into the frame) are
		// passed over by their lengths alone.
		for off < r.next && it.Skip() {
			off++
		}
	}
	dst = slices.Grow(dst, min(int(m.End()-off), limit-len(dst)))
	var fr frame.Record
	for len(dst) < limit && it.Next(&fr) {
		if err := recordErr(m, &fr); err != nil {
			r.restNext = -1
			return dst, false, &CorruptError{Path: r.path, Pos: f.pos, Offset: max(r.next, off), To: m.End(),
				Err: fmt.Errorf("record %d of the frame: %w", off-m.Base, err)}
		}
		if !r.byTime || fr.Timestamp >= r.minTime {
			r.byTime = false
			dst = append(dst, Record{
				Key:       fr.Key,
				Value:     fr.Value,
				Headers:   recordHeaders(fr.Headers),
				Time:      time.Unix(0, fr.Timestamp),
				Partition: r.p.id,
				Offset:    off,
			})
		}
		off++
	}
	if err := it.Err(); err != nil {
		r.restNext = -1
		return dst, false, &CorruptError{Path: r.path, Pos: f.pos, Offset: max(r.next, m.Base), To: m.End(),
			Err: fmt.Errorf("record %d of the frame: %w", off-m.Base, err)}
	}
	r.next = max(r.next, off)
	if off < m.End() {
		r.rest, r.restNext = it, off
		return dst, false, nil
	}
	r.restNext = -1
	r.bytesDecoded += m.Size()
	return dst, true, nil
}

// writerActive reports whether a writer (in any process, this one
// included) holds the partition's writer lock now. It asks through a lock
// file opened for the question: a reader stops short of a frame rarely,
// and a descriptor kept for each would count against the process's limit.
func (r *partReader) writerActive() (bool, error) {
	lf, err := openLockFile(filepath.Join(r.p.dir, metaFileName))
	if err != nil {
		return false, err
	}
	defer lf.Close()
	return lf.HeldByOther(writerLockByte)
}

// start positions r as sp says.
func (r *partReader) start(sp StartPosition) error {
	switch sp.kind {
	case startLatest:
		return r.seekEnd()
	case startOffset:
		return r.seek(sp.offset)
	case startTime:
		// A time before the start means the start: the time index knows
		// nothing of where DeleteRecords moved it, nor of what retention
		// removed since the listing.
		if err := r.resetting(func() error { return r.seekTime(sp.time) }); err != nil {
			return err
		}
		return r.upToStart()
	}
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		return r.openSegment(0)
	}
	recorded, err := r.recordedStart()
	if err != nil {
		return err
	}
	if recorded > bases[0] {
		// DeleteRecords moved the start inside the segments (or past the
		// end): seeking the first segment as a reader that resets finds it.
		return r.resetting(func() error { return r.seek(bases[0]) })
	}
	return r.openSegmentOrLater(bases[0])
}

// openSegmentOrLater opens segment base or, if retention removed it after
// the caller listed it, the first segment left.
func (r *partReader) openSegmentOrLater(base int64) error {
	return r.resetting(func() error { return r.openSegment(base) })
}

// resetting runs move, a move of a reader that wants wherever the log
// starts or ends now, as a reader that resets: a listing that retention
// overtook is no reason to report an offset out of range, but to open the
// first segment left.
func (r *partReader) resetting(move func() error) error {
	reset := r.resetOutOfRange
	r.resetOutOfRange = true
	defer func() { r.resetOutOfRange = reset }()
	return move()
}
