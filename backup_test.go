package runnel

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Backups taken in one process: what the copy holds, where it goes, what
// retention, cancellation, damage and a read-only source do to it. The
// backup taken while producer processes write is in backup_mp_test.go.

// bkSource builds the log the backup tests copy: topic "orders" with three
// partitions over several small segments, topic "idle" never written,
// group "billing" with commits on "orders", and the Kafka server's files.
// It returns the Log, still open.
func bkSource(t *testing.T, dir string, perPartition int) *Log {
	t.Helper()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "orders", TopicConfig{Partitions: 3, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 1024})
	mustCreate(t, l, "idle", TopicConfig{Partitions: 2})
	bkProduce(t, l, "orders", 3, 0, perPartition)
	for p, off := range []int64{7, 0, -1} {
		if off < 0 {
			continue
		}
		if _, err := l.ResetGroupOffsets(context.Background(), "billing", "orders", AtOffset(off), &ResetOptions{Partitions: []int{p}}); err != nil {
			t.Fatal(err)
		}
	}
	kdir := filepath.Join(dir, serverStateDir)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"cluster.id": "AAAAAAAAAAAAAAAAAAAAAA\n", "producer-ids": "00000000000000003000\n"} {
		if err := os.WriteFile(filepath.Join(kdir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// bkProduce appends records first … first+n−1 to each of nparts partitions
// of topic, one frame each, each record naming its partition and number
// (mpValue), with a key and a header on every other one.
func bkProduce(t testing.TB, l *Log, topic string, nparts, first, n int) {
	t.Helper()
	p := mustProducer(t, l, topic, &ProducerOptions{Partitioner: ManualPartitioner})
	for i := first; i < first+n; i++ {
		for part := range nparts {
			r := Record{Partition: part, Value: mpValue(part, 0, int64(i), 200+i%200)}
			if i%2 == 0 {
				r.Key = []byte(strconv.Itoa(i))
				r.Headers = []Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}
			}
			// One at a time: a frame per record, for tests that damage one.
			if _, err := p.Send(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// bkRecords reads every record of topic in l, by partition.
func bkRecords(t testing.TB, l *Log, topic string) map[int][]Record {
	t.Helper()
	out := map[int][]Record{}
	for _, r := range readAvailable(t, l, topic) {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

// openCopy opens a backup as a log of its own, and checks that Verify
// finds nothing wrong in it: no problem, and no note either (nothing in
// flux, nothing missing).
func openCopy(t testing.TB, dir string) *Log {
	t.Helper()
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Notes) > 0 {
		t.Fatalf("Verify of the copy: problems %v, notes %v", rep.Problems, rep.Notes)
	}
	return l
}

// treeFiles returns every regular file under dir by its path relative to
// dir, with its content.
func treeFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileMode(t testing.TB, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// leftovers lists the directories a backup builds in (incompleteTag)
// under dir, one level down.
func leftovers(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), incompleteTag) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestBackupCopiesLog backs up a log that nothing writes to and checks
// every part of the copy against the source: records, offsets, configs,
// commits, the Kafka server's files, the fresh partition.meta, and that
// the copy works as a log, also after a machine restart.
//
// The Log that wrote the source keeps each partition's writer lock for a
// while after its last append (holdIdle), its active segment extended by
// zeros ahead of the tail, and cuts the zeros when it lets the lock go.
// The test keeps the lock held throughout, so that the zeros are there
// while the backup runs and when the copy is compared, every time. With
// the default hold (2 ms), whether they were still there when the source
// was read depended on how soon the goroutine letting the lock go
// (watchHold) ran, and a comparison of whole segment files failed, on a
// loaded machine, when it ran after the backup.
func TestBackupCopiesLog(t *testing.T) {
	idle := holdIdle
	holdIdle = time.Hour
	t.Cleanup(func() { holdIdle = idle }) // after the Logs' cleanups close them
	for _, mode := range []string{"new directory", "empty directory"} {
		t.Run(mode, func(t *testing.T) {
			src := t.TempDir()
			l := bkSource(t, src, 400)
			dest := filepath.Join(t.TempDir(), "copy")
			if mode == "empty directory" {
				if err := os.Mkdir(dest, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var progress [][2]int64
			rep, err := l.Backup(context.Background(), dest, &BackupOptions{Progress: func(done, total int64) {
				progress = append(progress, [2]int64{done, total})
			}, Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := leftovers(t, filepath.Dir(dest)); len(got) > 0 {
				t.Errorf("left beside the copy: %v", got)
			}
			if got := leftovers(t, dest); len(got) > 0 {
				t.Errorf("left inside the copy: %v", got)
			}
			// Made with the umask's mode, as Open makes a log's directories.
			if want, got := fileMode(t, filepath.Join(src, "topics")), fileMode(t, dest); mode == "new directory" && got != want {
				t.Errorf("the copy's directory has mode %v, want %v", got, want)
			}

			// The report.
			if rep.Dest != dest {
				t.Errorf("Dest %q, want %q", rep.Dest, dest)
			}
			if diff := cmp.Diff([]string{"idle", "orders"}, rep.Topics); diff != "" {
				t.Errorf("topics (-want +got):\n%s", diff)
			}
			info, err := l.DescribeTopic("orders")
			if err != nil {
				t.Fatal(err)
			}
			var segBytes int64
			for _, pi := range info.Partitions {
				segBytes += pi.Bytes
				var pb *PartitionBackup
				for i := range rep.Partitions {
					if rep.Partitions[i].Topic == "orders" && rep.Partitions[i].Partition == pi.Partition {
						pb = &rep.Partitions[i]
					}
				}
				want := PartitionBackup{Topic: "orders", Partition: pi.Partition, StartOffset: 0, NextOffset: pi.NextOffset,
					Segments: pi.Segments, Records: pi.NextOffset, Bytes: pi.Bytes}
				if pb == nil || *pb != want {
					t.Errorf("partition %d: report %+v, want %+v", pi.Partition, pb, want)
				}
				if pi.Segments < 3 {
					t.Errorf("partition %d has %d segments; the test wants several", pi.Partition, pi.Segments)
				}
			}
			if rep.Bytes != segBytes {
				t.Errorf("Bytes %d, want %d", rep.Bytes, segBytes)
			}
			if len(progress) == 0 || progress[len(progress)-1] != [2]int64{segBytes, segBytes} {
				t.Errorf("progress ends at %v, want [%d %d]", progress[len(progress)-1:], segBytes, segBytes)
			}
			wantGroups := []GroupBackup{{Group: "billing", Topic: "orders", Committed: []int64{7, 0, -1}}}
			if diff := cmp.Diff(wantGroups, rep.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if len(rep.Notes) > 0 {
				t.Errorf("notes: %v", rep.Notes)
			}

			// Files copied as they are.
			srcFiles, dstFiles := treeFiles(t, src), treeFiles(t, dest)
			for _, name := range []string{formatFileName, "topics/orders/topic.json", "topics/idle/topic.json", "kafka/cluster.id", "kafka/producer-ids"} {
				if !bytes.Equal(srcFiles[name], dstFiles[name]) || dstFiles[name] == nil {
					t.Errorf("%s: copy %q, source %q", name, dstFiles[name], srcFiles[name])
				}
			}
			// Segments: the copy holds the source's data byte for byte.
			// Past it, the last segment of each source partition holds
			// the zeros its writer extended it by, which readers take as
			// the end of the data (cursor.zerosToEnd); the copy ends
			// where the data does. Fresh partition.meta files.
			for name, data := range srcFiles {
				if !strings.HasSuffix(name, logExt) {
					continue
				}
				cp, ok := dstFiles[name]
				switch {
				case !ok:
					t.Errorf("%s is not in the copy", name)
				case len(cp) > len(data) || !bytes.Equal(data[:len(cp)], cp):
					t.Errorf("%s differs in the copy", name)
				case !allZero(data[len(cp):]):
					t.Errorf("%s: the copy ends at byte %d, before the source's data does", name, len(cp))
				}
			}
			// Only the pwrite backend writes Buffered frames through a
			// mapping, into zeros extended ahead (mapWrites).
			_, zerosAhead := l.app.(pwriteAppender)
			for _, pi := range info.Partitions {
				rel := filepath.Join("topics", "orders", strconv.Itoa(pi.Partition))
				bases, _ := listSegments(filepath.Join(src, rel))
				for i, base := range bases {
					name := segmentPath(rel, base, logExt)
					zeros := len(srcFiles[name]) - len(dstFiles[name])
					if want := zerosAhead && i == len(bases)-1; want != (zeros > 0) || zeros < 0 {
						t.Errorf("%s: the source goes on for %d bytes past the copy; the test wants zeros past the data of each partition's last segment (with the pwrite backend), and only there", name, zeros)
					}
				}
			}
			for _, pi := range info.Partitions {
				pdir := filepath.Join(dest, "topics", "orders", strconv.Itoa(pi.Partition))
				m, ok, err := readMetaCopy(pdir)
				if err != nil || !ok || m == nil {
					t.Fatalf("partition.meta of the copy: %v %v %v", m, ok, err)
				}
				bases, _ := listSegments(pdir)
				last := bases[len(bases)-1]
				want := checkpoint{boot: currentBootID, base: last, pos: fileSize(t, segmentPath(pdir, last, logExt)), next: pi.NextOffset}
				if cp, ok := m.checkpoint(); !ok || cp != want {
					t.Errorf("partition %d: checkpoint %v (%v), want %v", pi.Partition, cp, ok, want)
				}
				if !allZero(m.mem[:metaCkptOff]) || !allZero(m.mem[metaCkptEnd:]) {
					t.Errorf("partition %d: partition.meta holds more than the checkpoint", pi.Partition)
				}
			}
			for _, p := range []string{"topics/idle/0", "topics/idle/1"} {
				entries, err := os.ReadDir(filepath.Join(dest, p))
				if err != nil || len(entries) != 0 {
					t.Errorf("%s: %v, %v; want an empty directory, as in the source", p, entries, err)
				}
			}

			// The copy is a log with the same topics, records and commits.
			c := openCopy(t, dest)
			for _, name := range []string{"orders", "idle"} {
				a, err1 := l.DescribeTopic(name)
				b, err2 := c.DescribeTopic(name)
				if err1 != nil || err2 != nil || a.ID == "" || a.ID != b.ID || a.Config != b.Config {
					t.Errorf("topic %s: the log's %+v (%v), the copy's %+v (%v)", name, a, err1, b, err2)
				}
			}
			want := bkRecords(t, l, "orders")
			if diff := diffLarge(want, bkRecords(t, c, "orders")); diff != "" {
				t.Errorf("records (-source +copy):\n%s", diff)
			}
			gi, err := c.DescribeGroup("billing")
			if err != nil {
				t.Fatal(err)
			}
			for i, gp := range gi.Topics[0].Partitions {
				if want := []int64{7, 0, -1}[i]; gp.Committed != want {
					t.Errorf("copy: group billing, partition %d: committed %d, want %d", i, gp.Committed, want)
				}
			}

			// It takes appends where the source's data ended, with no
			// recovery and nothing repaired...
			p := mustProducer(t, c, "orders", &ProducerOptions{Partitioner: ManualPartitioner})
			if pos, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte("after")}); err != nil || pos.Offset != info.Partitions[1].NextOffset {
				t.Fatalf("Send to the copy: %+v, %v; want offset %d", pos, err, info.Partitions[1].NextOffset)
			}
			if st := c.Stats(); st.Repairs != 0 || st.RecordsLost != 0 || len(c.Recoveries()) != 0 {
				t.Errorf("the copy was repaired or recovered: %+v, %v", st, c.Recoveries())
			}
			c.Close()
			// ...and after a machine restart (another machine, say) its
			// recovery starts at the copy's checkpoint and cuts nothing.
			setBootIDForTest(t, fakeBootID)
			c = openTest(t, dest, &Options{RetentionInterval: -1})
			p = mustProducer(t, c, "orders", &ProducerOptions{Partitioner: ManualPartitioner})
			if pos, err := p.Send(context.Background(), Record{Partition: 2, Value: []byte("moved")}); err != nil || pos.Offset != info.Partitions[2].NextOffset {
				t.Fatalf("Send to the copy after a restart: %+v, %v", pos, err)
			}
			recs := c.Recoveries()
			if len(recs) != 1 || !recs[0].Reboot || recs[0].CutPos != -1 || recs[0].FramesVerified != 0 || recs[0].LostTo != recs[0].LostFrom {
				t.Errorf("recovery of the copy: %+v", recs)
			}
		})
	}
}

// TestBackupDestination checks what Backup refuses as a destination, and
// that it leaves a refused one as it was.
func TestBackupDestination(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 20)
	ctx := context.Background()
	base := t.TempDir()

	nonEmpty := filepath.Join(base, "full")
	os.Mkdir(nonEmpty, 0o755)
	os.WriteFile(filepath.Join(nonEmpty, "keep"), []byte("mine"), 0o644)
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("mine"), 0o644)
	for _, tc := range []struct {
		name, dest string
		want       []error
		says       string // what the error must tell the user
	}{
		{"not empty", nonEmpty, []error{ErrInvalidArgument}, "is not empty"},
		{"a file", file, []error{ErrInvalidArgument}, "is not a directory"},
		{"inside the log", filepath.Join(src, "topics", "backup"), []error{ErrInvalidArgument}, "inside the log directory"},
		{"the log itself", src, []error{ErrInvalidArgument}, "inside the log directory"},
		{"no parent", filepath.Join(base, "missing", "copy"), []error{fs.ErrNotExist}, "parent directory must exist"},
		{"empty name", "", []error{ErrInvalidArgument}, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := treeFiles(t, base)
			_, err := l.Backup(ctx, tc.dest, nil)
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("Backup(%q): %v, want %v", tc.dest, err, want)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Backup(%q): %q does not say %q", tc.dest, err, tc.says)
			}
			if diff := diffLarge(before, treeFiles(t, base)); diff != "" {
				t.Errorf("destination changed:\n%s", diff)
			}
			if got := leftovers(t, base); len(got) > 0 {
				t.Errorf("left behind: %v", got)
			}
		})
	}

	t.Run("killed backup's leftovers", func(t *testing.T) {
		// An empty destination holding only what a killed backup built in
		// it is taken, and the leftovers are removed.
		dest := filepath.Join(base, "retry")
		os.MkdirAll(filepath.Join(dest, incompleteTag+"123", "topics"), 0o755)
		if _, err := l.Backup(ctx, dest, nil); err != nil {
			t.Fatal(err)
		}
		if got := leftovers(t, dest); len(got) > 0 {
			t.Errorf("left behind: %v", got)
		}
		openCopy(t, dest)
	})

	t.Run("busy", func(t *testing.T) {
		// Two backups into one directory at once: the second is refused.
		dest := filepath.Join(base, "busy")
		os.Mkdir(dest, 0o755)
		f, err := os.Open(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Backup(ctx, dest, nil); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "another backup") {
			t.Errorf("Backup into a directory another backup holds: %v", err)
		}
	})
}

// TestBackupCancel cancels backups part way (by a hook, after the first
// segment): no destination is left that looks like a log, nothing is left
// beside it, and the source is as it was.
func TestBackupCancel(t *testing.T) {
	src := t.TempDir()
	bkSource(t, src, 400).Close() // its checkpoints recorded
	l := openTest(t, src, &Options{RetentionInterval: -1})
	before := treeFiles(t, src)
	for _, mode := range []string{"new directory", "empty directory"} {
		t.Run(mode, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "copy")
			if mode == "empty directory" {
				os.Mkdir(dest, 0o755)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			segments := 0
			backupHook = func(stage, topic string, p int, base int64) {
				if stage == "segment" {
					if segments++; segments == 2 {
						cancel()
					}
				}
			}
			t.Cleanup(func() { backupHook = nil })
			_, err := l.Backup(ctx, dest, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Backup: %v, want context.Canceled", err)
			}
			if got := leftovers(t, base); len(got) > 0 {
				t.Errorf("left beside the destination: %v", got)
			}
			entries, err := os.ReadDir(dest)
			switch {
			case mode == "new directory" && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("destination after the cancel: %v, %v; want none", entries, err)
			case mode == "empty directory" && (err != nil || len(entries) > 0):
				t.Errorf("destination after the cancel: %v, %v; want it empty", entries, err)
			}
			if diff := diffLarge(before, treeFiles(t, src)); diff != "" {
				t.Errorf("the source changed:\n%s", diff)
			}
		})
	}
}

// TestBackupRetention removes segments while a backup runs (from a hook,
// just before the backup opens one): the copy starts after them and is a
// good log holding the rest, and the report says so.
func TestBackupRetention(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Log, string) {
		dir := t.TempDir()
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		mustCreate(t, l, "r", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
		bkProduce(t, l, "r", 1, 0, 900)
		if n := len(retBases(t, l, "r")); n < 5 {
			t.Fatalf("%d segments; the test wants at least 5", n)
		}
		return l, dir
	}
	// keepNewest makes retention keep only the newest n segments.
	keepNewest := func(t *testing.T, l *Log, dir string, n int) {
		pdir := filepath.Join(dir, "topics", "r", "0")
		bases := retBases(t, l, "r")
		var keep int64
		for _, b := range bases[len(bases)-n:] {
			keep += fileSize(t, segmentPath(pdir, b, logExt))
		}
		if err := l.AlterTopic("r", func(c *TopicConfig) { c.RetentionBytes = keep }); err != nil {
			t.Fatal(err)
		}
		if err := l.EnforceRetention(ctx); err != nil {
			t.Fatal(err)
		}
		if got := retBases(t, l, "r"); !slices.Equal(got, bases[len(bases)-n:]) {
			t.Fatalf("retention left %v, want %v", got, bases[len(bases)-n:])
		}
	}

	t.Run("sealed segments", func(t *testing.T) {
		l, dir := setup(t)
		bases := retBases(t, l, "r")
		want := bkRecords(t, l, "r")[0]
		// The first segment is copied; then all but the newest two go.
		backupHook = func(stage, _ string, _ int, base int64) {
			if stage == "segment" && base == bases[1] {
				keepNewest(t, l, dir, 2)
			}
		}
		t.Cleanup(func() { backupHook = nil })
		dest := filepath.Join(t.TempDir(), "copy")
		rep, err := l.Backup(ctx, dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := bases[len(bases)-2]
		pb := rep.Partitions[0]
		if pb.StartOffset != start || pb.NextOffset != int64(len(want)) || pb.SegmentsRemoved != len(bases)-2 || pb.Segments != 2 {
			t.Errorf("report %+v; want offsets %d to %d in 2 segments, %d removed", pb, start, len(want), len(bases)-2)
		}
		if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "retention or DeleteRecords removed") {
			t.Errorf("notes %q", rep.Notes)
		}
		c := openCopy(t, dest)
		if diff := diffLarge(want[start:], bkRecords(t, c, "r")[0]); diff != "" {
			t.Errorf("copy (-want +got):\n%s", diff)
		}
	})

	t.Run("the tail's segment", func(t *testing.T) {
		// The segment the backup's tail is in is sealed and removed
		// before the backup gets to it: every record the plan held is
		// gone, and the copy is an empty partition that goes on at the
		// tail.
		l, dir := setup(t)
		bases := retBases(t, l, "r")
		tail := int64(len(bkRecords(t, l, "r")[0]))
		backupHook = func(stage, _ string, _ int, base int64) {
			if stage == "segment" && base == bases[len(bases)-1] {
				bkProduce(t, l, "r", 1, int(tail), 300) // rolls past it
				keepNewest(t, l, dir, 1)
			}
		}
		t.Cleanup(func() { backupHook = nil })
		dest := filepath.Join(t.TempDir(), "copy")
		rep, err := l.Backup(ctx, dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pb := rep.Partitions[0]; pb.StartOffset != tail || pb.NextOffset != tail || pb.Segments != 1 || pb.SegmentsRemoved != len(bases) {
			t.Errorf("report %+v; want an empty copy at offset %d, %d segments removed", pb, tail, len(bases))
		}
		c := openCopy(t, dest)
		if recs := readAvailable(t, c, "r"); len(recs) != 0 {
			t.Errorf("the copy holds %d records, want none", len(recs))
		}
		p := mustProducer(t, c, "r", nil)
		if pos, err := p.Send(ctx, Record{Value: []byte("x")}); err != nil || pos.Offset != tail {
			t.Errorf("Send to the copy: %+v, %v; want offset %d", pos, err, tail)
		}
	})
}

// TestBackupDamage backs up partitions with damage: inside committed data
// the backup fails with the file and byte and leaves no copy; a torn frame
// that a restart left after the last synced checkpoint, which no writer
// has recovered from yet, is left out of the copy as recovery would cut
// it; so is a dead writer's torn frame.
func TestBackupDamage(t *testing.T) {
	ctx := context.Background()
	// build makes topic "d" with one partition and returns its directory
	// and segments; the Log is closed.
	build := func(t *testing.T, dir string) (string, []diskSeg) {
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		mustCreate(t, l, "d", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
		bkProduce(t, l, "d", 1, 0, 300)
		l.Close()
		pdir := filepath.Join(dir, "topics", "d", "0")
		return pdir, parsePartition(t, pdir, minSegmentBytes)
	}
	backupOf := func(t *testing.T, dir string, opts *BackupOptions) (BackupReport, string, error) {
		l := openTest(t, dir, &Options{RetentionInterval: -1})
		dest := filepath.Join(t.TempDir(), "copy")
		rep, err := l.Backup(ctx, dest, opts)
		return rep, dest, err
	}
	// checkCut checks a backup whose copy ends at frame cut of the last
	// segment last, leaving out the rest, with a note that says why.
	checkCut := func(t *testing.T, dir string, opts *BackupOptions, last diskSeg, cut diskFrame, why string) {
		t.Helper()
		rep, dest, err := backupOf(t, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		from, to := cut.Meta.Base, last.Frames[len(last.Frames)-1].Meta.End()
		if pb := rep.Partitions[0]; pb.NextOffset != from || pb.LeftOut != to-from {
			t.Errorf("report %+v; want the copy to end at offset %d, leaving out %d", pb, from, to-from)
		}
		if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], why) {
			t.Errorf("notes %q, want one saying %q", rep.Notes, why)
		}
		c := openCopy(t, dest)
		if recs := readAvailable(t, c, "d"); int64(len(recs)) != from {
			t.Errorf("the copy holds %d records, want %d", len(recs), from)
		}
	}

	t.Run("committed data", func(t *testing.T) {
		dir := t.TempDir()
		pdir, segs := build(t, dir)
		fr := segs[0].Frames[3]
		path := segmentPath(pdir, segs[0].Base, logExt)
		flipByte(t, path, fr.Pos+60)
		before := treeFiles(t, dir)
		_, dest, err := backupOf(t, dir, nil)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != path || ce.Pos != fr.Pos || ce.Offset != fr.Meta.Base {
			t.Fatalf("Backup: %v; want a *CorruptError at byte %d (offset %d) of %s", err, fr.Pos, fr.Meta.Base, path)
		}
		if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a failed backup left %s: %v", dest, err)
		}
		if got := leftovers(t, filepath.Dir(dest)); len(got) > 0 {
			t.Errorf("left behind: %v", got)
		}
		if diff := diffLarge(before, treeFiles(t, dir)); diff != "" {
			t.Errorf("the source changed:\n%s", diff)
		}
	})

	t.Run("after a restart", func(t *testing.T) {
		// The checkpoint is at the start of the last segment, written
		// before a restart; a frame after it is torn, its commit byte set.
		dir := t.TempDir()
		setBootIDForTest(t, fakeBootID)
		pdir, segs := build(t, dir)
		last := segs[len(segs)-1]
		writeMeta(t, pdir, fakeBootID, last.Base, 0, last.Base)
		setBootIDForTest(t, readBootID())
		fr := last.Frames[2]
		flipByte(t, segmentPath(pdir, last.Base, logExt), fr.Pos+60)
		checkCut(t, dir, nil, last, fr, "machine restarted")

		// Before the checkpoint it is damage.
		dir2 := t.TempDir()
		setBootIDForTest(t, fakeBootID)
		pdir, segs = build(t, dir2)
		last = segs[len(segs)-1]
		writeMeta(t, pdir, fakeBootID, last.Base, 0, last.Base)
		setBootIDForTest(t, readBootID())
		path := segmentPath(pdir, segs[0].Base, logExt)
		flipByte(t, path, segs[0].Frames[1].Pos+60)
		var ce *CorruptError
		if _, _, err := backupOf(t, dir2, nil); !errors.As(err, &ce) || ce.Path != path || ce.Pos != segs[0].Frames[1].Pos {
			t.Errorf("Backup with damage before the checkpoint: %v", err)
		}
	})

	t.Run("crash image", func(t *testing.T) {
		// A snapshot of a log that was running, opened in the same boot:
		// after its checkpoint (this boot's), a page never reached the
		// image, with good frames after it.
		dir := t.TempDir()
		pdir, segs := build(t, dir)
		last := segs[len(segs)-1]
		writeMeta(t, pdir, currentBootID, last.Base, 0, last.Base)
		hole := last.Frames[3]
		path := segmentPath(pdir, last.Base, logExt)
		writeAt(t, path, hole.Pos, make([]byte, 512))
		var ce *CorruptError
		if _, _, err := backupOf(t, dir, nil); !errors.As(err, &ce) || ce.Path != path || ce.Pos != hole.Pos {
			t.Fatalf("Backup without CrashImage: %v; want the hole as damage", err)
		}
		checkCut(t, dir, &BackupOptions{CrashImage: true}, last, hole, "not shut down")
	})

	t.Run("a dead writer's torn frame", func(t *testing.T) {
		// The last frame committed but torn, nothing after it, and
		// partition.meta saying synced up to the frame before: what a
		// writer that died mid-append (its commit byte landing in an
		// injected fault) leaves; its next writer cuts it.
		dir := t.TempDir()
		pdir, segs := build(t, dir)
		last := segs[len(segs)-1]
		fr := last.Frames[len(last.Frames)-1]
		diedAt(t, pdir, last.Base, fr.Pos, fr.Meta.Base)
		flipByte(t, segmentPath(pdir, last.Base, logExt), fr.Pos+60)
		checkCut(t, dir, nil, last, fr, "writer that died")
	})
}

// TestBackupReadOnlySource backs up a log through a read-only bind mount
// (as root) or a tree this process may only read, while a producer
// appends to it through a writable path.
func TestBackupReadOnlySource(t *testing.T) {
	dir := t.TempDir()
	rw := bkSource(t, dir, 200)
	ro := dir
	if os.Geteuid() == 0 {
		ro = t.TempDir()
		if out, err := exec.Command("mount", "--bind", dir, ro).CombinedOutput(); err != nil {
			t.Skipf("mount --bind: %v: %s (root, and no read-only mount to test with)", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", ro).Run() })
		if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
			t.Fatalf("remount read-only: %v: %s", err, out)
		}
	} else {
		chmodTree(t, dir, 0o444, 0o555)
		t.Cleanup(func() { chmodTree(t, dir, 0o644, 0o755) })
	}
	l := openTest(t, ro, &Options{RetentionInterval: -1})
	if err := unix.Access(filepath.Join(ro, "topics"), unix.W_OK); err == nil {
		t.Fatal("the source is writable")
	}
	want := bkRecords(t, l, "orders")
	if os.Geteuid() == 0 {
		// Appends through the writable path while the backup runs go past
		// its tail.
		backupHook = func(stage, _ string, _ int, _ int64) {
			if stage == "planned" {
				bkProduce(t, rw, "orders", 3, 200, 50)
			}
		}
		t.Cleanup(func() { backupHook = nil })
	}
	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := l.Backup(context.Background(), dest, nil); err != nil {
		t.Fatal(err)
	}
	c := openCopy(t, dest)
	if diff := diffLarge(want, bkRecords(t, c, "orders")); diff != "" {
		t.Errorf("copy (-want +got):\n%s", diff)
	}
	if gi, err := c.DescribeGroup("billing"); err != nil || gi.Topics[0].Partitions[0].Committed != 7 {
		t.Errorf("copy: group billing: %+v, %v", gi, err)
	}
}

// TestBackupTopicDeleted deletes a topic while the backup copies it: the
// copy leaves it out, with its group's offsets, and says so.
func TestBackupTopicDeleted(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 100)
	backupHook = func(stage, topic string, p int, _ int64) {
		if stage == "segment" && topic == "orders" && p == 1 {
			backupHook = nil
			if err := l.DeleteTopic("orders"); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { backupHook = nil })
	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Topics, []string{"idle"}) || len(rep.Groups) != 0 || len(rep.Partitions) != 2 {
		t.Errorf("report: topics %v, groups %v, %d partitions; want idle alone", rep.Topics, rep.Groups, len(rep.Partitions))
	}
	if len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "topic orders: deleted") || !strings.Contains(rep.Notes[1], "group billing") {
		t.Errorf("notes %q", rep.Notes)
	}
	c := openCopy(t, dest)
	if names, err := c.Topics(); err != nil || !slices.Equal(names, []string{"idle"}) {
		t.Errorf("the copy's topics: %v, %v", names, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "topics", "orders")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("topics/orders in the copy: %v", err)
	}
}

// TestBackupOffsetsCopy writes an offsets file's copy from a plan holding
// a commit with applied resets and a pending reset request, and reads it
// back through the offsets file's own reader.
func TestBackupOffsetsCopy(t *testing.T) {
	dir := t.TempDir()
	gp := groupPlan{group: "g", topic: "t",
		commits:  []commitState{{seq: 9, offset: 42, time: 1234, applied: 3}, {offset: noCommit}, {seq: 1, offset: 5, time: 99}},
		requests: []resetRequest{{seq: 4, offset: 10}, {}, {}},
	}
	if err := writeGroupCopy(dir, gp, 3); err != nil {
		t.Fatal(err)
	}
	o, err := openOffsets(dir, "g", "t", 3, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	for p, want := range gp.commits {
		st, err := o.readCommit(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.offset != want.offset || st.time != want.time || st.applied != want.applied {
			t.Errorf("partition %d: commit %+v, want %+v", p, st, want)
		}
		if req, err := o.readRequest(p); err != nil || req != gp.requests[p] {
			t.Errorf("partition %d: request %+v, %v; want %+v", p, req, err, gp.requests[p])
		}
	}
}

// TestBackupBeingDeleted backs up a log in which DeleteTopic has flagged
// a topic's partitions (its intent recorded) and DeleteGroup a group's
// offsets file, neither
// removed yet (as when the process deleting them is stopped between the
// two steps; a DeleteGroup that stopped holds the file's admin lock, one
// that died does not: TestBackupDeletedWordLeftBehind): the copy holds
// neither.
func TestBackupBeingDeleted(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 50)
	ctx := context.Background()
	for _, g := range []string{"kept", "leaving"} {
		if _, err := l.ResetGroupOffsets(ctx, g, "idle", AtOffset(0), &ResetOptions{Partitions: []int{0}}); err != nil {
			t.Fatal(err)
		}
	}
	leaveDeleteIntent(t, l, "orders")
	if err := markDeleted(ctx, l.topicDir("orders")); err != nil {
		t.Fatal(err)
	}
	o, err := openOffsets(src, "leaving", "idle", -1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.lf.Lock(ctx, adminLockOff); err != nil {
		t.Fatal(err)
	}
	o.ctlWord(ctlDeadOff).Store(1)

	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(ctx, dest, nil)
	o.close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Topics, []string{"idle"}) || len(rep.Partitions) != 2 {
		t.Errorf("report: topics %v, %d partitions; want idle alone", rep.Topics, len(rep.Partitions))
	}
	var groups []string
	for _, g := range rep.Groups {
		groups = append(groups, g.Group+"/"+g.Topic)
	}
	if !slices.Equal(groups, []string{"kept/idle"}) {
		t.Errorf("groups copied: %v; want kept/idle alone", groups)
	}
	if len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "topic orders: deleted") || !strings.Contains(rep.Notes[1], "group billing") {
		t.Errorf("notes %q", rep.Notes)
	}
	c := openCopy(t, dest)
	if names, err := c.Topics(); err != nil || !slices.Equal(names, []string{"idle"}) {
		t.Errorf("the copy's topics: %v, %v", names, err)
	}
	if _, err := os.Stat(offsetsPath(dest, "leaving", "idle")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy holds the offsets of group leaving: %v", err)
	}
}

// TestBackupStrayDeleteMark backs up a topic one of whose partitions has
// its deleted word set with no delete intent (damage: TestStrayDeleteMark),
// and another whose DeleteTopic died before it marked the topic, leaving
// its intent: both are copied whole, the first with a note naming the
// damage, and the copy holds neither the mark nor the intent, so its
// topics are whole and no damage to the copy can delete them. The source
// is left as it was.
func TestBackupStrayDeleteMark(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 20)
	setDeletedWord(t, l, "orders", 1)
	leaveDeleteIntent(t, l, "idle")

	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Topics, []string{"idle", "orders"}) || len(rep.Partitions) != 5 {
		t.Errorf("report: topics %v, %d partitions; want idle and orders whole", rep.Topics, len(rep.Partitions))
	}
	marked := filepath.Join(partDir(l, "orders", 1), metaFileName)
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], marked) || !strings.Contains(rep.Notes[0], "copied") {
		t.Errorf("notes %q; want one naming %s", rep.Notes, marked)
	}
	c := openCopy(t, dest)
	if recs := readAvailable(t, c, "orders"); len(recs) != 60 {
		t.Errorf("the copy of orders holds %d records, want 60", len(recs))
	}
	if _, err := os.Stat(c.intentPath("idle")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy holds the intent of a DeleteTopic: %v", err)
	}
	if m, err := metaDeleted(filepath.Join(partDir(c, "orders", 1), metaFileName)); err != nil || m {
		t.Errorf("the copy's partition.meta marked deleted: %v, %v", m, err)
	}
	if m, err := metaDeleted(marked); err != nil || !m {
		t.Errorf("the source's mark: %v, %v; want it left for Repair", m, err)
	}
}

