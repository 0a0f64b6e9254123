package runnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/runnel-log/runnel/internal/frame"
)

// The segment cursor is the one implementation of runnel's frame rules:
// whether the bytes at a position are a good frame that continues the
// log, and, where they are not, whether the data simply ends there, a
// writer left something unfinished, or committed data is damaged. The
// writer's tail walk, readers, Verify, Repair, Dump, recovery, retention and
// index rebuilds all read segments through it, so they cannot disagree.

// frameStatus is what a cursor found at its position.
type frameStatus int

const (
	// frameOK is a committed records frame whose checksum matches and
	// whose first offset is the one expected there.
	frameOK frameStatus = iota
	// frameSeal is a committed, checksummed seal naming the expected
	// offset: the segment ends, and the next one starts at that offset.
	frameSeal
	// frameGap is a committed, checksummed gap frame at the expected
	// offset: its offsets were lost and salvaged (see Repair).
	frameGap
	// frameEnd is nothing written: the end of the file, or a zero length
	// field (zeroed or preallocated space).
	frameEnd
	// frameUncommitted is a whole, checksummed frame whose commit byte is
	// not set: a write in progress, or one a writer never finished.
	frameUncommitted
	// frameBad is anything else: a malformed header, a frame cut short,
	// a checksum that does not match, or a good frame that does not
	// start at the expected offset.
	frameBad
	// frameMore says that the frame at the position does not fit in the
	// bytes the cursor may still use in this batch (see pin); the
	// caller reads it in its next batch.
	frameMore
)

func (s frameStatus) String() string {
	switch s {
	case frameOK:
		return "ok"
	case frameSeal:
		return "seal"
	case frameGap:
		return "gap"
	case frameEnd:
		return "end"
	case frameUncommitted:
		return "uncommitted"
	case frameBad:
		return "bad"
	case frameMore:
		return "more"
	}
	return fmt.Sprintf("frameStatus(%d)", int(s))
}

// good reports whether the cursor moves past a frame of this status: it
// holds committed data, or the record that it was lost.
func (s frameStatus) good() bool { return s == frameOK || s == frameSeal || s == frameGap }

// segFrame is one frame a cursor read.
type segFrame struct {
	pos  int64
	meta frame.Meta
	// data holds the checked bytes of a good or uncommitted frame (the
	// header alone without verification, or for a gap). It aliases the
	// cursor's window: valid until the next read, or while pinned.
	data  []byte
	cause error // frameBad and frameUncommitted: what is wrong
	// eof, for frameEnd: the data ends at pos, because the file does or
	// because only zeros follow to its end (zerosToEnd). Without it, a
	// zero length field has bytes that are not zero after it.
	eof bool
}

// cursor reads the frames of one segment file in order through a
// read-ahead window, so that walking many small frames costs few
// syscalls. It knows where the next frame starts (pos) and which offset it
// must start at (next).
type cursor struct {
	f       segmentFile
	path    string
	segBase int64 // the segment's base offset, from its name; -1 if unknown
	pos     int64 // where the next frame starts
	next    int64 // offset the next frame must start at; -1: any (after a resync)

	// verify makes the cursor check checksums. Without it a committed
	// header is taken at its word: enough to follow a live writer, whose
	// commit byte is written only after its frame, and to seek.
	verify bool

	buf    []byte
	at     int64 // file position of buf[0]
	n      int   // valid bytes in buf
	window int   // most bytes to read ahead
	pinned bool  // buf holds bytes handed out: read no more into it

	// ahead is how many bytes the next read asks for: firstWindow at
	// first, doubled up to window after each read that the file filled
	// and that was used up (the next read starts past its start). A
	// cursor that wants a few frames, or follows the tail of a live
	// partition (short reads), never reads or holds a whole window: a
	// fresh buffer costs a page fault per 4 KiB.
	ahead    int
	lastFull bool  // the last read got all it asked for
	lastAt   int64 // where it started

	// zeroFrom, zeroEnd: the bytes from zeroFrom to zeroEnd were found
	// zero, running to the end of the file (zerosToEnd); zeroEnd 0: none
	// are known. zeroLookedAt: the tail zerosToEnd last looked at, reading
	// past zeroEnd or not (a look at another tail may trust the zeros).
	zeroFrom, zeroEnd int64
	zeroLookedAt      int64
	zeroBuf           []byte
}

