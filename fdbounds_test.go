package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// releaseNow releases p's files, waiting (within patience) while a write,
// sync or checkpoint in flight keeps them busy.
func releaseNow(t testing.TB, p *partition) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !p.releaseFiles() {
		if time.Now().After(deadline) {
			t.Fatalf("%s kept its files for %v", p.dir, patience)
		}
		time.Sleep(time.Millisecond)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.shm != nil || p.meta != nil || p.w != nil {
		t.Fatalf("%s released, but files are open: shm %v, meta %v, active %v", p.dir, p.shm != nil, p.meta != nil, p.w != nil)
	}
}

// TestReleasedPartitionAcrossProcesses releases a partition's files after
// every one of this Log's appends while another process appends to the
// same partition, across segment rolls, and reads along through a segment
// cache of four files: every record of both is there once, in order, at
// the offset it was acknowledged with.
func TestReleasedPartitionAcrossProcesses(t *testing.T) {
	n := mpScale(1500, 500, 500) // the other process's records
	m := mpScale(400, 150, 150)  // this one's
	dir := t.TempDir()
	l := openTest(t, dir, &Options{MaxOpenFiles: minMaxOpenFiles}) // Durable
	mustCreate(t, l, "mp", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	prod, err := l.Producer("mp", nil)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := l.Consumer("mp", &ConsumerOptions{Start: Earliest, MaxPollBytes: minMaxPollBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p := l.topics["mp"].parts()[0]

	out := filepath.Join(t.TempDir(), "offsets")
	cmd := mpChild("mp-producer", "RUNNEL_MP_DIR="+dir, "RUNNEL_MP_TOPIC=mp", "RUNNEL_MP_ID=0",
		"RUNNEL_MP_N="+strconv.Itoa(n), "RUNNEL_MP_MODE=send", "RUNNEL_MP_OUT="+out)
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := mpLines(stdout)
	if s := mpExpectLine(t, lines, 30*time.Second); s != "ready" {
		t.Fatalf("child said %q, want ready", s)
	}
	io.WriteString(stdin, "go\n")

	ctx := context.Background()
	mine := make([]int64, m)
	var read []Record
	releases := l.Stats().FileReleases
	for seq := range m {
		pos, err := prod.Send(ctx, Record{Value: mpValue(1, 0, int64(seq), 150+seq%50)})
		if err != nil {
			t.Fatalf("Send %d: %v", seq, err)
		}
		mine[seq] = pos.Offset
		releaseNow(t, p)
		recs, err := cons.TryPoll()
		if err != nil {
			t.Fatalf("TryPoll after record %d: %v", seq, err)
		}
		for _, r := range recs {
			r.Value = append([]byte(nil), r.Value...)
			read = append(read, r)
		}
	}
	if got := l.Stats().FileReleases - releases; got < int64(m) {
		t.Errorf("Stats.FileReleases grew by %d, want at least %d", got, m)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("producer process: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil || len(data) != 8*n {
		t.Fatalf("producer process acknowledged %d records (%v), want %d", len(data)/8, err, n)
	}
	theirs := make([]int64, n)
	for i := range theirs {
		theirs[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
	}
	total := n + m
	read = append(read, pollUntil(t, cons, total-len(read), patience)...)
	checkProducerRecords(t, read, [][]int64{theirs, mine})
	info, err := l.DescribeTopic("mp")
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions[0].NextOffset != int64(total) || info.Partitions[0].Segments < 2 {
		t.Errorf("partition: %+v, want next offset %d and segment rolls", info.Partitions[0], total)
	}
	rep, err := l.Verify(ctx, "mp", nil)
	if err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %+v", err, rep.Problems)
	}
	if _, peak, _ := l.segs.stats(); peak > 4 {
		t.Errorf("segment cache held %d files at once, limit 4", peak)
	}
}

// TestIdleSweepReleases drives the idle sweeps by hand: a partition
// appended to since the last sweep keeps its files, one left alone for a
// whole sweep period releases them, in every durability mode, and its
// next append and read work as before.
func TestIdleSweepReleases(t *testing.T) {
	// A kept writer lock's watcher lets it go (and cuts the zeros ahead
	// of the tail) after holdIdle, holding the partition's mutex a moment:
	// a sweep meeting it would keep the files a sweep longer. Stretched,
	// the sweep lets the lock go itself (stopHold).
	stretchHold(t)
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d, SyncInterval: time.Hour})
			mustCreate(t, l, "t", TopicConfig{Partitions: 2})
			prod, err := l.Producer("t", nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			send := func(part int, v string) {
				t.Helper()
				if _, err := prod.SendBatch(ctx, part, []Record{{Value: []byte(v)}}); err != nil {
					t.Fatal(err)
				}
			}
			send(0, "a0")
			send(1, "b0")
			if got := l.Stats().OpenPartitions; got != 2 {
				t.Fatalf("OpenPartitions %d after appends to two, want 2", got)
			}
			// Busy work (a sync stage finishing, a checkpoint) may keep
			// a partition a sweep longer: sweep until both went.
			l.parts.sweep()
			send(1, "b1") // used since: survives the next sweep
			l.parts.sweep()
			if got := l.Stats().OpenPartitions; got != 1 {
				t.Fatalf("OpenPartitions %d after a sweep, want 1 (the partition appended to since)", got)
			}
			for i := 0; l.Stats().OpenPartitions != 0; i++ {
				if i > 1000 {
					t.Fatalf("OpenPartitions still %d after %d sweeps", l.Stats().OpenPartitions, i)
				}
				l.parts.sweep()
				time.Sleep(time.Millisecond)
			}
			send(0, "a1")
			send(1, "b2")
			got := map[string]int64{}
			for _, r := range readAll(t, l, "t", 5, &ConsumerOptions{Start: Earliest}) {
				got[fmt.Sprintf("%d/%s", r.Partition, r.Value)] = r.Offset
			}
			want := map[string]int64{"0/a0": 0, "0/a1": 1, "1/b0": 0, "1/b1": 1, "1/b2": 2}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read %v, want %v", got, want)
			}
		})
	}
}

