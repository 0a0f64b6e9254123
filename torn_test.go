package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/cespare/xxhash/v2"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/frame"
)

// Torn writes and damaged files: what a dead writer, a power loss or a bad
// disk leaves in a segment, and what the next reader and writer make of it.

var updateTorn = flag.Bool("update-torn", false, "rewrite the golden damaged logs under testdata/torn")

// tornTime is the timestamp of the i-th record of the hand-made logs, fixed
// so that the golden files are byte for byte reproducible.
func tornTime(i int) time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(i) * time.Second)
}

func tornValue(i, n int) []byte {
	v := fmt.Appendf(nil, "golden record %02d|", i)
	for len(v) < n {
		v = append(v, byte('a'+(i+len(v))%26))
	}
	return v[:n]
}

// tornFrame is a frame found in a segment file.
type tornFrame struct {
	pos int64
	m   frame.Meta
}

// segmentFrames parses a segment's frames from the start until the first
// one that does not parse. It checks nothing else: it is for laying out
// damage in logs the test wrote itself.
func segmentFrames(t testing.TB, path string) []tornFrame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []tornFrame
	for pos := int64(0); pos < int64(len(data)); {
		m, err := frame.ParseMeta(data[pos:])
		if err != nil {
			break
		}
		out = append(out, tornFrame{pos, m})
		pos += m.Size()
	}
	return out
}

