package runnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// segmentNameLog makes a log of one partition holding five records in
// segment 0, closed, and returns its directory and the partition's.
func segmentNameLog(t *testing.T) (dir, pdir string) {
	t.Helper()
	dir = t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		if _, err := p.Send(context.Background(), Record{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, partDir(l, "t", 0)
}

// TestSegmentNameNotRunnels: a file whose name spells a segment's base
// otherwise than runnel writes it (+0000000000000000003.log, a copy of
// segment 0) is no segment. Taken for segment 3, it sent every reader to
// 00000000000000000003.log, which is not there: DescribeTopic, a
// Consumer's seek to the end and Verify took it for a segment retention
// was removing and listed again, for good, at full speed.
func TestSegmentNameNotRunnels(t *testing.T) {
	dir, pdir := segmentNameLog(t)
	data, err := os.ReadFile(segmentPath(pdir, 0, logExt))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "+0000000000000000003"+logExt), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	var info TopicInfo
	err = inTime(t, "DescribeTopic", func() (err error) {
		info, err = l.DescribeTopic("t")
		return err
	})
	if err != nil || info.Partitions[0].NextOffset != 5 || info.Partitions[0].Segments != 1 {
		t.Fatalf("DescribeTopic: %+v, %v; want 5 records in 1 segment", info.Partitions, err)
	}
	if got := readAll(t, l, "t", 5, nil); string(got[4].Value) != "e" {
		t.Errorf("read %q last, want e", got[4].Value)
	}
	var rep VerifyReport
	err = inTime(t, "Verify", func() (err error) {
		rep, err = l.Verify(context.Background(), "", nil)
		return err
	})
	if err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %v; want no problem", rep, err)
	}
}

// TestSegmentNameLeadsNowhere: a segment's name that leads to no file (a
// symbolic link whose target is gone: a disk not mounted, say) is
// damage, reported with its path, where a reader took it for a segment
// retention was removing and looked again for good.
func TestSegmentNameLeadsNowhere(t *testing.T) {
	dir, pdir := segmentNameLog(t)
	dangling := segmentPath(pdir, 3, logExt)
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	err := inTime(t, "DescribeTopic", func() error {
		_, err := l.DescribeTopic("t")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), dangling) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DescribeTopic: %v, want an error naming %s", err, dangling)
	}
	err = inTime(t, "a Consumer starting at the end", func() error {
		c, err := l.Consumer("t", &ConsumerOptions{Start: Latest})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.TryPoll()
		return err
	})
	if err == nil || !strings.Contains(err.Error(), dangling) {
		t.Errorf("a Consumer starting at the end: %v, want an error naming %s", err, dangling)
	}
	var rep VerifyReport
	err = inTime(t, "Verify", func() (err error) {
		rep, err = l.Verify(context.Background(), "", nil)
		return err
	})
	if err != nil || !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Path == dangling && p.Kind == ProblemCorrupt }) {
		t.Errorf("Verify: %v, %v; want a problem naming %s", rep.Problems, err, dangling)
	}
	if len(rep.Notes) > 0 {
		t.Errorf("Verify's notes: %q, want none (the name is not a segment retention removed)", rep.Notes)
	}
}

// TestSegmentNameLeadsNowhereBackupDump: a segment in the middle of a
// partition whose name leads to no file fails a Backup, with its path,
// and Dump shows it: Backup took it for one retention had removed,
// dropped the segments before it from the copy and said retention did,
// and Dump skipped it without a word.
func TestSegmentNameLeadsNowhereBackupDump(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: 64 << 10})
	p := mustProducer(t, l, "t", nil)
	for range 8 {
		if _, err := p.Send(context.Background(), Record{Value: make([]byte, 40<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pdir := partDir(l, "t", 0)
	bases, err := listSegments(pdir)
	if err != nil || len(bases) < 3 {
		t.Fatalf("segments %v, %v; want 3 or more", bases, err)
	}
	dangling := segmentPath(pdir, bases[1], logExt)
	if err := os.Remove(dangling); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	rep, err := l.Backup(context.Background(), filepath.Join(t.TempDir(), "copy"), nil)
	if err == nil || !strings.Contains(err.Error(), dangling) {
		t.Errorf("Backup: %v (notes %q), want an error naming %s", err, rep.Notes, dangling)
	}
	shown := false
	for f, err := range l.Dump("t", 0, 0) {
		if err != nil {
			t.Fatalf("Dump: %v", err)
		}
		shown = shown || f.Path == dangling && f.Problem != ""
	}
	if !shown {
		t.Errorf("Dump did not show %s", dangling)
	}
}