const (
	defaultWindow = 256 << 10
	firstWindow   = 64 << 10
	// tailWindow is the read-ahead after the data ended at zeros ahead
	// of the tail: a cursor that follows a live writer reads from there
	// on each wake-up, and the zeros, unlike the end of a file, would fill
	// a read of any size (a 256 KiB copy of zeros per record cost a
	// consumer tens of microseconds: docs/PERFORMANCE.md).
	tailWindow = 4 << 10
)

// newCursor returns a verifying cursor on segment file f positioned at pos,
// where offset next must start.
func newCursor(f segmentFile, path string, pos, next int64) *cursor {
	c := &cursor{pos: pos, next: next, verify: true, window: defaultWindow}
	c.setFile(f, path)
	return c
}

// setFile points the cursor at another segment file, keeping its buffer.
func (c *cursor) setFile(f segmentFile, path string) {
	c.f, c.path, c.segBase = f, path, -1
	c.forgetZeros()
	if base, ok := segmentBaseOf(path); ok {
		c.segBase = base
	}
	c.invalidate()
}

// seek moves the cursor to pos, where offset next starts.
func (c *cursor) seek(pos, next int64) { c.pos, c.next = pos, next }

// invalidate drops the read-ahead window, so that the next read sees the
// file as it is now.
func (c *cursor) invalidate() { c.n, c.pinned = 0, false }

// pin keeps the window's bytes valid: until unpin, the cursor reads
// nothing into its buffer and answers frameMore for a frame it does not
// already hold. A reader pins while records it delivers alias the window.
func (c *cursor) pin() { c.pinned = true }

// unpin ends a pin; the window is dropped, so the next read is fresh.
func (c *cursor) unpin() { c.invalidate() }

var errWindowFull = errors.New("frame does not fit in the pinned window")

// bytesAt returns up to n bytes at pos; fewer only at the end of the file.
func (c *cursor) bytesAt(pos int64, n int) ([]byte, error) {
	if pos >= c.at && pos+int64(n) <= c.at+int64(c.n) {
		off := int(pos - c.at)
		return c.buf[off : off+n], nil
	}
	if c.pinned {
		return nil, errWindowFull
	}
	size := c.readSize(pos)
	if n > size {
		// A frame larger than the window is read whole, but no further
		// than the file goes: a length read from damaged bytes never
		// sizes an allocation beyond the bytes there are.
		st, err := c.f.Stat()
		if err != nil {
			return nil, fmt.Errorf("runnel: stat %s: %w", c.path, err)
		}
		size = int(max(min(int64(n), st.Size()-pos), int64(size)))
	}
	if cap(c.buf) < size {
		c.buf = make([]byte, size)
	}
	c.buf = c.buf[:size]
	m, err := c.f.ReadAt(c.buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		c.n = 0
		return nil, fmt.Errorf("runnel: read %s at %d: %w", c.path, pos, err)
	}
	c.at, c.n = pos, m
	c.lastAt, c.lastFull = pos, m == size
	return c.buf[:min(n, m)], nil
}

// readSize is how many bytes to read ahead at pos: see ahead.
func (c *cursor) readSize(pos int64) int {
	switch {
	case c.ahead == 0:
		c.ahead = min(firstWindow, c.window)
	case c.lastFull && pos > c.lastAt && c.ahead < c.window:
		c.ahead = min(2*c.ahead, c.window)
	}
	return c.ahead
}