// copyTree copies the directory src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildTornLog writes a log with one partition and one frame per value
// into dir and closes it. It returns the partition directory.
func buildTornLog(t testing.TB, dir string, d Durability, cfg TopicConfig, values [][]byte) string {
	t.Helper()
	l, err := Open(dir, &Options{Durability: d, Backend: BackendPwrite})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Partitions = 1
	if err := l.CreateTopic("t", cfg); err != nil {
		t.Fatal(err)
	}
	p, _ := l.Producer("t", nil)
	for i, v := range values {
		pos, err := p.Send(context.Background(), Record{Key: fmt.Appendf(nil, "k%d", i), Value: v, Time: tornTime(i)})
		if err != nil || pos.Offset != int64(i) {
			t.Fatalf("Send %d: %+v, %v", i, pos, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "topics", "t", "0")
}

// checkPrefix checks that recs are the first records of a log built by
// buildTornLog with values.
func checkPrefix(t testing.TB, recs []Record, values [][]byte) {
	t.Helper()
	for i, r := range recs {
		if i >= len(values) {
			return
		}
		if r.Offset != int64(i) || string(r.Key) != fmt.Sprintf("k%d", i) || !bytes.Equal(r.Value, values[i]) || !r.Time.Equal(tornTime(i)) {
			t.Fatalf("record %d: offset %d key %q time %v, value %d bytes: not what was written", i, r.Offset, r.Key, r.Time, len(r.Value))
		}
	}
}

// TestTornTailEveryByte damages the last frame of a small log at every byte
// offset inside it, each case in a fresh copy: the file cut there, or the
// rest of the frame zeroed (a write that never reached the disk), or
// overwritten with garbage. Then a reader and a writer open it: every
// record before the damage is intact, the damaged frame is never delivered,
// the next record gets the next offset after the last intact one, and
// nothing panics. The same for a torn seal (a writer that died rolling).
func TestTornTailEveryByte(t *testing.T) {
	slowAlone(t)
	values := [][]byte{tornValue(0, 10), tornValue(1, 100), tornValue(2, 3), tornValue(3, 40), tornValue(4, 150)}
	pristine := t.TempDir()
	pdir := buildTornLog(t, pristine, Buffered, TopicConfig{}, values)
	seg := segmentPath(pdir, 0, logExt)
	frames := segmentFrames(t, seg)
	if len(frames) != len(values) {
		t.Fatalf("test setup: %d frames", len(frames))
	}
	tail := frames[len(frames)-1]
	pristineData, _ := os.ReadFile(seg)

	// Each damage returns the offset the next record must get: after the
	// tail frame if the damage left its bytes (padding aside) as they were,
	// else its base.
	outcome := func(t *testing.T, path string) int64 {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		end := tail.pos + int64(tail.m.Length)
		if int64(len(data)) >= end && bytes.Equal(data[tail.pos:end], pristineData[tail.pos:end]) {
			return tail.m.End()
		}
		return tail.m.Base
	}
	damages := []struct {
		name  string
		apply func(t *testing.T, path string, k int64)
	}{
		{"cut", func(t *testing.T, path string, k int64) {
			if err := os.Truncate(path, tail.pos+k); err != nil {
				t.Fatal(err)
			}
		}},
		{"zeroed", func(t *testing.T, path string, k int64) {
			writeAt(t, path, tail.pos+k, make([]byte, tail.m.Size()-k))
		}},
		{"garbage", func(t *testing.T, path string, k int64) {
			junk := bytes.Repeat([]byte{0x9E, 0x37, 0x79, 0xB9}, int(tail.m.Size()))
			if k == frame.OffState {
				junk[0] = frame.StateCommitted // garbage that looks committed
			}
			writeAt(t, path, tail.pos+k, junk[:tail.m.Size()-k])
		}},
	}
	for _, dm := range damages {
		t.Run(dm.name, func(t *testing.T) {
			for k := int64(0); k < tail.m.Size(); k++ {
				if testing.Short() && k > frame.HeaderSize && k%7 != 0 && k < int64(tail.m.Length)-8 {
					continue // -short: the header, the end, a sample between
				}
				tornCase(t, pristine, fmt.Sprintf("%s at byte %d of %d", dm.name, k, tail.m.Size()), values,
					func(t *testing.T, dir string) int64 {
						path := filepath.Join(dir, "topics", "t", "0", filepath.Base(seg))
						dm.apply(t, path, k)
						diedAt(t, filepath.Dir(path), 0, tail.pos, tail.m.Base)
						return outcome(t, path)
					})
				if t.Failed() {
					return
				}
			}
		})
	}
	if data, _ := os.ReadFile(seg); !bytes.Equal(data, pristineData) {
		t.Fatal("a case damaged the pristine copy")
	}

	// A writer that died rolling the segment: its seal torn, the next
	// segment not created yet.
	t.Run("seal", func(t *testing.T) {
		sealed := t.TempDir()
		big := make([][]byte, 0, 9)
		for i := range 9 {
			big = append(big, tornValue(i, 9000))
		}
		spdir := buildTornLog(t, sealed, Buffered, TopicConfig{SegmentBytes: minSegmentBytes}, big)
		bases, _ := listSegments(spdir)
		if len(bases) != 2 {
			t.Fatalf("test setup: segments %v", bases)
		}
		first := segmentPath(spdir, bases[0], logExt)
		sf := segmentFrames(t, first)
		seal := sf[len(sf)-1]
		if seal.m.Kind != frame.KindSeal || seal.m.Base != bases[1] {
			t.Fatalf("test setup: last frame of %s is %+v", first, seal.m)
		}
		// The writer died before it created segment two; its records go.
		for _, ext := range []string{logExt, indexExt, timeIndexExt} {
			os.Remove(segmentPath(spdir, bases[1], ext))
		}
		big = big[:bases[1]]
		for k := int64(0); k < seal.m.Size(); k++ {
			tornCase(t, sealed, fmt.Sprintf("seal cut at byte %d", k), big, func(t *testing.T, dir string) int64 {
				if err := os.Truncate(filepath.Join(dir, "topics", "t", "0", filepath.Base(first)), seal.pos+k); err != nil {
					t.Fatal(err)
				}
				diedAt(t, filepath.Join(dir, "topics", "t", "0"), bases[0], seal.pos, seal.m.Base)
				return seal.m.Base
			})
			if t.Failed() {
				return
			}
		}
	})
}

// tornCase copies the log in pristine, damages the copy, and checks a
// reader and a writer on it: the reader delivers exactly the records before
// the damage, the writer's record gets offset next, and afterwards the log
// holds those records and the new one.
func tornCase(t *testing.T, pristine, name string, values [][]byte, damage func(t *testing.T, dir string) int64) {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, pristine, dir)
	next := damage(t, dir)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", name, r)
		}
	}()
	l, err := Open(dir, testOptions(t, &Options{Durability: Buffered}))
	if err != nil {
		t.Fatalf("%s: Open: %v", name, err)
	}
	defer l.Close()
	before := readAvailable(t, l, "t")
	checkPrefix(t, before, values)
	if int64(len(before)) != next {
		t.Errorf("%s: a reader gets %d records before the repair, want %d", name, len(before), next)
	}
	p, _ := l.Producer("t", nil)
	extra := []byte("written after the damage")
	pos, err := p.Send(context.Background(), Record{Value: extra, Time: tornTime(99)})
	if err != nil {
		t.Errorf("%s: Send: %v", name, err)
		return
	}
	if pos.Offset != next {
		t.Errorf("%s: new record at offset %d, want %d", name, pos.Offset, next)
	}
	after := readAvailable(t, l, "t")
	checkPrefix(t, after[:min(len(after), int(next))], values)
	if int64(len(after)) != next+1 || !bytes.Equal(after[len(after)-1].Value, extra) {
		t.Errorf("%s: after the append the log reads %d records, want %d ending in the new one", name, len(after), next+1)
	}
	if err := l.Close(); err != nil {
		t.Errorf("%s: Close: %v", name, err)
	}
	if got := verifyPartition(t, filepath.Join(dir, "topics", "t", "0")); got != next+1 {
		t.Errorf("%s: verify counts %d records, want %d", name, got, next+1)
	}
}