// TestBackupDeletedWordLeftBehind backs up a group whose offsets file has
// its deleted word set while no DeleteGroup is at work (one died between
// setting it and removing the file, or the word is damage): the file
// stays, commits and all, as joiners and admin calls find
// (TestDeletedWordLeftBehind), so the copy holds its commits, and a member
// of the copy resumes from them. The backup writes nothing: the word is
// left for the source's next joiner to clear. Backup took the word for a
// DeleteGroup's and left the commits out.
func TestBackupDeletedWordLeftBehind(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 50)
	o, err := openOffsets(src, "billing", "orders", -1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	o.ctlWord(ctlDeadOff).Store(1)
	o.close()

	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []GroupBackup{{Group: "billing", Topic: "orders", Committed: []int64{7, 0, -1}}}
	if diff := cmp.Diff(want, rep.Groups); diff != "" {
		t.Errorf("groups copied (-want +got):\n%s", diff)
	}
	c := openCopy(t, dest)
	gi, err := c.DescribeGroup("billing")
	if err != nil {
		t.Fatal(err)
	}
	var committed []int64
	for _, gp := range gi.Topics[0].Partitions {
		committed = append(committed, gp.Committed)
	}
	if !slices.Equal(committed, []int64{7, 0, -1}) {
		t.Errorf("the copy's commits: %v, want [7 0 -1]", committed)
	}
	m := mustConsumer(t, c, "orders", &ConsumerOptions{Group: "billing"})
	recs, err := m.TryPoll()
	if err != nil {
		t.Fatal(err)
	}
	first := map[int]int64{}
	for _, r := range recs {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r.Offset
		}
	}
	if o0, ok0 := first[0]; !ok0 || o0 != 7 {
		t.Errorf("a member of the copy resumed partition 0 at %d (%v), want 7", o0, ok0)
	}
	if o1, ok1 := first[1]; !ok1 || o1 != 0 {
		t.Errorf("a member of the copy resumed partition 1 at %d (%v), want 0", o1, ok1)
	}

	o, err = openOffsets(src, "billing", "orders", -1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	if !o.deleted() {
		t.Error("the backup cleared the source's deleted word")
	}
}
