package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSegmentFile damages one segment file of a closed log of three
// segments (a patch of the fuzzer's bytes at a position, the file cut or
// grown) and uses the log as a process opening the directory would: a
// consumer reads it from the start, Verify checks it, a producer appends,
// a consumer reads again, and Repair with Salvage mends it. Whatever the
// bytes: nothing panics; every record read is the one written at its
// offset; a read stops at damage with a *CorruptError naming a file of
// the partition and a byte in it, never waiting at it (a record appended
// after the damage is read, or the read reports the damage); Verify names
// a file and a position for every problem, and finds one wherever a
// reader stopped at damage; a refused append is ErrCorrupt; and after the
// salvage nothing is wrong and the whole log reads, gaps skipped. Seeds:
// the segments' own frames moved, zeroed pages, cuts, and the golden
// damage's shapes.
func FuzzSegmentFile(f *testing.F) {
	const n = 17
	pristine := f.TempDir()
	pdir, segs := dgBuild(f, pristine, n)
	rel, _ := filepath.Rel(pristine, pdir)
	for i, s := range segs {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			f.Fatal(err)
		}
		fr := s.Frames
		f.Add(uint8(i), uint32(0), []byte{}, int32(-1))                                                              // untouched
		f.Add(uint8(i), uint32(fr[1].Pos+40), []byte{0xff}, int32(-1))                                               // a flipped byte
		f.Add(uint8(i), uint32(fr[1].Pos), make([]byte, 4096), int32(-1))                                            // a zeroed page
		f.Add(uint8(i), uint32(0), []byte{}, int32(fr[1].Pos+100))                                                   // cut in a frame
		f.Add(uint8(i), uint32(0), []byte{}, int32(fr[len(fr)-1].Pos))                                               // cut at a frame
		f.Add(uint8(i), uint32(0), []byte{}, int32(s.Size+8192))                                                     // zeros past the end
		f.Add(uint8(i), uint32(fr[0].Pos), data[fr[1].Pos:fr[1].Pos+fr[1].Meta.Size()], int32(-1))                   // a later frame first
		f.Add(uint8(i), uint32(fr[len(fr)-1].Pos), data[fr[0].Pos:fr[0].Pos+min(fr[0].Meta.Size(), 512)], int32(-1)) // a frame's head over the last
		f.Add(uint8(i), uint32(0), []byte{}, int32(0))                                                               // empty
	}

	f.Fuzz(func(t *testing.T, which uint8, at uint32, patch []byte, size int32) {
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		pdir := filepath.Join(dir, rel)
		s := segs[int(which)%len(segs)]
		path := filepath.Join(pdir, filepath.Base(s.Path))
		data := damageBytes(t, path, at, patch, size)
		ctx := context.Background()
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})

		rep, err := l.Verify(ctx, "t", nil)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		checkProblemsNamed(t, rep.Problems, pdir)

		recs, rerr := readFuzzedLog(t, l)
		checkWritten(t, recs, n)
		damaged := checkReadErr(t, "reader", rerr, pdir)
		if damaged && !hasDamage(rep.Problems) {
			t.Errorf("the reader stopped at %v; Verify found %v", rerr, rep.Problems)
		}

		p := mustProducer(t, l, "t", nil)
		pos, serr := p.Send(ctx, Record{Value: []byte("after the damage"), Time: tornTime(n)})
		if serr != nil && !errors.Is(serr, ErrCorrupt) {
			t.Fatalf("Send after damage to %s (%d bytes): %v, want nil or ErrCorrupt", path, len(data), serr)
		}
		if err := p.Close(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Producer.Close: %v", err)
		}
		recs, rerr = readFuzzedLog(t, l)
		checkWritten(t, recs, n)
		if checkReadErr(t, "reader after the append", rerr, pdir) {
			// Stopped at damage, said so.
		} else if serr == nil && (len(recs) == 0 || recs[len(recs)-1].Offset != pos.Offset) {
			t.Fatalf("the record appended at offset %d is not read (%d records read, no error): the reader waits at the damage", pos.Offset, len(recs))
		}

		rrep, err := l.Repair(ctx, "t", &RepairOptions{Salvage: true})
		if err != nil || len(rrep.Remaining) != 0 {
			t.Fatalf("salvage of %s: %v, remaining %v (found %v)", path, err, rrep.Remaining, rrep.Found.Problems)
		}
		recs, rerr = readFuzzedLog(t, l)
		checkWritten(t, recs, n)
		if rerr != nil {
			t.Fatalf("reader after the salvage: %v", rerr)
		}
		if serr == nil && (len(recs) == 0 || recs[len(recs)-1].Offset != pos.Offset) {
			t.Fatalf("after the salvage %d records read, the last not the one appended at offset %d", len(recs), pos.Offset)
		}
	})
}