// frameAt reads the frame at pos without judging its offset. For good and
// uncommitted frames data holds the checked bytes. err is an I/O error.
func (c *cursor) frameAt(pos int64) (f segFrame, st frameStatus, err error) {
	f.pos = pos
	h, err := c.bytesAt(pos, frame.HeaderSize)
	if errors.Is(err, errWindowFull) {
		return f, frameMore, nil
	}
	if err != nil {
		return f, frameBad, err
	}
	if len(h) == 0 || frame.IsZeroHeader(h) {
		f.eof = len(h) == 0
		if !f.eof {
			if f.eof, err = c.zerosToEnd(pos); err != nil {
				return f, frameBad, err
			}
			if f.eof {
				// The next read is likely a live writer's next frame:
				// start small, and grow again as reads fill (readSize).
				c.ahead, c.lastFull = tailWindow, false
			}
		}
		return f, frameEnd, nil
	}
	if f.meta, f.cause = frame.ParseMeta(h); f.cause != nil {
		return f, frameBad, nil
	}
	f.data = h
	if c.verify || f.meta.Kind == frame.KindGap {
		data, err := c.bytesAt(pos, int(f.meta.Checked()))
		if errors.Is(err, errWindowFull) {
			return f, frameMore, nil
		}
		if err != nil {
			return f, frameBad, err
		}
		if f.cause = frame.Verify(data, f.meta); f.cause != nil {
			f.data = nil
			return f, frameBad, nil
		}
		f.data = data
	}
	if !f.meta.Committed() {
		f.cause = errUncommitted
		return f, frameUncommitted, nil
	}
	switch f.meta.Kind {
	case frame.KindSeal:
		return f, frameSeal, nil
	case frame.KindGap:
		return f, frameGap, nil
	}
	return f, frameOK, nil
}

var errUncommitted = errors.New("frame not committed")

// zeroScan is how many bytes zerosToEnd reads at a time.
const zeroScan = 64 << 10

// testHookZeroRead, if set, sees every read zerosToEnd makes: n bytes.
var testHookZeroRead func(n int)

// zerosToEnd reports whether the bytes from pos to the end of the file are
// all zero: the one rule by which the data ends at a zero length field
// (FORMAT.md, Zeros ahead of the tail). A writer that copies frames
// through a mapping extends the file with zeros ahead of its tail
// (prealloc.go), and one that dies leaves them; everywhere else a zero
// length field with bytes after it is a break that judgeTail judges.
//
// A cursor following a live writer meets the zeros on every wake-up, so it
// reads only the bytes it has not found zero yet: zeros found from
// zeroFrom to zeroEnd are still zeros from any pos in between whose header
// is zero, however the file's size moved since (an extension grown, cut
// back when the writer let its lock go, extended again), because writers
// write only at the tail, which is pos, and what they cut and extend again
// is zeros again. Only bytes past zeroEnd are new, and reading on from
// there until a read comes back short finds them, and the end of the file,
// without a stat: at the tail, one pread that returns nothing. (Reading
// the whole extension again whenever the size changed cost a consumer up
// to 4 MiB of reads per change, and the stat per wake-up a few
// microseconds.) judgeTail, which must not trust a live follower's
// shortcuts, forgets them first.
//
// Nor does a follower read past zeroEnd at a tail it has just reached
// by reading frames, the first time it looks there: what lies past
// zeroEnd can only be zeros the writer extended the file by since, or a
// break, and a break there is found at the next look at that tail (the
// follower's next wake-up, or its look once a second when none comes),
// when nothing was written at it meanwhile. That pread was half the
// system calls of a consumer that follows a writer record by record, and
// a fifth of the CPU of each Send and Poll (docs/PERFORMANCE.md, A
// follower's second read).
func (c *cursor) zerosToEnd(pos int64) (bool, error) {
	from := pos
	if c.zeroEnd > 0 && c.zeroFrom <= pos && pos <= c.zeroEnd {
		if pos != c.zeroLookedAt {
			c.zeroLookedAt = pos
			return true, nil
		}
		from = c.zeroEnd
	}
	// Looked at now: the next look at this tail is a second one.
	c.zeroLookedAt = pos
	if c.zeroBuf == nil {
		c.zeroBuf = make([]byte, zeroScan)
	}
	at := from
	for {
		n, err := c.f.ReadAt(c.zeroBuf, at)
		if testHookZeroRead != nil {
			testHookZeroRead(n)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("runnel: read %s at %d: %w", c.path, at, err)
		}
		if !allZero(c.zeroBuf[:n]) {
			c.forgetZeros()
			return false, nil
		}
		at += int64(n)
		if n < len(c.zeroBuf) {
			break // the end of the file
		}
	}
	c.zeroFrom, c.zeroEnd = pos, at
	return true, nil
}