// Golden damaged logs. Each directory testdata/torn/<case>/ holds log/, a
// log directory as runnel wrote it and then damaged by hand, and want.json,
// what the test must find. go test -run TestTornGolden -update-torn
// rewrites them from the builders below.

type tornWant struct {
	Doc      string `json:"doc"`
	Segment  string `json:"segment"`  // the damaged segment, in topics/t/0
	Size     int64  `json:"size"`     // its size as damaged
	Records  int64  `json:"records"`  // records written before the damage was done
	Intact   int64  `json:"intact"`   // records before the damage
	CutPos   int64  `json:"cut_pos"`  // where the first append cuts the segment; -1: no cut
	Corrupt  int64  `json:"corrupt"`  // position of damage inside committed data; -1: none
	Refusing bool   `json:"refusing"` // appends must fail with ErrCorrupt (the writer's scan covers the damage)

	// Power loss: partition.meta carries another boot id and this
	// durable point, and the first append runs recovery.
	Reboot *tornReboot `json:"reboot,omitempty"`
}

type tornReboot struct {
	FromPos        int64  `json:"from_pos"`
	FramesVerified int    `json:"frames_verified"`
	CutPos         int64  `json:"cut_pos"`
	CutBytes       int64  `json:"cut_bytes"`
	NextOffset     int64  `json:"next_offset"`
	LostFrom       int64  `json:"lost_from"` // committed offsets the recovery reports gone
	LostTo         int64  `json:"lost_to"`
	LostReason     string `json:"lost_reason"`
}

// fakeBootID is a boot id that is not this machine's: a log carrying it
// was last written before a reboot.
var fakeBootID = [16]byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}

// writeMeta writes a partition.meta whose synced checkpoint and durable
// point both say: synced up to pos of segment base, where offset next
// starts, in the boot boot.
func writeMeta(t testing.TB, pdir string, boot [16]byte, base, pos, next int64) {
	t.Helper()
	b := make([]byte, metaSize)
	copy(b[metaBootOff:], boot[:])
	binary.LittleEndian.PutUint64(b[metaDurBaseOff:], uint64(base))
	binary.LittleEndian.PutUint64(b[metaDurPosOff:], uint64(pos))
	binary.LittleEndian.PutUint64(b[metaDurNextOff:], uint64(next))
	binary.LittleEndian.PutUint64(b[metaDurSumOff:], xxhash.Sum64(b[metaBootOff:metaDurSumOff]))
	m := privateMeta("", b)
	m.readOnly = false
	if err := m.setCheckpointBytes(checkpoint{boot: boot, base: base, pos: pos, next: next}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, metaFileName), m.mem, 0o644); err != nil {
		t.Fatal(err)
	}
}

// diedAt makes a partition look as a writer that died while appending the
// frame at pos of segment base leaves it: partition.meta says synced up
// to pos (offset next there), in this boot, and no index entry points at
// or past pos. Damage from pos on is then what such a writer left, not
// committed data gone.
func diedAt(t testing.TB, pdir string, base, pos, next int64) {
	t.Helper()
	if err := trimIndexFiles(pdir, base, pos); err != nil {
		t.Fatal(err)
	}
	writeMeta(t, pdir, currentBootID, base, pos, next)
}

// flipByte flips the bits of one byte of a file.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, off, []byte{^data[off]})
}

func smallValues(n int) [][]byte {
	var vs [][]byte
	for i := range n {
		vs = append(vs, tornValue(i, 30+i*7))
	}
	return vs
}

