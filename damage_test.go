package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// The damage matrix: bit flips, zeroed pages and truncations in every kind
// of file runnel keeps (.log, .index, .timeindex, partition.meta,
// topic.json, the group offsets file), each in a fresh copy of one log.
// For each: nothing panics; a reader, by TryPoll and by Poll with a
// deadline, delivers only records exactly as they were written, and where
// it cannot deliver them all it returns an error naming the damage, never
// waits; Verify reports any damage that cost records with the file and a
// position; and an append ends, one way or the other.

const dmRecords = 1200

// dmLog builds the log every case damages: topic "t", one partition of
// several sealed segments and an active one, indexed densely, holding
// mpValue records, and group "g" with committed offsets.
func dmLog(t *testing.T, records int) (dir string, segs []diskSeg) {
	t.Helper()
	dir = t.TempDir()
	l, err := Open(dir, testOptions(t, &Options{Durability: Buffered, MaxBatchBytes: 2 << 10, RetentionInterval: -1}))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 1024})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	for i := range records {
		p.SendAsync(Record{Value: mpValue(0, 0, int64(i), i%300), Time: testEpoch.Add(time.Duration(i) * time.Millisecond)}, nil)
		if i%5 == 0 {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", AtOffset(int64(records/3)), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs = parsePartition(t, filepath.Join(dir, "topics", "t", "0"), 0)
	if len(segs) < 4 {
		t.Fatalf("test setup: %d segments", len(segs))
	}
	return dir, segs
}

// dmCase is one damage: to file (relative to the log directory).
type dmCase struct {
	name  string
	file  string
	apply func(t *testing.T, path string)
	// costly says the damage changes bytes readers need: Verify must
	// report it, with the file and a position.
	costly bool
}

func flipAt(off int64) func(*testing.T, string) {
	return func(t *testing.T, path string) { flipByte(t, path, off) }
}

func zeroPageAt(off int64) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		size := fileSize(t, path)
		writeAt(t, path, off, make([]byte, min(4096, size-off)))
	}
}

func truncateAt(size int64) func(*testing.T, string) {
	return func(t *testing.T, path string) { truncateFile(t, path, size) }
}

// dmCases lists the damages, at positions that matter and at random ones.
func dmCases(t *testing.T, dir string, segs []diskSeg, rng *rand.Rand) []dmCase {
	rel := func(path string) string {
		r, _ := filepath.Rel(dir, path)
		return r
	}
	var cases []dmCase
	add := func(name, file string, apply func(*testing.T, string), costly bool) {
		cases = append(cases, dmCase{name, file, apply, costly})
	}
	for _, si := range []int{0, len(segs) / 2, len(segs) - 1} {
		s := segs[si]
		log := rel(s.Path)
		mid := s.Frames[len(s.Frames)/2]
		last := s.Frames[len(s.Frames)-1]
		for _, f := range []struct {
			what string
			off  int64
		}{
			{"length", mid.Pos}, {"state", mid.Pos + frame.OffState}, {"checksum", mid.Pos + 9},
			{"base", mid.Pos + 17}, {"body", mid.Pos + frame.HeaderSize + 2}, {"last frame", last.Pos + 30},
			{"random", rng.Int64N(s.Size)},
		} {
			add(fmt.Sprintf("segment %d: flip %s", si, f.what), log, flipAt(f.off), f.what != "random")
		}
		for _, page := range []int64{0, s.Size / 2 &^ 4095, (s.Size - 1) &^ 4095} {
			add(fmt.Sprintf("segment %d: zero page at %d", si, page), log, zeroPageAt(page), true)
		}
		for _, size := range []int64{0, mid.Pos, mid.Pos + 30} {
			add(fmt.Sprintf("segment %d: cut at %d", si, size), log, truncateAt(size), true)
		}
		// Perhaps only padding: reported if it cost a record.
		add(fmt.Sprintf("segment %d: last byte cut", si), log, truncateAt(s.Size-1), false)
		for _, ext := range []string{indexExt, timeIndexExt} {
			idx := strings.TrimSuffix(log, logExt) + ext
			n := fileSize(t, filepath.Join(dir, idx))
			add(fmt.Sprintf("segment %d: %s flip", si, ext), idx, flipAt(rng.Int64N(n)), false)
			add(fmt.Sprintf("segment %d: %s zero page", si, ext), idx, zeroPageAt(0), false)
			add(fmt.Sprintf("segment %d: %s cut", si, ext), idx, truncateAt(n/2+1), false)
		}
	}
	meta := filepath.Join("topics", "t", "0", metaFileName)
	for _, off := range []int64{0, metaSeqOff, metaBootOff + 3, metaDurNextOff, metaCkptOff + 2, metaCkptNextOff, metaCkptSumOff, rng.Int64N(metaSize)} {
		add(fmt.Sprintf("partition.meta: flip %d", off), meta, flipAt(off), false)
	}
	add("partition.meta: zeroed", meta, zeroPageAt(0), false)
	add("partition.meta: cut", meta, truncateAt(100), false)
	add("partition.meta: empty", meta, truncateAt(0), false)
	topic := filepath.Join("topics", "t", topicFileName)
	tsize := fileSize(t, filepath.Join(dir, topic))
	for _, off := range []int64{0, 1, tsize / 2, tsize - 2, rng.Int64N(tsize)} {
		add(fmt.Sprintf("topic.json: flip %d", off), topic, flipAt(off), false)
	}
	add("topic.json: cut", topic, truncateAt(tsize/2), false)
	add("topic.json: zeroed", topic, zeroPageAt(0), false)
	offs, _ := filepath.Rel(dir, offsetsPath(dir, "g", "t"))
	for _, off := range []int64{8, 60, blockPos(0) + 9, blockPos(0) + 49, blockPos(0) + 90, rng.Int64N(blockPos(1))} {
		add(fmt.Sprintf("offsets: flip %d", off), offs, flipAt(off), false)
	}
	add("offsets: zeroed block", offs, zeroPageAt(blockPos(0)&^4095), false)
	add("offsets: cut", offs, truncateAt(blockPos(0)+10), false)
	return cases
}

