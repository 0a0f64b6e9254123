package runnel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// partReader reads one partition's committed records in order, lock-free:
// it trusts only frames whose commit byte is set and whose checksum
// matches, and treats anything else past them as the end of the data.
type partReader struct {
	p    *partition
	base int64    // base offset of the current segment
	f    *os.File // current segment; nil while it does not exist yet
	path string
	pos  int64 // byte position of the next frame to read
	next int64 // next offset to deliver

	// With byTime, records older than minTime are skipped until the first
	// one at or after it is delivered: a start by timestamp.
	byTime  bool
	minTime int64

	buf     []byte
	bufSize int

	// The bytes of the last read: win holds the file's bytes from winPos
	// on, and those up to winGood are whole, committed, verified frames,
	// which never change. A fill that stopped at MaxPollRecords goes on
	// from them without reading or verifying again, and from where it
	// stopped inside a frame (rest, the records after next of the frame
	// at restPos).
	win      []byte
	winPos   int64
	winGood  int64
	rest     frame.Records
	restPos  int64 // -1: rest is not valid
	restNext int64

	// stuck says why the last fill stopped before the end of the file,
	// or nil when it reached the end of the data.
	stuck error
	probe *lockFile // opened on first need, to ask whether a writer is active

	resetOutOfRange bool // below the start, move to it (retention.go)
}

func newPartReader(p *partition, bufSize int) *partReader {
	if bufSize <= 0 {
		bufSize = defaultMaxPollBytes
	}
	return &partReader{p: p, bufSize: bufSize, restPos: -1}
}

func (r *partReader) close() {
	r.closeSegment()
	if r.probe != nil {
		r.probe.Close()
		r.probe = nil
	}
}

func (r *partReader) closeSegment() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.win, r.restPos = nil, -1
}

// openSegment makes segment base current, positioned at its start. A
// segment that does not exist yet (its predecessor was just sealed) is
// opened later, by fill.
func (r *partReader) openSegment(base int64) error {
	r.closeSegment()
	r.base, r.pos, r.next = base, 0, base
	r.path = segmentPath(r.p.dir, base, logExt)
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.segmentGone(base)
	}
	if err != nil {
		return fmt.Errorf("runnel: open segment: %w", err)
	}
	r.f = f
	return nil
}

// segmentFor returns the base of the segment that holds offset, or
// ErrOutOfRange when offset is below the partition's start.
func (r *partReader) segmentFor(offset int64) (int64, error) {
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return 0, fmt.Errorf("runnel: list segments of %s: %w", r.p.dir, err)
	}
	if len(bases) == 0 {
		if offset == 0 {
			return 0, nil
		}
		return 0, r.p.outOfRange(offset)
	}
	if offset < bases[0] {
		return r.belowStart(offset, bases[0])
	}
	seg := bases[0]
	for _, b := range bases {
		if b <= offset {
			seg = b
		}
	}
	return seg, nil
}