var tornGoldens = []struct {
	name  string
	build func(t testing.TB, dir string) tornWant
}{
	{"commit-byte", func(t testing.TB, dir string) tornWant {
		pdir := buildTornLog(t, dir, Durable, TopicConfig{}, smallValues(8))
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		tail := f[len(f)-1]
		writeAt(t, seg, tail.pos+frame.OffState, []byte{frame.StateWritten})
		return tornWant{Doc: "the tail frame is whole but its commit byte was never set: a writer died between the frame and the commit; the next writer cuts it",
			Records: 8, Intact: 7, CutPos: tail.pos, Corrupt: -1}
	}},
	{"garbage-header", func(t testing.TB, dir string) tornWant {
		pdir := buildTornLog(t, dir, Durable, TopicConfig{}, smallValues(8))
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		tail := f[len(f)-1]
		writeAt(t, seg, tail.pos, bytes.Repeat([]byte{0xA5, 0x5A, 0xC3}, frame.HeaderSize/3))
		return tornWant{Doc: "garbage over the tail frame's header: nothing after it, so it is a torn tail and the next writer cuts it",
			Records: 8, Intact: 7, CutPos: tail.pos, Corrupt: -1}
	}},
	{"wrong-base", func(t testing.TB, dir string) tornWant {
		values := smallValues(8)
		pdir := buildTornLog(t, dir, Durable, TopicConfig{}, values)
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		tail := f[len(f)-1]
		// A whole, committed, checksummed frame of the right records, but
		// claiming offsets three past where the log is: a stale frame.
		var fb frame.Builder
		fb.Add(tornTime(7).UnixNano(), []byte("k7"), values[7], nil)
		data := fb.Finish(tail.m.Base + 3)
		data[frame.OffState] = frame.StateCommitted
		writeAt(t, seg, tail.pos, data)
		return tornWant{Doc: "the tail frame is committed and checksummed but its base offset does not follow on: it is never delivered, and the next writer cuts it",
			Records: 8, Intact: 7, CutPos: tail.pos, Corrupt: -1}
	}},
	{"zeroed-page", func(t testing.TB, dir string) tornWant {
		values := smallValues(6)
		values[2] = tornValue(2, 20_000)
		// No index entry after the damage: the writer's tail scan starts
		// before it.
		pdir := buildTornLog(t, dir, Durable, TopicConfig{IndexIntervalBytes: 1 << 20}, values)
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		if f[2].pos > 4096 || f[3].pos < 8192 {
			t.Fatalf("layout: big frame at %d..%d", f[2].pos, f[3].pos)
		}
		writeAt(t, seg, 4096, make([]byte, 4096))
		return tornWant{Doc: "a 4 KiB page of zeros in the middle of a committed frame with committed frames after it: damage, not a torn tail; reported, never cut",
			Records: 6, Intact: 2, CutPos: -1, Corrupt: f[2].pos, Refusing: true}
	}},
	{"zeroed-page-indexed", func(t testing.TB, dir string) tornWant {
		values := smallValues(6)
		values[2] = tornValue(2, 20_000)
		pdir := buildTornLog(t, dir, Durable, TopicConfig{}, values)
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		writeAt(t, seg, 4096, make([]byte, 4096))
		return tornWant{Doc: "as zeroed-page, but the index has an entry past the damage, so the writer's tail scan (which starts at the last index entry) does not meet it: readers report it, nothing is cut",
			Records: 6, Intact: 2, CutPos: -1, Corrupt: f[2].pos}
	}},
	{"reboot", func(t testing.TB, dir string) tornWant {
		// An index entry for every frame, so that the writer's scan after
		// recovery starts at the last frame recovery kept.
		pdir := buildTornLog(t, dir, Durable, TopicConfig{IndexIntervalBytes: 64}, smallValues(10))
		seg := segmentPath(pdir, 0, logExt)
		f := segmentFrames(t, seg)
		size := fileSize(t, seg)
		// Durable up to frame 5. Power lost: frame 7 came back damaged,
		// 8 and 9 whole. Frame 2, before the durable point, went bad
		// too, which recovery does not look at.
		writeMeta(t, pdir, fakeBootID, 0, f[5].pos, f[5].m.Base)
		flipByte(t, seg, f[7].pos+frame.HeaderSize+3)
		flipByte(t, seg, f[2].pos+frame.HeaderSize+3)
		return tornWant{Doc: "power loss: another boot id in partition.meta, durable point at frame 5, frame 7 damaged, 8 and 9 whole, frame 2 damaged before the durable point; recovery verifies 5 and 6 and cuts from 7, frame 2's damage stays and is reported to readers",
			Records: 10, Intact: 2, CutPos: f[7].pos, Corrupt: f[2].pos,
			Reboot: &tornReboot{FromPos: f[5].pos, FramesVerified: 2, CutPos: f[7].pos, CutBytes: size - f[7].pos, NextOffset: f[7].m.Base,
				// Frames 7 to 9 were committed (the index says so, and 8
				// and 9 are whole), but never synced: Durable would not
				// have acknowledged them, Buffered did; either way the
				// report names them.
				LostFrom: f[7].m.Base, LostTo: f[9].m.End(), LostReason: "an index entry written before the restart"}}
	}},
}

