package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// retBatch keeps frames small, so that segments of 64 KiB hold many.
const retBatch = 8 << 10

// retProduce appends n records of size bytes to partition 0 of topic,
// record i with value payload(i+first) and timestamp at(i).
func retProduce(t testing.TB, l *Log, topic string, first, n, size int, at func(i int) time.Time) {
	t.Helper()
	p, err := l.Producer(topic, &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	for i := range n {
		r := Record{Value: payload(first+i, size)}
		if at != nil {
			r.Time = at(first + i)
		}
		p.SendAsync(r, func(_ Position, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("send: %v", err)
	default:
	}
}

// retBases lists the segment bases of partition 0 and checks that no
// index file outlived its segment.
func retBases(t testing.TB, l *Log, topic string) []int64 {
	t.Helper()
	dir := partDir(l, topic, 0)
	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, indexExt) || strings.HasSuffix(name, timeIndexExt) {
			if _, err := os.Stat(filepath.Join(dir, name[:segNameLen]+logExt)); err != nil {
				t.Errorf("%s outlived its segment", name)
			}
		}
	}
	return bases
}

// retCheckFrom reads partition 0 from Earliest and checks that it starts
// at start and holds payload(i) at every offset i up to end.
func retCheckFrom(t testing.TB, l *Log, topic string, start, end int64, size int) {
	t.Helper()
	got := readAll(t, l, topic, int(end-start), nil)
	for i, r := range got {
		off := start + int64(i)
		if r.Offset != off || string(r.Value) != string(payload(int(off), size)) {
			t.Fatalf("record %d: offset %d value %.20q, want offset %d value %.20q", i, r.Offset, r.Value, off, payload(int(off), size))
		}
	}
}

func TestRetentionBytes(t *testing.T) {
	const size, n = 1000, 3000 // about 3 MB: some 45 segments of 64 KiB
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch})
	limit := int64(5 * minSegmentBytes / 2)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: limit})
	retProduce(t, l, "t", 0, n, size, nil)

	info, err := l.DescribeTopic("t")
	if err != nil {
		t.Fatal(err)
	}
	pi := info.Partitions[0]
	if pi.Bytes > limit+minSegmentBytes {
		t.Errorf("partition holds %d bytes with a limit of %d and segments of %d", pi.Bytes, limit, minSegmentBytes)
	}
	if pi.StartOffset == 0 || pi.NextOffset != n {
		t.Fatalf("partition %+v: want a start past 0 and %d records", pi, n)
	}
	bases := retBases(t, l, "t")
	if bases[0] != pi.StartOffset || len(bases) > 4 {
		t.Errorf("segments %v for start %d: want at most 4", bases, pi.StartOffset)
	}
	retCheckFrom(t, l, "t", pi.StartOffset, n, size)

	c, err := l.Consumer("t", &ConsumerOptions{Start: AtOffset(0)})
	if !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Consumer at offset 0 after retention: %v, want ErrOutOfRange", err)
	}
	if c != nil {
		c.Close()
	}
}

func TestRetentionAge(t *testing.T) {
	const size, old, young = 1000, 700, 700
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionAge: time.Hour})
	now := time.Now()
	at := func(i int) time.Time {
		if i < old {
			return now.Add(-3 * time.Hour).Add(time.Duration(i) * time.Millisecond)
		}
		return now
	}
	retProduce(t, l, "t", 0, old+young, size, at)

	// Removed on roll: every segment of old records only, none other.
	bases := retBases(t, l, "t")
	if bases[0] == 0 || bases[0] > old {
		t.Fatalf("segments %v: want the first past 0 and at or before offset %d", bases, old)
	}
	if len(bases) > 1 && bases[1] <= old {
		t.Errorf("segment %d holds only records older than the limit but was kept", bases[0])
	}
	retCheckFrom(t, l, "t", bases[0], old+young, size)
}