// TestBufferedCloseSyncsReleased: Close syncs what a Buffered Log wrote
// to a partition whose files it released before, as it does for the others.
func TestBufferedCloseSyncsReleased(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	prod, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Send(context.Background(), Record{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	p := l.topics["t"].parts()[0]
	releaseNow(t, p)
	syncs := l.Stats().Syncs
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Syncs; got <= syncs {
		t.Errorf("Close made %d fdatasyncs for a released, written partition; want one", got-syncs)
	}
}

// TestSegmentCacheBound reads one topic's segments with many consumers at
// once through a cache of four files: every consumer reads every record,
// and no more than four segment files are ever open for them.
func TestSegmentCacheBound(t *testing.T) {
	const parts, readers = 4, 12
	per := mpScale(400, 150, 150)
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxOpenFiles: minMaxOpenFiles})
	_, segLimit := splitBudget(minMaxOpenFiles)
	mustCreate(t, l, "t", TopicConfig{Partitions: parts, SegmentBytes: minSegmentBytes})
	prod, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for part := range parts {
		for seq := range per {
			// Several records a frame, several frames a segment, several
			// segments a partition.
			if seq%4 == 0 {
				recs := make([]Record, 4)
				for j := range recs {
					recs[j].Value = mpValue(part, 0, int64(seq+j), 500)
				}
				if _, err := prod.SendBatch(ctx, part, recs); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			c, err := l.Consumer("t", &ConsumerOptions{Start: Earliest, MaxPollBytes: minMaxPollBytes})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			next := make([]int64, parts)
			for got := 0; got < parts*per; {
				pctx, cancel := context.WithTimeout(ctx, patience)
				recs, err := c.Poll(pctx)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				for _, r := range recs {
					v, err := mpParse(r.Value)
					if err != nil || v.P != r.Partition || v.Seq != next[r.Partition] || r.Offset != v.Seq {
						errs <- fmt.Errorf("partition %d offset %d: %+v, %v; want record %d", r.Partition, r.Offset, v, err, next[r.Partition])
						return
					}
					next[r.Partition]++
				}
				got += len(recs)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	open, peak, opens := l.segs.stats()
	if peak > segLimit {
		t.Errorf("segment cache held %d files at once, limit %d", peak, segLimit)
	}
	if opens <= int64(segLimit) || open > segLimit {
		t.Errorf("segment cache: %d open, %d opened in all; want files closed for room and opened again", open, opens)
	}
}

// TestSegmentCacheReopen: a handle whose file was closed for room opens
// the same file again, and reports a file removed or replaced meanwhile
// as errSegmentGone.
func TestSegmentCacheReopen(t *testing.T) {
	dir := t.TempDir()
	c := newSegCache(1)
	paths := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	for i, p := range paths {
		if err := os.WriteFile(p, []byte{byte('a' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ha, err := c.openSegmentFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	hb, err := c.openSegmentFile(paths[1]) // closes a's file for room
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := ha.ReadAt(buf, 0); err != nil || buf[0] != 'a' {
		t.Fatalf("reopened a: %q, %v", buf, err)
	}
	// Replace b while its file is closed for room: a new file by its name.
	// (The old file stays open here, so that the new one cannot reuse its
	// inode number: see segCache on identity.)
	old, err := os.Open(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := os.Remove(paths[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths[1], []byte("B"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := hb.ReadAt(buf, 0); !errors.Is(err, errSegmentGone) {
		t.Fatalf("read of a replaced file: %v, want errSegmentGone", err)
	}
	// Open a again (the failed reopen of b took its room), then remove
	// it: a file the cache holds open stays readable.
	if _, err := ha.ReadAt(buf, 0); err != nil || buf[0] != 'a' {
		t.Fatalf("reopened a again: %q, %v", buf, err)
	}
	os.Remove(paths[0])
	hb.Close()
	if _, err := ha.ReadAt(buf, 0); err != nil || buf[0] != 'a' {
		t.Fatalf("a, removed but open: %q, %v", buf, err)
	}
	if open, peak, _ := c.stats(); open > 1 || peak > 1 {
		t.Fatalf("%d files open (peak %d), limit 1", open, peak)
	}
	ha.Close()
	c.close()
	if _, err := c.openSegmentFile(paths[1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("open after close: %v, want ErrClosed", err)
	}
}

func TestMaxOpenFilesOption(t *testing.T) {
	if _, err := Open(t.TempDir(), &Options{MaxOpenFiles: minMaxOpenFiles - 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MaxOpenFiles %d: %v, want ErrInvalidArgument", minMaxOpenFiles-1, err)
	}
	l := openTest(t, t.TempDir(), nil)
	if got, want := l.opts.MaxOpenFiles, defaultMaxOpenFiles(); got != want || got < floorMaxOpenFiles {
		t.Fatalf("default MaxOpenFiles %d, want %d (half the limit, at least %d)", got, want, floorMaxOpenFiles)
	}
}

// TestReleasedSegmentRemoved: while a partition's files are released,
// another Log rolls past its active segment and retention removes it; the
// next append finds the tail afresh and lands after the other's records.
func TestReleasedSegmentRemoved(t *testing.T) {
	dir := t.TempDir()
	l1 := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l1, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, RetentionBytes: 2 * minSegmentBytes})
	ctx := context.Background()
	send := func(l *Log, n int) int64 {
		t.Helper()
		prod, err := l.Producer("t", nil)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for range n {
			pos, err := prod.Send(ctx, Record{Value: make([]byte, 1000)})
			if err != nil {
				t.Fatal(err)
			}
			last = pos.Offset
		}
		return last
	}
	send(l1, 1)
	p := l1.topics["t"].parts()[0]
	releaseNow(t, p)
	first := segmentPath(p.dir, 0, logExt)
	l2 := openTest(t, dir, &Options{Durability: Buffered})
	last := send(l2, 400) // several segments, the first ones removed
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment 0 still there (%v): retention did not remove it", err)
	}
	if got := send(l1, 1); got != last+1 {
		t.Fatalf("append after the release went to offset %d, want %d", got, last+1)
	}
	rep, err := l1.Verify(ctx, "t", nil)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v, %+v", err, rep.Problems)
	}
}

// TestSegmentCacheReadAllocatesNothing: a read through a handle whose file
// is open allocates nothing, and the least recently used idle file is
// still the one closed for room. A consumer woken for each record reads
// and stats its segment through the cache on every wake-up.
func TestSegmentCacheReadAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	c := newSegCache(2)
	defer c.close()
	var hs []*segHandle
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := c.openSegmentFile(p)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hs = append(hs, h)
	}
	// a was closed for room; b, then c, are open.
	buf := make([]byte, 1)
	if n := testing.AllocsPerRun(100, func() { hs[1].ReadAt(buf, 0) }); n != 0 {
		t.Errorf("a read through the cache allocated %v times", n)
	}
	_, _, opens := c.stats()
	if _, err := hs[0].ReadAt(buf, 0); err != nil || buf[0] != 'a' { // closes c, read least recently
		t.Fatalf("reopened a: %q, %v", buf, err)
	}
	if _, err := hs[1].ReadAt(buf, 0); err != nil || buf[0] != 'b' {
		t.Fatalf("b: %q, %v", buf, err)
	}
	if _, _, n := c.stats(); n != opens+1 {
		t.Errorf("%d files opened for a read of a and one of b, want 1: b was not the one kept", n-opens)
	}
}