func tornGoldenDir(name string) string { return filepath.Join("testdata", "torn", name) }

// TestTornGolden checks every golden damaged log (and rewrites them with
// -update-torn).
func TestTornGolden(t *testing.T) {
	if *updateTorn {
		for _, g := range tornGoldens {
			dir := tornGoldenDir(g.name)
			os.RemoveAll(dir)
			logDir := filepath.Join(dir, "log")
			want := g.build(t, logDir)
			os.Remove(filepath.Join(logDir, "groups")) // empty; Open makes it
			if want.Reboot == nil {
				os.Remove(filepath.Join(logDir, "topics", "t", "0", metaFileName))
			}
			want.Segment = filepath.Base(segmentPath("", 0, logExt))
			want.Size = fileSize(t, filepath.Join(logDir, "topics", "t", "0", want.Segment))
			data, _ := json.MarshalIndent(want, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "want.json"), append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range tornGoldens {
		t.Run(g.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tornGoldenDir(g.name), "want.json"))
			if err != nil {
				t.Fatalf("%v (go test -run TestTornGolden -update-torn writes it)", err)
			}
			var want tornWant
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			checkTornGolden(t, g.name, want)
		})
	}
}

func checkTornGolden(t *testing.T, name string, want tornWant) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(tornGoldenDir(name), "log"), dir)
	pdir := filepath.Join(dir, "topics", "t", "0")
	seg := filepath.Join(pdir, want.Segment)
	if size := fileSize(t, seg); size != want.Size {
		t.Fatalf("golden segment is %d bytes, want.json says %d", size, want.Size)
	}
	values := smallValues(int(want.Records))
	if strings.HasPrefix(name, "zeroed-page") {
		values[2] = tornValue(2, 20_000)
	}
	checkCorrupt := func(what string, err error, pos int64) {
		t.Helper()
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a *CorruptError", what, err)
		}
		if ce.Path != seg || ce.Pos != pos {
			t.Errorf("%s: CorruptError at %s byte %d, want %s byte %d", what, ce.Path, ce.Pos, seg, pos)
		}
	}

	switch {
	case want.Reboot != nil:
	case want.CutPos >= 0:
		// No reboot since a writer died appending the frame at CutPos:
		// partition.meta says this boot and what it had synced, as that
		// writer left it. (Without one: TestTornMissingMeta.)
		diedAt(t, pdir, 0, want.CutPos, want.Intact)
	default:
		// Damage inside data the last writer had synced.
		writeMeta(t, pdir, currentBootID, 0, want.Size, want.Records)
	}
	l := openTest(t, dir, nil)
	// A read before any writer ran: the records before the damage, then
	// the end of the data (a dead writer's leftovers, which the reader
	// may cut) or the damage reported, never a wait.
	before, err := readAvailableErr(t, l, "t")
	checkPrefix(t, before, values)
	if int64(len(before)) != want.Intact {
		t.Errorf("reader gets %d records, want %d", len(before), want.Intact)
	}
	if want.Corrupt >= 0 {
		checkCorrupt("TryPoll", err, want.Corrupt)
	} else if err != nil {
		t.Errorf("TryPoll at a torn tail: %v", err)
	}

	p, _ := l.Producer("t", nil)
	extra := Record{Value: []byte("after the damage"), Time: tornTime(99)}
	pos, err := p.Send(context.Background(), extra)
	st := l.Stats()
	switch {
	case want.Refusing:
		checkCorrupt("Send", err, want.Corrupt)
		_, err := p.Send(context.Background(), extra)
		checkCorrupt("second Send", err, want.Corrupt)
		if size := fileSize(t, seg); size != want.Size {
			t.Errorf("segment is %d bytes after the refused appends, was %d: data after the damage was cut", size, want.Size)
		}
		if st.Repairs != 0 || st.RecordsWritten != 0 {
			t.Errorf("Stats %+v: want no repair, no record written", st)
		}
	case want.CutPos >= 0:
		next := want.Intact
		if want.Reboot != nil {
			next = want.Reboot.NextOffset
		}
		if err != nil || pos.Offset != next {
			t.Fatalf("Send: %+v, %v; want offset %d", pos, err, next)
		}
		if st.Repairs != 1 || st.BytesRepaired != want.Size-want.CutPos {
			t.Errorf("Stats: %d repairs, %d bytes cut; want 1, %d", st.Repairs, st.BytesRepaired, want.Size-want.CutPos)
		}
		// The new frame sits where the cut was.
		f := segmentFrames(t, seg)
		if i := slices.IndexFunc(f, func(f tornFrame) bool { return f.pos == want.CutPos }); i < 0 || i != len(f)-1 || f[i].m.Base != next {
			t.Errorf("after the repair the segment's frames are %+v; want the new one, offset %d, last at byte %d", f, next, want.CutPos)
		}
	default:
		// Damage the writer's scan does not reach: appending is not
		// refused, and must not cut anything.
		if err != nil {
			checkCorrupt("Send", err, want.Corrupt)
			t.Logf("Send refused: %v", err)
		} else if pos.Offset != want.Records {
			t.Errorf("Send at offset %d, want %d (the end of the log)", pos.Offset, want.Records)
		}
		if st.Repairs != 0 {
			t.Errorf("Stats %+v: want no repair", st)
		}
		if size := fileSize(t, seg); size < want.Size {
			t.Errorf("segment shrank from %d to %d bytes", want.Size, size)
		}
	}

	if r := want.Reboot; r != nil {
		reps := l.Recoveries()
		wantRep := []RecoveryReport{{
			Partition: pdir, Reboot: true, FromSegment: 0, FromPos: r.FromPos, FramesVerified: r.FramesVerified,
			CutFile: seg, CutPos: r.CutPos, CutBytes: r.CutBytes, NextOffset: r.NextOffset,
			LostFrom: r.LostFrom, LostTo: r.LostTo, LostReason: r.LostReason,
		}}
		if diff := cmp.Diff(wantRep, reps); diff != "" {
			t.Errorf("Recoveries (-want +got):\n%s", diff)
		}
		m, err := openMeta(pdir)
		if err != nil {
			t.Fatal(err)
		}
		boot, _, _, _, _ := m.durablePoint()
		m.close()
		if boot != currentBootID {
			t.Errorf("after recovery partition.meta holds boot id %x, want this boot's %x", boot, currentBootID)
		}
		// A second writer of this boot does not recover again.
		l2 := openTest(t, dir, nil)
		p2, _ := l2.Producer("t", nil)
		if pos, err := p2.Send(context.Background(), Record{Value: []byte("again")}); err != nil || pos.Offset != r.NextOffset+1 {
			t.Errorf("second writer: %+v, %v; want offset %d", pos, err, r.NextOffset+1)
		}
		if got := l2.Recoveries(); len(got) != 0 {
			t.Errorf("a second writer after the same reboot recovered again: %+v", got)
		}
	}

	// A consumer from the start: the records before the damage, then the
	// damage reported (Poll's repair path), never a wait for ever.
	if want.Corrupt >= 0 {
		c, err := l.Consumer("t", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var got []Record
		for {
			recs, err := c.Poll(ctx)
			for _, r := range recs {
				got = append(got, cloneRecord(r))
			}
			if err != nil {
				checkCorrupt("Poll", err, want.Corrupt)
				break
			}
		}
		checkPrefix(t, got, values)
		if int64(len(got)) != want.Intact {
			t.Errorf("Poll delivered %d records before the damage, want %d", len(got), want.Intact)
		}
		keep := want.Size
		if want.CutPos >= 0 {
			keep = want.CutPos
		}
		if size := fileSize(t, seg); size < keep {
			t.Errorf("segment shrank to %d bytes, want at least %d", size, keep)
		}
	} else {
		after := readAvailable(t, l, "t")
		checkPrefix(t, after[:min(len(after), int(want.Intact))], values)
		if int64(len(after)) != want.Intact+1 || !bytes.Equal(after[len(after)-1].Value, extra.Value) {
			t.Errorf("after the repair the log reads %d records, want %d ending in the new one", len(after), want.Intact+1)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		verifyPartition(t, pdir)
	}
}

// TestPowerLossRecovery simulates reboots on logs built at run time: the
// boot id in partition.meta changed, frames after the durable point
// damaged. The first append recovers: it verifies from the durable point,
// cuts at the first invalid frame of the last segment (even with whole
// frames after it: they were never durable), and reports it.
func TestPowerLossRecovery(t *testing.T) {
	var values [][]byte
	for i := range 20 {
		values = append(values, tornValue(i, 9000))
	}
	pristine := t.TempDir()
	pdir := buildTornLog(t, pristine, Durable, TopicConfig{SegmentBytes: minSegmentBytes, IndexIntervalBytes: 64}, values)
	bases, _ := listSegments(pdir)
	if len(bases) < 3 {
		t.Fatalf("test setup: segments %v", bases)
	}
	framesOf := func(base int64) []tornFrame { return segmentFrames(t, segmentPath(pdir, base, logExt)) }
	seg0 := framesOf(bases[0])
	last := framesOf(bases[len(bases)-1])

	tests := []struct {
		name    string
		damage  func(t *testing.T, pdir string) // after writeMeta's durable point
		durable [3]int64                        // base, pos, next
		want    RecoveryReport                  // Partition and CutFile filled in below
		cutSeg  int64
	}{
		{
			// (Damage in a sealed segment is not the power loss's: its
			// writer synced it before creating the next one. See
			// TestRecoveryKeepsSealedSegmentsAfterReboot.)
			name:    "damage in the last segment cuts the whole frames after it",
			durable: [3]int64{bases[len(bases)-1], last[0].pos, last[0].m.Base},
			damage: func(t *testing.T, pdir string) {
				flipByte(t, segmentPath(pdir, bases[len(bases)-1], logExt), last[1].pos+frame.HeaderSize+100)
			},
			want: RecoveryReport{Reboot: true, FromSegment: bases[len(bases)-1], FromPos: last[0].pos, FramesVerified: 1, CutPos: last[1].pos,
				NextOffset: last[1].m.Base,
				// The index says records up to the last were committed:
				// not durable, but acknowledged in Buffered mode, so
				// reported.
				LostFrom: last[1].m.Base, LostTo: int64(len(values)), LostReason: "an index entry written before the restart"},
			cutSeg: bases[len(bases)-1],
		},
		{
			name:    "torn tail of the last segment",
			durable: [3]int64{bases[len(bases)-1], last[0].pos, last[0].m.Base},
			damage: func(t *testing.T, pdir string) {
				os.Truncate(segmentPath(pdir, bases[len(bases)-1], logExt), last[len(last)-1].pos+500)
			},
			want: RecoveryReport{Reboot: true, FromSegment: bases[len(bases)-1], FromPos: last[0].pos, FramesVerified: len(last) - 1,
				CutPos: last[len(last)-1].pos, NextOffset: last[len(last)-1].m.Base,
				LostFrom: last[len(last)-1].m.Base, LostTo: int64(len(values)), LostReason: "an index entry written before the restart"},
			cutSeg: bases[len(bases)-1],
		},
		{
			name:    "nothing damaged",
			durable: [3]int64{bases[0], seg0[1].pos, seg0[1].m.Base},
			damage:  func(t *testing.T, pdir string) {},
			want: RecoveryReport{Reboot: true, FromSegment: bases[0], FromPos: seg0[1].pos, FramesVerified: len(values) - 1, // every records frame from 1 on
				CutPos: -1, NextOffset: int64(len(values))},
			cutSeg: -1,
		},
		{
			// The durable point's fields are separate stores into a shared
			// mapping that is never synced: a power loss can bring back
			// pos from one update, next and the checksum from the one
			// before. Every frame is whole; recovery must cut none.
			name:    "durable point torn between pos and next",
			durable: [3]int64{bases[0], seg0[2].pos, seg0[2].m.Base},
			damage: func(t *testing.T, pdir string) {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], uint64(seg0[3].pos))
				writeAt(t, filepath.Join(pdir, metaFileName), metaDurPosOff, b[:])
			},
			cutSeg: -1,
		},
		{
			// Checksummed, but pos and next do not agree with the log.
			name:    "durable point that disagrees with the log",
			durable: [3]int64{bases[0], seg0[3].pos, seg0[2].m.Base},
			damage:  func(t *testing.T, pdir string) {},
			cutSeg:  -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, pristine, dir)
			pdir := filepath.Join(dir, "topics", "t", "0")
			writeMeta(t, pdir, fakeBootID, tt.durable[0], tt.durable[1], tt.durable[2])
			tt.damage(t, pdir)
			var sizeBefore int64
			if tt.cutSeg >= 0 {
				sizeBefore = fileSize(t, segmentPath(pdir, tt.cutSeg, logExt))
			}
			l := openTest(t, dir, nil)
			if got := l.Recoveries(); len(got) != 0 {
				t.Fatalf("Open recovered: %+v", got)
			}
			p, _ := l.Producer("t", nil)
			pos, err := p.Send(context.Background(), Record{Value: []byte("after the reboot")})
			if err != nil {
				t.Fatalf("first append after the reboot: %v", err)
			}
			reps := l.Recoveries()
			if tt.want.NextOffset == 0 {
				// An unusable durable point: only the outcome is fixed,
				// nothing cut (recovery may decline to run at all).
				if len(reps) > 1 || len(reps) == 1 && (reps[0].CutPos >= 0 || len(reps[0].RemovedSegments) > 0) || pos.Offset != int64(len(values)) {
					t.Errorf("recovery cut whole frames: %+v; append at %d, want %d", reps, pos.Offset, len(values))
				}
			} else {
				if len(reps) != 1 {
					t.Fatalf("Recoveries: %+v, want one report", reps)
				}
				want := tt.want
				want.Partition = pdir
				if tt.cutSeg >= 0 && want.CutPos >= 0 {
					want.CutFile = segmentPath(pdir, tt.cutSeg, logExt)
					want.CutBytes = sizeBefore - want.CutPos
				}
				if diff := cmp.Diff(want, reps[0], cmp.Comparer(func(a, b []int64) bool { return slices.Equal(a, b) })); diff != "" {
					t.Errorf("RecoveryReport (-want +got):\n%s", diff)
				}
				if pos.Offset != want.NextOffset {
					t.Errorf("first append at offset %d, want %d", pos.Offset, want.NextOffset)
				}
				if st := l.Stats(); st.RecordsLost != want.LostTo-want.LostFrom {
					t.Errorf("Stats.RecordsLost %d, want %d", st.RecordsLost, want.LostTo-want.LostFrom)
				}
				for _, b := range want.RemovedSegments {
					if _, err := os.Stat(segmentPath(pdir, b, logExt)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("segment %d still there after recovery removed it: %v", b, err)
					}
				}
			}
			got := readAvailable(t, l, "t")
			checkPrefix(t, got[:len(got)-1], values)
			if got[len(got)-1].Offset != pos.Offset {
				t.Errorf("last record at %d, the append was acknowledged at %d", got[len(got)-1].Offset, pos.Offset)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			verifyPartition(t, pdir)
		})
	}
}