func TestRetentionAlterAndEnforce(t *testing.T) {
	const size, n = 1000, 1000
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	at := func(i int) time.Time { return time.Now().Add(-48 * time.Hour) }
	retProduce(t, l, "t", 0, n, size, at)
	before := retBases(t, l, "t")
	if len(before) < 10 {
		t.Fatalf("only %d segments", len(before))
	}

	// A second Log, as another process would, changes the config; the
	// first picks it up when it enforces.
	l2 := openTest(t, dir, &Options{RetentionInterval: -1})
	err := l2.AlterTopic("t", func(c *TopicConfig) { c.RetentionAge = 24 * time.Hour })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := retBases(t, l, "t")
	if diff := cmp.Diff(before[len(before)-1:], after); diff != "" {
		t.Errorf("all sealed segments are older than the limit; left (-want +got):\n%s", diff)
	}
	info, err := l.DescribeTopic("t")
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.RetentionAge != 24*time.Hour {
		t.Errorf("config after another Log's AlterTopic: %+v", info.Config)
	}
	retCheckFrom(t, l, "t", after[0], n, size)

	// And it survives a reopen.
	l.Close()
	l3 := openTest(t, dir, nil)
	info, err = l3.DescribeTopic("t")
	if err != nil || info.Config.RetentionAge != 24*time.Hour || info.Partitions[0].StartOffset != after[0] {
		t.Errorf("reopened: %+v, %v", info, err)
	}
}