// forgetZeros makes the next zerosToEnd read all the zeros again.
func (c *cursor) forgetZeros() { c.zeroFrom, c.zeroEnd, c.zeroLookedAt = 0, 0, 0 }

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// peek reads the frame at the cursor and judges it against the offset
// expected there, without moving. err is an I/O error only.
func (c *cursor) peek() (segFrame, frameStatus, error) {
	f, st, err := c.frameAt(c.pos)
	if err != nil || !st.good() {
		return f, st, err
	}
	if c.next >= 0 && f.meta.Base != c.next {
		f.cause = fmt.Errorf("frame starts at offset %d, expected %d", f.meta.Base, c.next)
		f.data = nil
		return f, frameBad, nil
	}
	if st == frameSeal && f.meta.Base <= c.segBase {
		// A segment that holds no offsets is never sealed: following
		// this seal would lead back to the segment itself.
		f.cause = fmt.Errorf("seal names offset %d, which is not past the segment's base", f.meta.Base)
		f.data = nil
		return f, frameBad, nil
	}
	return f, st, nil
}

// Next is peek that moves the cursor past a good frame (a seal included:
// the cursor is then at the end of its segment). Anything else leaves the
// cursor where it is.
func (c *cursor) Next() (segFrame, frameStatus, error) {
	f, st, err := c.peek()
	if err == nil && st.good() {
		c.skip(f)
	}
	return f, st, err
}

// skip moves the cursor past the good frame f that peek returned.
func (c *cursor) skip(f segFrame) {
	c.pos += f.meta.Size()
	c.next = f.meta.End()
}

// walk reads good frames until one that is not (a seal included, which
// ends the segment), and returns that one's status. visit, if not nil,
// sees each records or gap frame, and stops the walk before moving past
// it by returning false (walk then returns frameOK or frameGap).
func (c *cursor) walk(visit func(f segFrame) bool) (segFrame, frameStatus, error) {
	for {
		pos, next := c.pos, c.next
		f, st, err := c.Next()
		if err != nil || st != frameOK && st != frameGap {
			return f, st, err
		}
		if visit != nil && !visit(f) {
			c.pos, c.next = pos, next
			return f, st, nil
		}
	}
}

// resumption is where committed data resumes after a break, as resync
// found it.
type resumption struct {
	f     segFrame // the first frame of the data that resumes
	found bool
	end   int64 // the offset after the good frames that follow f
	// unsure: good committed frames follow the break, but none of them
	// could be told to be where the data resumes (see resync), or the
	// search ran out of its budget. Either way the break is not the end
	// of the data.
	unsure bool
}

// resyncBudget bounds the bytes a resync reads beyond four times those of
// the file after the break (a real frame may be checked twice, as the one
// after a passed-over candidate and as a candidate itself): a crafted file
// (every 8 bytes a header whose frame claims the rest of the file) must
// not cost the square of its size.
const resyncBudget = 1 << 20

