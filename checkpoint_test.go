package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCheckpointKeepsWriterLock: recording a checkpoint leaves a writer
// lock this Log kept across appends kept, with the zeros extended ahead of
// the tail (lockForCheckpoint): the appends after it go on under the same
// lock, where letting it go made the next one take it again, find the
// tail and extend the segment anew.
func TestCheckpointKeepsWriterLock(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	// Buffered with the pwrite backend: frames through the mapping, into
	// zeros extended ahead of the tail (io_uring's writer extends none).
	l := openTest(t, dir, &Options{Durability: Buffered, Backend: BackendPwrite, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	ctx := context.Background()
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := p.Send(ctx, Record{Value: fmt.Appendf(nil, "r%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 100)
	tp, _ := l.topic("t")
	part := tp.parts()[0]
	part.wmu.Lock()
	tail, extended := part.w.tail(), part.w.extended
	part.wmu.Unlock()
	if extended <= tail.pos {
		t.Fatalf("no zeros extended ahead of the tail at byte %d (extended to %d): the test needs them", tail.pos, extended)
	}

	if err := part.takeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if cp, ok := part.shm.checkpoint(); !ok || cp.next != tail.next {
		t.Fatalf("checkpoint %v (%v), want one at offset %d", cp, ok, tail.next)
	}
	part.wmu.Lock()
	held, exact, after := part.held, part.exact, part.w.extended
	part.wmu.Unlock()
	if !held || !exact || after != extended {
		t.Fatalf("after the checkpoint: held %v, tail known %v, extended to %d; want the lock kept and the zeros to %d", held, exact, after, extended)
	}
	if !heldByOther(t, writerProbe(t, dir, "t")) {
		t.Fatal("the writer lock was let go for the checkpoint")
	}
	send(100, 120)
	if st := l.Stats(); st.WriterLocks != 1 || st.RecordsWritten != 120 {
		t.Fatalf("Stats %+v: want 120 records under one writer lock", st)
	}
	if recs := readAll(t, l, "t", 120, nil); string(recs[119].Value) != "r119" {
		t.Fatalf("last record %q", recs[119].Value)
	}
}

// settleCheckpoints ends l's background checkpoints, after the one in
// progress: its syncs may hold the files of a segment that retention
// removed meanwhile for as long as they run
// (TestCheckpointSyncUnderRetention), so a test that looks for removed
// files still open waits for them first. Later appends take none.
func settleCheckpoints(l *Log) { l.ckpts.stop() }

// sendKB sends n records of 1,000 bytes: 62 fill a segment of
// minSegmentBytes.
func sendKB(t testing.TB, p *Producer, n int) {
	t.Helper()
	for range n {
		if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
}

// removedFilesOpen lists the files under dir that the process holds open
// or mapped though they were removed: their space is freed only once
// neither is left.
func removedFilesOpen(t *testing.T, dir string) []string {
	t.Helper()
	held := filesUnder(t, dir)
	for _, f := range filesMappedUnder(t, dir) {
		held = append(held, "mapped "+f)
	}
	return slices.DeleteFunc(held, func(f string) bool { return !strings.HasSuffix(f, " (deleted)") })
}

// filesMappedUnder lists the process's mappings of files under dir, as
// filesUnder lists its descriptors: each file once, its path relative to
// dir.
func filesMappedUnder(t *testing.T, dir string) []string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	var files []string
	for line := range strings.Lines(string(maps)) {
		// address perms offset device inode path
		i := strings.Index(line, " /")
		if i < 0 {
			continue
		}
		p := strings.TrimSuffix(line[i+1:], "\n")
		if strings.HasPrefix(p, dir+string(filepath.Separator)) && !slices.Contains(files, strings.TrimPrefix(p, dir)) {
			files = append(files, strings.TrimPrefix(p, dir))
		}
	}
	return files
}

// TestCheckpointSyncUnderRetention: a checkpoint syncs the files of the
// segments it covers by name, outside the writer lock (checkpoint.go), so
// retention may remove a segment whose file the sync has open. The
// process then holds the removed file, as
// TestPausedPartitionHoldsNoRemovedSegment once found (a removed
// segment's .index open, its .log closed), but only until that sync
// returns. Driven step by step: the background checkpoint is held with
// one of segment 0's index files open while retention removes the
// segment.
func TestCheckpointSyncUnderRetention(t *testing.T) {
	for _, ext := range []string{indexExt, timeIndexExt} {
		t.Run(ext, func(t *testing.T) { testCheckpointSyncUnderRetention(t, ext) })
	}
}

func testCheckpointSyncUnderRetention(t *testing.T, ext string) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	file := segmentPath(partDir(l, "t", 0), 0, ext)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookSyncFile = func(path string) {
		if path == file {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}
	t.Cleanup(func() { testHookSyncFile = nil })
	defer func() {
		select {
		case <-release:
		default:
			close(release) // a failed test lets the checkpoint go
		}
	}()
	p := mustProducer(t, l, "t", nil)
	sendKB(t, p, 100) // a roll: the checkpoints so far cover segment 0
	select {
	case <-held:
	case <-time.After(patience):
		t.Fatalf("no checkpoint synced %s within %v", file, patience)
	}
	sendKB(t, p, 200) // segments enough for retention to remove segment 0
	if err := l.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bases := retBases(t, l, "t"); len(bases) == 0 || bases[0] == 0 {
		t.Fatalf("segments %v: retention did not remove segment 0", bases)
	}
	removed := filepath.Base(file) + " (deleted)"
	if open := removedFilesOpen(t, dir); len(open) != 1 || filepath.Base(open[0]) != removed {
		t.Fatalf("removed files open while a checkpoint syncs %s: %v, want only it", filepath.Base(file), open)
	}
	close(release)
	settleCheckpoints(l)
	if open := removedFilesOpen(t, dir); len(open) != 0 {
		t.Errorf("removed files open after the checkpoint: %v", open)
	}
}