func TestAlterTopic(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	cases := []struct {
		name   string
		change func(*TopicConfig)
		want   error
	}{
		{"fewer partitions", func(c *TopicConfig) { c.Partitions = 1 }, ErrInvalidArgument},
		{"too many partitions", func(c *TopicConfig) { c.Partitions = 1<<16 + 1 }, ErrInvalidArgument},
		{"small segments", func(c *TopicConfig) { c.SegmentBytes = 1000 }, ErrInvalidArgument},
		{"negative retention", func(c *TopicConfig) { c.RetentionBytes = -1 }, ErrInvalidArgument},
		{"no change", nil, ErrInvalidArgument},
		{"ok", func(c *TopicConfig) {
			c.SegmentBytes, c.RetentionAge, c.RetentionBytes, c.IndexIntervalBytes = 1<<20, time.Hour, 1<<30, 8192
		}, nil},
	}
	for _, tc := range cases {
		if err := l.AlterTopic("t", tc.change); !errors.Is(err, tc.want) {
			t.Errorf("%s: AlterTopic = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := l.AlterTopic("nope", func(*TopicConfig) {}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("AlterTopic of a missing topic: %v", err)
	}
	if err := l.AlterTopic("../x", func(*TopicConfig) {}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("AlterTopic of a bad name: %v", err)
	}
	info, _ := l.DescribeTopic("t")
	want := TopicConfig{Partitions: 2, SegmentBytes: 1 << 20, IndexIntervalBytes: 8192, RetentionAge: time.Hour, RetentionBytes: 1 << 30}
	if diff := cmp.Diff(want, info.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	cfg, err := l.readTopicConfig("t")
	if err != nil || cfg != want {
		t.Errorf("topic.json: %+v, %v", cfg, err)
	}
}

// TestRetentionSegmentSizeChange: a smaller segment size takes effect at
// the next append of this Log.
func TestRetentionSegmentSizeChange(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: 1 << 20})
	retProduce(t, l, "t", 0, 300, 1000, nil)
	if err := l.AlterTopic("t", func(c *TopicConfig) { c.SegmentBytes = minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	retProduce(t, l, "t", 300, 300, 1000, nil)
	if bases := retBases(t, l, "t"); len(bases) < 4 {
		t.Errorf("segments %v after shrinking the segment size", bases)
	}
	retCheckFrom(t, l, "t", 0, 600, 1000)
}

func TestRetentionBackgroundLoop(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: 20 * time.Millisecond})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	retProduce(t, l, "t", 0, 1000, 1000, nil)
	// Another Log sets a limit; the first one's loop re-reads the config
	// and enforces it, with no roll and no call.
	l2 := openTest(t, dir, &Options{RetentionInterval: -1})
	if err := l2.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = 3 * minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := l2.DescribeTopic("t")
		if err != nil {
			t.Fatal(err)
		}
		if pi := info.Partitions[0]; pi.StartOffset > 0 && pi.Bytes <= 3*minSegmentBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background retention did not run: %+v", info.Partitions[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRetentionReaderInRemovedSegment: readers with a removed segment open
// finish it; where they would go next decides what happens after.
func TestRetentionReaderInRemovedSegment(t *testing.T) {
	const size, n = 1000, 1000
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	retProduce(t, l, "t", 0, n, size, nil)
	// The writer lets its kept lock go now, and with it the zeros it
	// extended the last segment by (prealloc.go): the file sizes summed
	// below are then the segments' data, which retention counts.
	l.topics["t"].parts()[0].stopHold()
	bases := retBases(t, l, "t")
	if len(bases) < 5 {
		t.Fatalf("segments %v", bases)
	}
	// openAt returns a consumer that has read the first k records of the
	// first segment, so that it holds the segment open.
	openAt := func(k int) *Consumer {
		c, err := l.Consumer("t", &ConsumerOptions{MaxPollBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		for c.Position(0) < int64(k) {
			if _, err := c.TryPoll(); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	// drain reads until want records past the position, or an error.
	drain := func(c *Consumer, want int64) (got []int64, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for c.Position(0) < want {
			recs, err := c.Poll(ctx)
			for _, r := range recs {
				got = append(got, r.Offset)
			}
			if err != nil {
				return got, err
			}
		}
		return got, nil
	}
	keepOne := openAt(5)   // only its own segment goes: it reads on seamlessly
	loseNext := openAt(5)  // its next segment goes too: out of range after its own
	resetting := openAt(5) // the same, resetting to the new start
	k1, k2, k3 := keepOne.Position(0), loseNext.Position(0), resetting.Position(0)
	resetting.parts[0].r.resetOutOfRange = true
	// Remove segment 0 only.
	st0, _ := os.Stat(segmentPath(partDir(l, "t", 0), bases[0], logExt))
	total := int64(0)
	for _, b := range bases {
		st, _ := os.Stat(segmentPath(partDir(l, "t", 0), b, logExt))
		total += st.Size()
	}
	if err := l.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = total - st0.Size() }); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := retBases(t, l, "t"); got[0] != bases[1] {
		t.Fatalf("segments after removing one: %v", got)
	}
	got, err := drain(keepOne, n)
	if err != nil || int64(len(got)) != n-k1 || got[0] != k1 || got[len(got)-1] != n-1 {
		t.Fatalf("reader whose open segment was removed: %d records (%v…), %v", len(got), got[:min(3, len(got))], err)
	}

	// Now segment 1 too: the other readers finish segment 0 and find
	// segment 1 gone.
	st1, _ := os.Stat(segmentPath(partDir(l, "t", 0), bases[1], logExt))
	if err := l.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = total - st0.Size() - st1.Size() }); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := bases[2]
	got, err = drain(loseNext, n)
	if !errors.Is(err, ErrOutOfRange) || int64(len(got)) != bases[1]-k2 || loseNext.Position(0) != bases[1] {
		t.Fatalf("reader that lost its next segment: %d records, position %d, %v; want %d records and ErrOutOfRange at %d",
			len(got), loseNext.Position(0), err, bases[1]-k2, bases[1])
	}
	if _, err := loseNext.TryPoll(); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("out of range is not sticky: %v", err)
	}
	if err := loseNext.Seek(0, Earliest); err != nil || loseNext.Position(0) != start {
		t.Errorf("Seek(Earliest) after out of range: %v, position %d, want %d", err, loseNext.Position(0), start)
	}
	got, err = drain(resetting, n)
	if err != nil || int64(len(got)) != bases[1]-k3+n-start || got[bases[1]-k3] != start {
		t.Errorf("resetting reader: %d records, %v", len(got), err)
	}
	for _, sp := range []StartPosition{AtOffset(0), AtOffset(bases[1])} {
		c, err := l.Consumer("t", &ConsumerOptions{Start: sp})
		if !errors.Is(err, ErrOutOfRange) {
			t.Errorf("consumer at %v: %v, want ErrOutOfRange", sp, err)
		}
		if c != nil {
			c.Close()
		}
	}
	r := newPartReader(l.topics["t"].parts()[0], 0)
	r.resetOutOfRange = true
	if err := r.seek(0); err != nil || r.next != start {
		t.Errorf("resetting seek to 0: %v, at %d, want %d", err, r.next, start)
	}
	r.close()
}

// TestRetentionStaleWriter: a Log whose view of the tail is a segment
// that another Log rolled past and retention removed must find the real
// tail, not re-create the removed segments.
func TestRetentionStaleWriter(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	mustCreate(t, a, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: 3 * minSegmentBytes})
	retProduce(t, a, "t", 0, 10, 1000, nil)
	b := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	retProduce(t, b, "t", 10, 1000, 1000, nil)
	before := retBases(t, a, "t")
	if before[0] == 0 {
		t.Fatalf("segments %v: retention did not run", before)
	}
	retProduce(t, a, "t", 1010, 10, 1000, nil)
	after := retBases(t, a, "t")
	if after[0] < before[0] {
		t.Fatalf("segments %v after the stale writer appended (before: %v)", after, before)
	}
	retCheckFrom(t, a, "t", after[0], 1020, 1000)
}