// TestTornMissingMeta opens the zeroed-page golden log without its
// partition.meta, as a power loss can leave a partition whose meta file was
// never synced: no boot id, no durable point, nothing that says which bytes
// were unsynced. Whatever the first writer makes of that (refuse with
// ErrCorrupt, as the writer's tail repair does, or recover as after a
// reboot and cut at the damage), committed records must never go without
// an exact report.
func TestTornMissingMeta(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(tornGoldenDir("zeroed-page"), "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want tornWant
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyTree(t, filepath.Join(tornGoldenDir("zeroed-page"), "log"), dir)
	seg := filepath.Join(dir, "topics", "t", "0", want.Segment)
	l := openTest(t, dir, nil)
	p, _ := l.Producer("t", nil)
	pos, err := p.Send(context.Background(), Record{Value: []byte("after")})
	size := fileSize(t, seg)
	reps := l.Recoveries()
	if err != nil {
		// Refusing is the other honest answer: nothing may be cut then.
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Pos != want.Corrupt || size != want.Size {
			t.Fatalf("Send: %v; segment %d bytes (was %d)", err, size, want.Size)
		}
		return
	}
	if pos.Offset == want.Records {
		return // nothing lost
	}
	if pos.Offset != want.Intact {
		t.Fatalf("Send at offset %d: want %d (nothing cut) or %d (cut at the damage)", pos.Offset, want.Records, want.Intact)
	}
	lost := want.Records - want.Intact
	if len(reps) != 1 || reps[0].CutFile != seg || reps[0].CutPos != want.Corrupt || reps[0].CutBytes != want.Size-want.Corrupt {
		t.Fatalf("%d committed records were cut, but Recoveries reports %+v; want the cut at byte %d of %s, %d bytes",
			lost, reps, want.Corrupt, seg, want.Size-want.Corrupt)
	}
	if st := l.Stats(); st.Repairs != 1 || st.BytesRepaired != want.Size-want.Corrupt {
		t.Errorf("Stats %+v: the cut is not counted", st)
	}
	t.Logf("no partition.meta: recovery cut %d committed records (%d bytes) after damage at byte %d, and reported it", lost, reps[0].CutBytes, want.Corrupt)
}