// damageBytes writes patch at at (modulo the file's size, plus one) into
// the file at path, and then, if size is not negative, cuts or grows it to
// size (modulo its size plus 8 KiB). It returns the file's new bytes.
func damageBytes(t *testing.T, path string, at uint32, patch []byte, size int32) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(patch) > 0 {
		pos := int(at) % (len(data) + 1)
		if end := pos + len(patch); end > len(data) {
			data = append(data, make([]byte, end-len(data))...)
		}
		copy(data[pos:], patch)
	}
	if size >= 0 {
		n := int(size) % (len(data) + 8192)
		if n <= len(data) {
			data = data[:n]
		} else {
			data = append(data, make([]byte, n-len(data))...)
		}
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// readFuzzedLog reads topic t from the start with a new consumer (pollDry).
func readFuzzedLog(t *testing.T, l *Log) ([]Record, error) {
	t.Helper()
	c, err := l.Consumer("t", nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return pollDry(c)
}

// pollDry polls c without waiting until it has nothing more to give (two
// empty polls in a row) or fails.
func pollDry(c *Consumer) ([]Record, error) {
	var out []Record
	for idle := 0; idle < 2; {
		recs, err := c.TryPoll()
		for _, r := range recs {
			out = append(out, cloneRecord(r))
		}
		if err != nil {
			return out, err
		}
		if len(recs) == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out, nil
}

// checkWritten checks that recs, read from a log dgBuild wrote n records
// to and one append after them, are each the record written at its
// offset, in order.
func checkWritten(t *testing.T, recs []Record, n int) {
	t.Helper()
	last := int64(-1)
	for _, r := range recs {
		if r.Offset <= last {
			t.Fatalf("record at offset %d after offset %d", r.Offset, last)
		}
		last = r.Offset
		switch {
		case r.Offset < int64(n):
			if string(r.Key) != fmt.Sprintf("k%d", r.Offset) || !bytes.Equal(r.Value, tornValue(int(r.Offset), dgValueSize)) || !r.Time.Equal(tornTime(int(r.Offset))) {
				t.Fatalf("record at offset %d (key %q, %d bytes) is not the one written there", r.Offset, r.Key, len(r.Value))
			}
		case string(r.Value) != "after the damage":
			t.Fatalf("record at offset %d (key %q, %d bytes) was never written", r.Offset, r.Key, len(r.Value))
		}
	}
}

// checkReadErr checks that err, from reading a damaged partition in pdir,
// is nil or a *CorruptError naming a file there and a byte in it, and
// reports whether it is one.
func checkReadErr(t *testing.T, who string, err error, pdir string) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v, want a *CorruptError", who, err)
	}
	if filepath.Dir(ce.Path) != pdir || ce.Pos < 0 {
		t.Fatalf("%s: %v names %s at byte %d, want a byte of a file in %s", who, err, ce.Path, ce.Pos, pdir)
	}
	return true
}

// checkProblemsNamed checks that every problem Verify found names a file
// under dir, and a position in it for damage to a segment.
func checkProblemsNamed(t *testing.T, problems []Problem, dir string) {
	t.Helper()
	for _, p := range problems {
		if !strings.HasPrefix(p.Path, dir+string(filepath.Separator)) || p.Pos < -1 || p.Detail == "" {
			t.Errorf("Verify's problem %v does not name a file under %s", p, dir)
		}
		if (p.Kind == ProblemCorrupt || p.Kind == ProblemTornTail || p.Kind == ProblemLost) && p.Pos < 0 {
			t.Errorf("Verify's problem %v has no position", p)
		}
	}
}

// hasDamage reports whether problems include damage a reader stops at.
func hasDamage(problems []Problem) bool {
	for _, p := range problems {
		if p.Kind == ProblemCorrupt || p.Kind == ProblemLost || p.Kind == ProblemStrayDeleteMark {
			return true
		}
	}
	return false
}