// TestRetentionStaleWriterLetsGo: a Log whose view of the tail is a
// segment that another Log (here, or in another process) rolled past and
// retention removed holds that segment's files, its .log (and its
// mapping) and both index files, until its next append finds the tail
// afresh or its files are released as idle: within two sweeps (10 to 20
// seconds), not for as long as the Log stays open.
func TestRetentionStaleWriterLetsGo(t *testing.T) {
	driveSweeps(t)
	dir := t.TempDir()
	a := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, a, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: 2 * minSegmentBytes})
	sendKB(t, mustProducer(t, a, "t", nil), 1)
	b := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	sendKB(t, mustProducer(t, b, "t", nil), 400)
	if bases := retBases(t, b, "t"); bases[0] == 0 {
		t.Fatalf("segments %v: retention did not remove segment 0", bases)
	}
	settleCheckpoints(a)
	settleCheckpoints(b)
	var held []string
	for _, f := range removedFilesOpen(t, dir) {
		held = append(held, filepath.Base(f)) // its mapping, if any, as the file
	}
	slices.Sort(held)
	held = slices.Compact(held)
	name := func(ext string) string { return filepath.Base(segmentPath(dir, 0, ext)) + " (deleted)" }
	if want := []string{name(indexExt), name(logExt), name(timeIndexExt)}; !slices.Equal(held, want) {
		t.Fatalf("removed files held before the sweeps: %v, want segment 0's in the stale writer: %v", held, want)
	}
	a.parts.sweep() // a appended since the last sweep: kept
	a.parts.sweep()
	if open := removedFilesOpen(t, dir); len(open) != 0 {
		t.Errorf("removed files held after the stale writer's partition was idle through a sweep: %v", open)
	}
}

func TestRetentionSegmentNewest(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	base := time.Unix(1_700_000_000, 0)
	// Timestamps go up and down, so the newest is not the last.
	at := func(i int) time.Time { return base.Add(time.Duration(i%97) * time.Second) }
	retProduce(t, l, "t", 0, 300, 1000, at)
	dir := partDir(l, "t", 0)
	bases := retBases(t, l, "t")
	if len(bases) < 3 {
		t.Fatalf("segments %v", bases)
	}
	seg, count := bases[1], bases[2]-bases[1]
	var want int64
	for i := seg; i < seg+count; i++ {
		want = max(want, at(int(i)).UnixNano())
	}
	size := fileSize(t, segmentPath(dir, seg, logExt))
	check := func(name string, wantTS int64) {
		t.Helper()
		got, err := segmentNewest(dir, seg, count, size, nil)
		if err != nil || got != wantTS {
			t.Errorf("%s: newest %d, %v; want %d", name, got, err, wantTS)
		}
	}
	check("time index", want)
	// Without the seal's time entry: scanned from the entry before it.
	tim := segmentPath(dir, seg, timeIndexExt)
	n := fileSize(t, tim)
	if err := os.Truncate(tim, n-timeIndexEntrySize); err != nil {
		t.Fatal(err)
	}
	check("scan from an entry", want)
	if err := os.Remove(tim); err != nil {
		t.Fatal(err)
	}
	check("scan", want)
	// A segment that cannot be scanned falls back to its mtime.
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	writeAt(t, segmentPath(dir, seg, logExt), 0, []byte{0xff, 0xff, 0xff, 0xff})
	if err := os.Chtimes(segmentPath(dir, seg, logExt), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	check("mtime", mtime.UnixNano())
}

// The concurrent test runs its writer and reader as child processes.
func init() {
	childMains["retention-writer"] = retWriterMain
	childMains["retention-reader"] = retReaderMain
}

const retSize = 500

func retChild(name, dir string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, "RUNNEL_RET_DIR="+dir, "RUNNEL_RET_N="+strconv.Itoa(n))
	return cmd
}

func retChildArgs() (string, int) {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_RET_N"))
	return os.Getenv("RUNNEL_RET_DIR"), n
}