// seek positions the reader at offset: the largest segment base at or
// below it, its index, then a walk over frame headers to the frame that
// holds it. An offset past the end is ErrOutOfRange; the end itself is
// valid (the reader waits there).
func (r *partReader) seek(offset int64) error {
	seg, err := r.segmentFor(offset)
	if err != nil {
		return err
	}
	for {
		if err := r.openSegment(seg); err != nil {
			return err
		}
		offset = max(offset, r.base) // reset past records retention removed
		if r.f == nil {
			if offset == seg {
				return nil
			}
			return r.p.outOfRange(offset)
		}
		pos, next, err := r.indexedStart(offset)
		if err != nil {
			return err
		}
		s := newScanner(r.f, r.path)
		s.verify = false
		var found bool
		t := s.walk(pos, next, func(fpos int64, m frame.Meta) bool {
			if m.End() > offset {
				found = true
				r.pos, r.next = fpos, offset
				return false
			}
			return true
		})
		switch {
		case found:
			return nil
		case t.sealed && t.next <= offset:
			seg = t.next
			continue
		case t.next == offset || (t.sealed && t.next > offset):
			r.pos, r.next = t.pos, t.next
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
	m, _, status, _ := newScanner(r.f, r.path).frameAt(pos)
	if status != frameOK || m.Kind != frame.KindRecords || m.Base > offset {
		return 0, r.base, nil // a stale entry: scan the segment instead
	}
	return pos, m.Base, nil
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
	for {
		if err := r.openSegment(seg); errors.Is(err, ErrOutOfRange) {
			// Retention removed it after the listing (the writer rolled
			// past it meanwhile): the end is further on.
			return r.seekEnd()
		} else if err != nil || r.f == nil {
			return err
		}
		st, err := r.f.Stat()
		if err != nil {
			return err
		}
		entries, err := readIndex(segmentPath(r.p.dir, seg, indexExt), st.Size())
		if err != nil {
			return err
		}
		pos, next := int64(0), seg
		if n := len(entries); n > 0 {
			m, _, status, _ := newScanner(r.f, r.path).frameAt(int64(entries[n-1].pos))
			if status == frameOK && m.Base == seg+int64(entries[n-1].rel) {
				pos, next = int64(entries[n-1].pos), m.Base
			}
		}
		s := newScanner(r.f, r.path)
		s.verify = false
		t := s.walk(pos, next, nil)
		if t.sealed {
			seg = t.next
			continue
		}
		r.pos, r.next = t.pos, t.next
		return nil
	}
}

// seekTime positions the reader at the first record whose timestamp is at
// or after t: sealed segments whose newest record is older are skipped by
// their time index, the rest is scanned.
func (r *partReader) seekTime(t time.Time) error {
	ts := t.UnixNano()
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		r.byTime, r.minTime = true, ts
		return r.openSegment(0)
	}
	for i, seg := range bases {
		last := i == len(bases)-1
		// Bound what the time index may hold by what its log can: a
		// segment name or index file from elsewhere must not size an
		// allocation. A log of n bytes holds fewer than n records.
		logSize := int64(0)
		if st, err := os.Stat(segmentPath(r.p.dir, seg, logExt)); err == nil {
			logSize = st.Size()
		}
		count := logSize
		if !last {
			count = min(count, bases[i+1]-seg)
		}
		entries, err := readTimeIndex(segmentPath(r.p.dir, seg, timeIndexExt), logSize/frame.HeaderSize+2, count)
		if err != nil {
			return err
		}
		if !last && len(entries) > 0 && entries[len(entries)-1].rel == uint32(count) && entries[len(entries)-1].ts < ts {
			continue // every record of this sealed segment is older
		}
		err = r.seek(seg + lookupTime(entries, ts))
		if errors.Is(err, ErrOutOfRange) {
			// The time index names offsets the log does not hold (it
			// outlived a cut tail): scan the segment instead.
			err = r.seek(seg)
		}
		if err != nil {
			return err
		}
		r.byTime, r.minTime = true, ts
		return r.skipOlder()
	}
	return nil
}

// skipOlder moves a reader started by time to its first record at or after
// minTime, so that Position reports it: frames whose newest record is older
// are skipped by their header alone. If no such record exists yet the
// reader stays at the end, still filtering.
func (r *partReader) skipOlder() error {
	var s *scanner
	for r.byTime {
		if r.f == nil {
			return nil
		}
		if s == nil || s.f != r.f {
			s = newScanner(r.f, r.path)
		}
		// Headers alone decide most frames; only a frame that may hold
		// the record is read whole and checked.
		s.verify = false
		m, _, st, _ := s.frameAt(r.pos)
		if st != frameOK {
			return nil
		}
		if m.Kind == frame.KindSeal {
			if err := r.openSegment(m.Base); err != nil {
				return err
			}
			continue
		}
		if m.MaxTime >= r.minTime {
			s.verify = true
			m, data, st, _ := s.frameAt(r.pos)
			if st != frameOK {
				return nil // fill will find out what is wrong
			}
			it := frame.NewRecords(data, m)
			var fr frame.Record
			for off := m.Base; it.Next(&fr); off++ {
				if off >= r.next && fr.Timestamp >= r.minTime {
					r.next, r.byTime = off, false
					return nil
				}
			}
			if err := it.Err(); err != nil {
				return &CorruptError{Path: r.path, Pos: r.pos, Offset: m.Base, Err: err}
			}
		}
		r.pos, r.next = r.pos+m.Size(), m.End()
	}
	return nil
}

// fill appends the committed records available now to dst, at most max of
// them, reading at most about one buffer of bytes, and returns the
// extended slice. The records alias the reader's buffer until a later fill
// reads into it. When it stops at bytes that are not a good committed
// frame it sets r.stuck: a write in progress, a dead writer's leftovers,
// or damage (Consumer.Poll tells which).
func (r *partReader) fill(dst []Record, max int) ([]Record, error) {
	r.stuck = nil
	start := len(dst)
	limit := start + max
	for {
		if r.f == nil {
			if err := r.openSegment(r.base); err != nil || r.f == nil {
				return dst, err
			}
		}
		// Go on in the bytes of the last read if they still hold r.pos:
		// the records handed out from them were never overwritten, and
		// the next read starts where they end.
		reused := r.win != nil && r.pos >= r.winPos && r.pos < r.winPos+int64(len(r.win))
		var buf []byte
		atEOF := false
		if reused {
			buf = r.win[r.pos-r.winPos:]
		} else {
			if cap(r.buf) < r.bufSize {
				r.buf = make([]byte, r.bufSize)
			}
			b := r.buf[:cap(r.buf)]
			n, err := r.f.ReadAt(b, r.pos)
			if err != nil && !errors.Is(err, io.EOF) {
				return dst, fmt.Errorf("runnel: read %s at %d: %w", r.path, r.pos, err)
			}
			atEOF = n < len(b)
			r.win, r.winPos, r.winGood, r.restPos = b[:n], r.pos, r.pos, -1
			buf = r.win
		}
		var delivered int
		next := int64(-1) // segment to continue in after a seal
		var grow int64    // a frame larger than the buffer: its size
		full := false
		for len(buf) > 0 && !frame.IsZeroHeader(buf) {
			m, err := frame.ParseMeta(buf)
			// The checksum covers m.Length bytes, not the padding: a file
			// that ends in a frame's padding holds the whole frame, as the
			// writer's scan agrees.
			size := m.Size()
			if atEOF && int64(len(buf)) < size && int64(len(buf)) >= int64(m.Length) {
				size = int64(len(buf))
			}
			switch {
			case err != nil && len(buf) < frame.HeaderSize && !atEOF:
				// A header cut by the buffer's end: read it next time.
			case err != nil:
				r.stuck = err
			case !m.Committed():
				r.stuck = errUncommitted
			case int64(len(buf)) < size && atEOF:
				r.stuck = fmt.Errorf("committed frame of %d bytes cut short by the end of the file", m.Size())
			case int64(len(buf)) < size && delivered == 0 && m.Size() > int64(cap(r.buf)):
				grow = m.Size()
			case !followsOn(m, r.next):
				// Whole and committed, but not the frame that comes next
				// (a stale one): never deliver its offsets.
				r.stuck = fmt.Errorf("frame starts at offset %d, expected %d", m.Base, r.next)
			}
			if err != nil || r.stuck != nil || int64(len(buf)) < size {
				break
			}
			data := buf[:size]
			if r.pos+size > r.winGood {
				if err := frame.Verify(data, m); err != nil {
					r.stuck = err
					break
				}
				r.winGood = r.pos + size
			}
			if m.Kind == frame.KindSeal {
				next = m.Base
				break
			}
			var whole bool
			if dst, whole, err = r.decode(dst, data, m, limit); err != nil {
				return dst, err
			}
			delivered++
			if whole {
				r.pos += m.Size()
				buf = buf[size:]
			}
			if len(dst) >= limit {
				full = true
				break
			}
		}
		if reused && !full {
			// The old bytes say nothing about the file now: what follows
			// them is read afresh, in this fill if it has nothing yet.
			r.stuck = nil
			if len(dst) == start {
				r.win = nil
				continue
			}
			return dst, nil
		}
		switch {
		case full:
			return dst, nil
		case grow > 0:
			// ParseMeta capped the size at frame.MaxSize.
			r.buf, r.win = make([]byte, grow), nil
			continue
		case next >= 0:
			if err := r.openSegment(next); err != nil {
				return dst, err
			}
			if len(dst) > start {
				return dst, nil // the next fill reads the new segment
			}
			continue
		case delivered > 0 && len(dst) == start:
			// Every record read was skipped (before the start offset or
			// time): keep reading, or Poll would sleep on unread data.
			continue
		}
		return dst, nil
	}
}

var errUncommitted = errors.New("frame not committed")

// followsOn reports whether the frame m can come next for a reader whose
// next offset is next: it starts there, or (after a seek into the middle
// of a frame) holds it. The writer's walk is as strict.
func followsOn(m frame.Meta, next int64) bool {
	return m.Base == next || m.Kind == frame.KindRecords && m.Base < next && next < m.End()
}

// decode appends the records of one verified frame from r.next on, until
// dst holds limit records, and reports whether it reached the frame's end.
// The slice grows once per frame, by the frame's record count.
func (r *partReader) decode(dst []Record, data []byte, m frame.Meta, limit int) ([]Record, bool, error) {
	var it frame.Records
	off := m.Base
	if r.restPos == r.pos && r.restNext == r.next {
		it, off = r.rest, r.next // where the last fill stopped in this frame
	} else {
		it = frame.NewRecords(data, m)
	}
	// Records before the start offset (a seek into the frame) are passed
	// over by their lengths alone.
	for off < r.next && it.Skip() {
		off++
	}
	dst = slices.Grow(dst, min(int(m.End()-off), limit-len(dst)))
	var fr frame.Record
	for len(dst) < limit && it.Next(&fr) {
		if off >= r.next && (!r.byTime || fr.Timestamp >= r.minTime) {
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
		return dst, false, &CorruptError{Path: r.path, Pos: r.pos, Offset: off, Err: err}
	}
	r.next = max(r.next, off)
	if off < m.End() {
		r.rest, r.restPos, r.restNext = it, r.pos, off
		return dst, false, nil
	}
	r.restPos = -1
	return dst, true, nil
}

// writerActive reports whether a writer (in any process, this one
// included) holds the partition's writer lock now.
func (r *partReader) writerActive() (bool, error) {
	if r.probe == nil {
		lf, err := openLockFile(filepath.Join(r.p.dir, metaFileName))
		if err != nil {
			return false, err
		}
		r.probe = lf
	}
	return r.probe.HeldByOther(writerLockByte)
}

// checkDamage runs after a repair found nothing to cut but the reader is
// still stuck with no writer active: if a committed frame follows the
// bytes it is stuck at, they are damage inside committed data.
func (r *partReader) checkDamage() error {
	if r.f == nil {
		return nil
	}
	s := newScanner(r.f, r.path)
	m, _, st, cause := s.frameAt(r.pos)
	if st == frameOK && !followsOn(m, r.next) {
		st, cause = frameBad, fmt.Errorf("frame starts at offset %d, expected %d", m.Base, r.next)
	}
	if st == frameOK || st == frameEnd {
		return nil // readable now, or the end of the data
	}
	if cause == nil {
		cause = fmt.Errorf("frame at offset %d not committed", m.Base)
	}
	if at, found, err := s.committedAfter(r.pos); err != nil {
		return err
	} else if found {
		return &CorruptError{Path: r.path, Pos: r.pos, Offset: r.next,
			Err: fmt.Errorf("%v; committed data follows at byte %d", cause, at)}
	}
	return nil
}

// start positions r as sp says.
func (r *partReader) start(sp StartPosition) error {
	switch sp.kind {
	case startLatest:
		return r.seekEnd()
	case startOffset:
		return r.seek(sp.offset)
	case startTime:
		return r.seekTime(sp.time)
	}
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		return r.openSegment(0)
	}
	return r.openSegment(bases[0])
}
