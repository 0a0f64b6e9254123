package runnel

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/runnel-log/runnel/internal/frame"
)

// A segment is one file of a partition's log, named by the offset of its
// first record. Frames follow each other 8-byte aligned from position 0; a
// committed seal frame ends a segment and names the next one's base.

const (
	logExt       = ".log"
	indexExt     = ".index"
	timeIndexExt = ".timeindex"
	segNameLen   = 20
)

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// listSegments returns the base offsets of a partition's segments, sorted.
// Files that do not look like segments are ignored.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if len(name) != segNameLen+len(logExt) || !strings.HasSuffix(name, logExt) {
			continue
		}
		base, err := strconv.ParseInt(name[:segNameLen], 10, 64)
		if err != nil || base < 0 {
			continue
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	return bases, nil
}

// frameStatus classifies what a scanner found at a position.
type frameStatus int

const (
	frameOK          frameStatus = iota // committed, checksum matches
	frameEnd                            // nothing written here: end of file or a zero length
	frameUncommitted                    // a whole, checksummed frame whose commit byte is not set
	frameBad                            // invalid header, cut short, or checksum mismatch
)

// scanner reads frames of one segment file sequentially through a
// read-ahead window, so that walking many small frames costs few syscalls.
type scanner struct {
	// verify makes frameAt check checksums. Without it a committed
	// header is taken at its word: enough to follow a live writer, whose
	// commit byte is written only after its frame.
	verify bool
	f      *os.File
	path   string
	buf    []byte
	at     int64 // file position of buf[0]
	n      int   // valid bytes in buf
}

const scanWindow = 256 << 10

func newScanner(f *os.File, path string) *scanner {
	return &scanner{f: f, path: path, verify: true}
}

// window returns up to n bytes at pos; fewer only at the end of the file.
func (s *scanner) window(pos int64, n int) ([]byte, error) {
	if pos >= s.at && pos+int64(n) <= s.at+int64(s.n) {
		off := int(pos - s.at)
		return s.buf[off : off+n], nil
	}
	size := max(n, scanWindow)
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	s.buf = s.buf[:size]
	m, err := s.f.ReadAt(s.buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		s.n = 0
		return nil, fmt.Errorf("runnel: read %s at %d: %w", s.path, pos, err)
	}
	s.at, s.n = pos, m
	return s.buf[:min(n, m)], nil
}

// invalidate drops the read-ahead window, after the file changed under it.
func (s *scanner) invalidate() { s.n = 0 }

// frameAt reads the frame at pos. For frameOK and frameUncommitted the
// returned bytes hold the whole frame (only its header without verify) and
// stay valid until the next call;
// cause says what is wrong for frameBad.
func (s *scanner) frameAt(pos int64) (m frame.Meta, data []byte, st frameStatus, cause error) {
	h, err := s.window(pos, frame.HeaderSize)
	if err != nil {
		return m, nil, frameBad, err
	}
	if len(h) == 0 || frame.IsZeroHeader(h) {
		return m, nil, frameEnd, nil
	}
	if m, err = frame.ParseMeta(h); err != nil {
		return m, nil, frameBad, err
	}
	if !s.verify {
		if m.Committed() {
			return m, h, frameOK, nil
		}
		return m, h, frameUncommitted, nil
	}
	data, err = s.window(pos, int(m.Size()))
	if err != nil {
		return m, nil, frameBad, err
	}
	if err := frame.Verify(data, m); err != nil {
		return m, nil, frameBad, err
	}
	if !m.Committed() {
		return m, data, frameUncommitted, nil
	}
	return m, data, frameOK, nil
}

// tailScan is where a forward walk over committed frames stopped.
type tailScan struct {
	pos    int64 // end of the last good frame: where the next frame goes
	next   int64 // offset the next record gets
	sealed bool  // the walk ended at a seal; next is the next segment's base
	maxTS  int64 // largest record timestamp seen by the walk
	frames int   // frames walked
	cause  error // for frameBad: what was wrong at pos
}

// walk follows committed frames from pos (whose first offset is next)
// until the end of the data, a seal, or a frame that is not good. visit,
// if set, sees each good records frame with its position, and stops the
// walk (before the frame) by returning false.
func (s *scanner) walk(pos, next int64, visit func(pos int64, m frame.Meta) bool) tailScan {
	t := tailScan{pos: pos, next: next, maxTS: -1 << 63}
	for {
		m, _, st, cause := s.frameAt(t.pos)
		if st == frameOK && m.Base != t.next {
			st, cause = frameBad, fmt.Errorf("frame starts at offset %d, expected %d", m.Base, t.next)
		}
		if st != frameOK {
			t.cause = cause
			return t
		}
		if m.Kind == frame.KindSeal {
			t.sealed = true
			return t
		}
		if visit != nil {
			if !visit(t.pos, m) {
				return t // the visitor found what it walked for
			}
		}
		t.maxTS = max(t.maxTS, m.MaxTime)
		t.pos += m.Size()
		t.next = m.End()
		t.frames++
	}
}

// committedAfter reports whether a committed, checksummed frame starts
// anywhere after pos. It tells damage inside committed data (later frames
// survive: report it) from a torn tail (nothing after: cut it).
func (s *scanner) committedAfter(pos int64) (found int64, ok bool, err error) {
	st, err := s.f.Stat()
	if err != nil {
		return 0, false, err
	}
	for p := pos + frame.Align; p+frame.HeaderSize <= st.Size(); p += frame.Align {
		h, err := s.window(p, frame.HeaderSize)
		if err != nil {
			return 0, false, err
		}
		if len(h) < frame.HeaderSize || frame.IsZeroHeader(h) {
			continue
		}
		s.verify = true
		if _, _, fst, _ := s.frameAt(p); fst == frameOK {
			return p, true, nil
		}
	}
	return 0, false, nil
}