// retWriterMain appends records 0..n-1 with value payload(i), in batches
// of various sizes.
func retWriterMain() int {
	dir, n := retChildArgs()
	l, err := Open(dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Close()
	p, err := l.Producer("t", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	// A failed record (a full disk, say) must stop the writer: the next
	// one would take its offset, and the reader would find payload(i+1)
	// at offset i.
	var failed atomic.Pointer[error]
	done := func(_ Position, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	for i := 0; i < n; {
		batch := min(1+i%37, n-i)
		for j := range batch {
			p.SendAsync(Record{Value: payload(i+j, retSize)}, done)
		}
		if err := p.Flush(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := failed.Load(); err != nil {
			fmt.Fprintln(os.Stderr, *err)
			return 1
		}
		i += batch
	}
	return 0
}

// retReaderMain reads the partition to offset n-1, checking each record;
// when retention removes what it was about to read, it moves to the new
// start, which must be past where it was. It prints how often it did.
func retReaderMain() int {
	dir, n := retChildArgs()
	l, err := Open(dir, &Options{RetentionInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Close()
	c, err := l.Consumer("t", &ConsumerOptions{MaxPollBytes: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next, resets, read := int64(-1), 0, 0
	waited := false
	for next < int64(n) {
		if !waited && next >= 10 {
			// Fall behind on purpose: wait until retention removed
			// segments past the one being read.
			waited = true
			for {
				info, err := l.DescribeTopic("t")
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				if info.Partitions[0].StartOffset > next+1000 {
					break
				}
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "retention never passed the reader")
					return 1
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		recs, err := c.Poll(ctx)
		for _, r := range recs {
			if next >= 0 && r.Offset != next {
				fmt.Fprintf(os.Stderr, "offset %d after %d\n", r.Offset, next-1)
				return 1
			}
			if string(r.Value) != string(payload(int(r.Offset), retSize)) {
				fmt.Fprintf(os.Stderr, "offset %d: wrong value %.30q\n", r.Offset, r.Value)
				return 1
			}
			next = r.Offset + 1
			read++
		}
		if errors.Is(err, ErrOutOfRange) {
			at := c.Position(0)
			if err := c.Seek(0, Earliest); err != nil {
				fmt.Fprintln(os.Stderr, "seek:", err)
				return 1
			}
			if c.Position(0) <= at {
				fmt.Fprintf(os.Stderr, "out of range at %d, but the start is %d\n", at, c.Position(0))
				return 1
			}
			next = c.Position(0)
			resets++
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if next == int64(n) {
			break
		}
	}
	fmt.Printf("read %d resets %d\n", read, resets)
	if resets == 0 {
		fmt.Fprintln(os.Stderr, "never out of range")
		return 1
	}
	return 0
}

// TestRetentionConcurrent runs retention in this process, as fast as it
// can, while one process appends and another reads.
func TestRetentionConcurrent(t *testing.T) {
	n := 40000
	if testing.Short() {
		n = 10000
	}
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: 5 * time.Millisecond})
	limit := int64(4 * minSegmentBytes)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: limit})

	writer := retChild("retention-writer", dir, n)
	var werr strings.Builder
	writer.Stderr = &werr
	reader := retChild("retention-reader", dir, n)
	var rout, rerr strings.Builder
	reader.Stdout, reader.Stderr = &rout, &rerr
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- writer.Wait() }()
	ctx := context.Background()
	passes := 0
loop:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer: %v: %s", err, werr.String())
			}
			break loop
		default:
		}
		if err := l.EnforceRetention(ctx); err != nil {
			t.Fatalf("EnforceRetention: %v", err)
		}
		passes++
	}
	if err := reader.Wait(); err != nil {
		t.Fatalf("reader: %v: %s", err, rerr.String())
	}
	t.Logf("%d retention passes; reader: %s", passes, strings.TrimSpace(rout.String()))

	info, err := l.DescribeTopic("t")
	if err != nil {
		t.Fatal(err)
	}
	pi := info.Partitions[0]
	if pi.NextOffset != int64(n) || pi.StartOffset == 0 || pi.Bytes > limit+minSegmentBytes {
		t.Errorf("after the run: %+v (limit %d)", pi, limit)
	}
	retCheckFrom(t, l, "t", pi.StartOffset, int64(n), retSize)
	rep, err := l.Verify(ctx, "t", nil)
	if err != nil || !rep.OK() {
		t.Errorf("Verify: %v %v", err, rep.Problems)
	}
}

// TestAlterTopicWhileProducing changes the config under a running
// producer and retention loop: run with -race.
func TestAlterTopicWhileProducing(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: 5 * time.Millisecond})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2, SegmentBytes: minSegmentBytes})
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			p.SendAsync(Record{Value: payload(i, 200)}, nil)
		}
	}()
	for i := range 50 {
		err := l.AlterTopic("t", func(c *TopicConfig) {
			c.SegmentBytes = minSegmentBytes * int64(1+i%3)
			c.IndexIntervalBytes = 1024 * int64(1+i%4)
			c.RetentionBytes = 8 * minSegmentBytes
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.DescribeTopic("t"); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(context.Background(), "t", nil)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %v", err, rep.Problems)
	}
}

// TestReaderListingOvertakenByRetention: a reader that listed the segments
// and then found the one it wanted (the first, for Earliest; the last, for
// Latest) removed by retention before it could open it goes on from the
// log as it is now; only a reader that asked for those offsets is out of
// range. Under CPU load, the gap between listing and opening is long
// enough for retention to pass (TestRetentionConcurrent's reader met it).
func TestReaderListingOvertakenByRetention(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	retProduce(t, l, "t", 0, 1000, 1000, nil)
	bases := retBases(t, l, "t")
	if len(bases) < 3 {
		t.Fatalf("segments %v", bases)
	}
	tp, err := l.topic("t")
	if err != nil {
		t.Fatal(err)
	}
	p := tp.parts()[0]
	if err := removeSegmentFiles(p.dir, bases[0]); err != nil {
		t.Fatal(err)
	}

	r := newPartReader(p, 0)
	defer r.close()
	if err := r.openSegment(bases[0]); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("opening the removed segment for its offsets: %v, want ErrOutOfRange", err)
	}
	if err := r.openSegmentOrLater(bases[0]); err != nil || r.base != bases[1] || r.next != bases[1] {
		t.Errorf("opening the removed segment for the earliest offset: at %d (segment %d), %v; want the start of segment %d", r.next, r.base, err, bases[1])
	}
	if r.resetOutOfRange {
		t.Error("openSegmentOrLater left the reader resetting on out of range")
	}
}