// resync finds where committed data resumes after a break at pos: the
// first good committed frame after it (at 8-byte steps) whose offsets
// start at or after minBase, whose bytes the cursor verifies, and whose
// chain of frames fits the data after it. A frame inside a record's value
// (a segment file stored as a record, say) looks as good as a real one;
// but its chain ends inside the real data, and the real frames after it
// go back to lower offsets: such a candidate is passed over, and the
// search goes on after it. Finding none, the break is a torn tail, unless
// good committed frames were seen all the same (unsure): then it is not.
func (c *cursor) resync(pos, minBase int64) (resumption, error) {
	var r resumption
	st, err := c.f.Stat()
	if err != nil {
		return r, fmt.Errorf("runnel: stat %s: %w", c.path, err)
	}
	size := st.Size()
	verify := c.verify
	c.verify = true
	defer func() { c.verify = verify }()
	budget := resyncBudget + 4*max(size-pos, 0)
	// A break whose header still reads right (the checksum failed on its
	// body, say) has its extent: a frame inside it is a record's value,
	// unless its chain runs past it (the length field was what broke).
	extent := int64(-1)
	if h, err := c.bytesAt(pos, frame.HeaderSize); err != nil {
		return r, err
	} else if m, err := frame.ParseMeta(h); err == nil && minBase >= 0 && m.Base == minBase && pos+m.Size() <= size {
		extent = pos + m.Size()
	}
	for p := pos + frame.Align; p+frame.HeaderSize <= size; p += frame.Align {
		f, ok, err := c.candidate(p, minBase, size, &budget)
		if err != nil {
			return r, err
		}
		if budget < 0 {
			r.unsure = true
			return r, nil
		}
		if !ok {
			continue
		}
		end, after := c.chainEnd(f, &budget)
		if budget < 0 {
			r.unsure = true
			return r, nil
		}
		if p < extent && after <= extent {
			continue // inside the broken frame's value
		}
		// What follows the chain: nothing good (it is the end of the
		// data, or a torn tail), or data at later offsets (a second
		// break).
		var next segFrame
		found := false
		for q := after; q+frame.HeaderSize <= size && !found; q += frame.Align {
			if next, found, err = c.candidate(q, 0, size, &budget); err != nil {
				return r, err
			}
			if budget < 0 {
				r.unsure = true
				return r, nil
			}
		}
		if found && next.meta.Base < end {
			r.unsure = true // good, but not where the data resumes
			continue
		}
		return resumption{f: f, found: true, end: end}, nil
	}
	return r, nil
}

// candidate reads the frame at p for resync: ok if it is a good committed
// frame whose offsets start at or after minBase. A header whose frame
// would run past the end of the file (size) is passed over unread. What a
// check reads is taken from budget; the headers themselves are not (the
// search reads each byte after the break once, through the window).
func (c *cursor) candidate(p, minBase, size int64, budget *int64) (segFrame, bool, error) {
	h, err := c.bytesAt(p, frame.HeaderSize)
	if err != nil {
		return segFrame{}, false, err
	}
	if len(h) < frame.HeaderSize || frame.IsZeroHeader(h) {
		return segFrame{}, false, nil
	}
	m, err := frame.ParseMeta(h)
	if err != nil || !m.Committed() || m.Base < minBase || p+m.Checked() > size {
		return segFrame{}, false, nil
	}
	*budget -= m.Checked()
	if *budget < 0 {
		return segFrame{}, false, nil
	}
	f, st, err := c.frameAt(p)
	if err != nil {
		return f, false, err
	}
	return f, st.good(), nil
}

// recordsErr checks the records of a good records frame by the one rule
// readers, Verify, salvage and Dump share (the checksum cannot catch a
// writer's own mistakes): every record decodes, and none is timestamped
// after the frame's max_time, which the time index relies on. It returns
// the index of the first bad record and what is wrong with it, or nil.
func recordsErr(f segFrame) (int, error) {
	it := frame.NewRecords(f.data, f.meta)
	var r frame.Record
	k := 0
	for ; it.Next(&r); k++ {
		if err := recordErr(f.meta, &r); err != nil {
			return k, err
		}
	}
	return k, it.Err()
}

// recordErr is recordsErr's rule for one decoded record of a frame.
func recordErr(m frame.Meta, r *frame.Record) error {
	if r.Timestamp > m.MaxTime {
		return fmt.Errorf("record timestamp %d is after the frame's max_time %d", r.Timestamp, m.MaxTime)
	}
	return nil
}
