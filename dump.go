package runnel

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// DumpFrame is one frame of a segment file as Dump found it.
type DumpFrame struct {
	Path      string // the segment file (for a "log start", the log-start file)
	Pos       int64  // byte position of the frame
	Size      int64  // bytes it takes, padding included; 0 if unknown
	Kind      string // "records", "seal", "gap" or "log start"; "" if the header is unreadable
	Committed bool
	Base      int64 // first offset; for a seal, the next segment's base
	Count     int
	FirstTime int64 // unix nanoseconds
	MaxTime   int64
	Checksum  uint64

	// Problem says why readers do not deliver the frame; "" for a good
	// committed frame (a gap included: Base and Count say which offsets
	// it marks as lost).
	Problem string

	// Records are a good records frame's records from the start offset
	// on. They alias Dump's buffer: valid during the iteration step.
	Records []Record
}

// Dump iterates over the frames of one partition's segment files from the
// frame that holds offset from (the first frame, if from is below the
// partition's start), including frames readers never deliver: uncommitted,
// torn or damaged ones, which carry a Problem. After damage it resumes at
// the next committed frame. It is for debugging; it takes no lock.
//
// A partition whose start DeleteRecords moved has its log-start file
// shown first, as a frame of kind "log start" whose Base is the start it
// records: the records below it that are still on disk are deleted, and
// no reader is given them. A damaged file is shown with its Problem, at
// the byte of the damage, and Base -1; the frames follow all the same.
func (l *Log) Dump(topic string, partition int, from int64) iter.Seq2[DumpFrame, error] {
	return func(yield func(DumpFrame, error) bool) {
		t, err := l.topic(topic)
		if err != nil {
			yield(DumpFrame{}, err)
			return
		}
		p, err := l.partitionOf(t, partition)
		if err != nil {
			yield(DumpFrame{}, err)
			return
		}
		bases, err := listSegments(p.dir)
		if err != nil {
			yield(DumpFrame{}, fmt.Errorf("runnel: list segments of %s: %w", p.dir, err))
			return
		}
		if !dumpLogStart(p, yield) {
			return
		}
		first := 0
		for i, b := range bases {
			if b <= from {
				first = i
			}
		}
		for i := first; i < len(bases); i++ {
			if !dumpSegment(p, bases[i], from, i == first, yield) {
				return
			}
		}
	}
}

// dumpLogStart yields partition p's log-start file, if it has one, as a
// "log start" frame; it reports whether to go on. Damage is shown, not
// returned: the frames are what a dump of a damaged partition is for.
func dumpLogStart(p *partition, yield func(DumpFrame, error) bool) bool {
	recorded, err := readLogStart(p.dir)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return yield(DumpFrame{Path: ce.Path, Pos: ce.Pos, Kind: "log start", Base: -1, Problem: ce.Err.Error()}, nil)
	case err != nil:
		return yield(DumpFrame{}, err)
	case recorded == 0:
		return true // no file, or one that deletes nothing
	}
	return yield(DumpFrame{Path: logStartPath(p.dir), Kind: "log start", Committed: true, Base: recorded, Size: logStartSize}, nil)
}

// dumpSegment yields one segment's frames; it reports whether to go on.
func dumpSegment(p *partition, base, from int64, seek bool, yield func(DumpFrame, error) bool) bool {
	path := segmentPath(p.dir, base, logExt)
	f, err := openRegularRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		if ce := leadsNowhere(path, err); ce != nil {
			return yield(DumpFrame{Path: path, Base: -1, Problem: ce.Err.Error()}, nil)
		}
		return true // removed by retention meanwhile
	}
	if err != nil {
		return yield(DumpFrame{}, fmt.Errorf("runnel: dump %s: %w", path, err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return yield(DumpFrame{}, err)
	}
	c := newCursor(f, path, 0, base)
	if seek && from > base {
		entries, _ := readIndex(segmentPath(p.dir, base, indexExt), st.Size())
		if at := lookupIndex(entries, from-base); at > 0 {
			if fr, status, err := newCursor(f, path, at, -1).peek(); err == nil && status.good() && fr.meta.Base <= from {
				c.seek(at, fr.meta.Base)
			}
		}
	}
	var recs []Record
	for {
		fr, status, err := c.peek()
		if err != nil {
			return yield(DumpFrame{}, err)
		}
		if status == frameEnd && fr.eof {
			return true
		}
		m := fr.meta
		df := DumpFrame{Path: path, Pos: fr.pos}
		if status != frameEnd && m.Length != 0 {
			df.Size, df.Committed, df.Base, df.Count = m.Size(), m.Committed(), m.Base, int(m.Count)
			df.FirstTime, df.MaxTime, df.Checksum = m.FirstTime, m.MaxTime, m.Checksum
			df.Kind = kindName(m.Kind)
		}
		switch status {
		case frameOK, frameGap, frameSeal:
			c.skip(fr)
			if status == frameOK {
				if m.End() <= from {
					continue
				}
				recs = recs[:0]
				it := frame.NewRecords(fr.data, m)
				var r frame.Record
				for off := m.Base; it.Next(&r); off++ {
					if off >= from {
						recs = append(recs, Record{Key: r.Key, Value: r.Value, Headers: recordHeaders(r.Headers),
							Time: time.Unix(0, r.Timestamp), Partition: p.id, Offset: off})
					}
				}
				if k, err := recordsErr(fr); err != nil {
					df.Problem = fmt.Sprintf("bad records: record %d of the frame: %v", k, err)
				}
				df.Records = recs
			}
			if !yield(df, nil) {
				return false
			}
			if status == frameSeal {
				return true
			}
			continue
		case frameUncommitted:
			df.Problem = "not committed"
		case frameEnd:
			df.Problem = errZeroFrame.Error()
		default:
			df.Problem = fmt.Sprint(fr.cause)
		}
		r, err := c.resync(c.pos, -1)
		if err != nil {
			return yield(df, err)
		}
		next, found := r.f, r.found
		if found {
			df.Problem += fmt.Sprintf("; next committed frame at byte %d", next.pos)
		} else {
			df.Problem += fmt.Sprintf("; %d bytes to the end of the file, none of them a committed frame", st.Size()-fr.pos)
		}
		if !yield(df, nil) || !found {
			return found
		}
		c.seek(next.pos, next.meta.Base)
	}
}

// kindName names a frame kind for Dump.
func kindName(kind uint8) string {
	switch kind {
	case frame.KindSeal:
		return "seal"
	case frame.KindGap:
		return "gap"
	}
	return "records"
}