// TestRetentionBytesWithoutZeros: the zeros a writer extends the last
// segment by (FORMAT.md, Zeros ahead of the tail) are not data, and do not
// count against RetentionBytes.
func TestRetentionBytesWithoutZeros(t *testing.T) {
	dir := t.TempDir()
	first, _ := appendFrames(nil, 0, 10)
	if err := os.WriteFile(segmentPath(dir, 0, logExt), first, 0o644); err != nil {
		t.Fatal(err)
	}
	frames, _ := appendFrames(nil, 10, 1)
	writeLast := func(after []byte) int64 {
		last := append(append([]byte(nil), frames...), after...)
		if err := os.WriteFile(segmentPath(dir, 10, logExt), last, 0o644); err != nil {
			t.Fatal(err)
		}
		return int64(len(last))
	}
	size := writeLast(make([]byte, 4<<20))
	if got, want := dataSize(dir, 10, size), int64(len(frames)); got != want {
		t.Fatalf("dataSize = %d, want %d (the frame without the zeros after it)", got, want)
	}
	data := int64(len(first) + len(frames))
	plan, err := planRetention(dir, TopicConfig{RetentionBytes: data}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 0 {
		t.Fatalf("%d bytes of data against a limit of as many: retention plans %+v", data, plan)
	}
	plan, err = planRetention(dir, TopicConfig{RetentionBytes: data - 1}, time.Now(), nil)
	if err != nil || len(plan) != 1 || plan[0].base != 0 {
		t.Fatalf("%d bytes of data against a limit of %d: retention plans %+v, %v; want segment 0 removed", data, data-1, plan, err)
	}

	// Bytes after the last frame that are not zeros to the end of the
	// file (a frame being written, damage) take space like data.
	garbage := append(bytes.Repeat([]byte{7}, 64), make([]byte, 1<<10)...)
	size = writeLast(garbage)
	if got := dataSize(dir, 10, size); got != size {
		t.Fatalf("dataSize with garbage after the frame = %d, want the file's %d", got, size)
	}
}