func TestDamageMatrix(t *testing.T) {
	slowAlone(t)
	pristine, segs := dmLog(t, dmRecords)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	for _, dc := range dmCases(t, pristine, segs, rng) {
		t.Run(dc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			dir := t.TempDir()
			copyTree(t, pristine, dir)
			path := filepath.Join(dir, dc.file)
			dc.apply(t, path)
			checkDamaged(t, dir, path, dc)
		})
	}
}

// checkDamaged runs the readers, Verify and a writer on a damaged log.
func checkDamaged(t *testing.T, dir, path string, dc dmCase) {
	l, err := Open(dir, testOptions(t, &Options{RetentionInterval: -1}))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	rep, verr := l.Verify(context.Background(), "", nil)
	reported := func() bool {
		for _, p := range rep.Problems {
			if p.Path == path && (p.Pos >= 0 || p.Kind == ProblemIndex || p.Kind == ProblemMeta || p.Kind == ProblemCorrupt) {
				return true
			}
		}
		return false
	}
	if verr != nil {
		var ce *CorruptError
		if !errors.As(verr, &ce) && !errors.Is(verr, ErrTopicNotFound) {
			t.Errorf("Verify: %v", verr)
		}
	}

	// TryPoll: records exactly as written, then the end or an error.
	recs, rerr := dmRead(t, l, func(c *Consumer) ([]Record, error) { return c.TryPoll() })
	t.Logf("%d records, then %v; Verify: %v", recs, rerr, rep.Problems)
	if rerr != nil && !errors.Is(rerr, ErrCorrupt) && !errors.Is(rerr, ErrTopicNotFound) {
		t.Errorf("TryPoll: %v, want a *CorruptError", rerr)
	}
	var ce *CorruptError
	if errors.As(rerr, &ce) && (ce.Path == "" || ce.Pos < -1) {
		t.Errorf("TryPoll: %v: no file or position", rerr)
	}
	if recs < dmRecords && rerr == nil {
		t.Errorf("TryPoll delivered %d of %d records and then nothing: a reader would wait at damage", recs, dmRecords)
	}
	if recs < dmRecords && rerr != nil {
		// Poll with a deadline stops the same way, at once.
		start := time.Now()
		n, perr := dmRead(t, l, func(c *Consumer) ([]Record, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return c.Poll(ctx)
		})
		if perr == nil || errors.Is(perr, context.DeadlineExceeded) || n != recs {
			t.Errorf("Poll after %d records (TryPoll: %d): %v after %v, want TryPoll's error", n, recs, perr, time.Since(start))
		}
	}
	if (recs < dmRecords || dc.costly) && !reported() {
		t.Errorf("%d of %d records readable, and Verify does not report %s: %v", recs, dmRecords, path, rep.Problems)
	}
	for _, p := range rep.Problems {
		if p.Path == "" || p.Detail == "" {
			t.Errorf("problem without a file or words: %#v", p)
		}
	}

	// A writer: an append ends (succeeds, or says why not).
	if rerr == nil || !errors.Is(rerr, ErrTopicNotFound) {
		if p, err := l.Producer("t", nil); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := p.Send(ctx, Record{Value: []byte("after")})
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Send after the damage did not end")
			}
		}
	}
	// A group member: reads, or says why not.
	if strings.HasSuffix(path, offsetsExt) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
		if err == nil {
			_, err = c.Poll(ctx)
			c.Close()
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("group member on a damaged offsets file: %v", err)
		}
	}
}

// dmRead reads partition 0 of "t" from the start with poll until it
// returns no records or an error; every record must be the one written at
// its offset. It returns how many it read.
func dmRead(t *testing.T, l *Log, poll func(*Consumer) ([]Record, error)) (int, error) {
	c, err := l.Consumer("t", nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	for {
		recs, err := poll(c)
		for _, r := range recs {
			v, perr := mpParse(r.Value)
			if perr != nil || v.Seq != r.Offset || r.Offset != int64(n) || !r.Time.Equal(testEpoch.Add(time.Duration(r.Offset)*time.Millisecond)) {
				t.Fatalf("record %d delivered as offset %d, %q at %v: not what was written (%v)", n, r.Offset, r.Value, r.Time, perr)
			}
			n++
		}
		if err != nil || len(recs) == 0 {
			return n, err
		}
	}
}
