package runnel

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestTrashForeignEntries: what runnel did not make in trash/ — a file,
// a FIFO and a link named as graves, a directory named otherwise — is
// noted by Verify and left alone by the sweeps at Open and Repair, as
// trash.go promises; a file or a FIFO named as a grave was passed over
// without a word.
func TestTrashForeignEntries(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "g", TopicConfig{Partitions: 1})
	if err := l.DeleteTopic("g"); err != nil { // makes trash/ and its lock file
		t.Fatal(err)
	}
	trash := filepath.Join(dir, trashDirName)
	foreign := []string{"topic-7", "topic-8", "topic-9", "notes"}
	if err := os.WriteFile(filepath.Join(trash, "topic-7"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(trash, "topic-8"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(trash, "topic-9")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(trash, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	var rep VerifyReport
	err := inTime(t, "Verify", func() (err error) {
		rep, err = l.Verify(context.Background(), "", nil)
		return err
	})
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v, %v; want no problem", rep.Problems, err)
	}
	for _, name := range foreign {
		rel := filepath.Join(trashDirName, name) + ": not a grave runnel made"
		if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, rel) }) {
			t.Errorf("Verify's notes %q do not name %s", rep.Notes, name)
		}
	}
	err = inTime(t, "Open and Repair", func() error {
		l2 := openTest(t, dir, nil)
		_, err := l2.Repair(context.Background(), "", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range foreign {
		if _, err := os.Lstat(filepath.Join(trash, name)); err != nil {
			t.Errorf("trash/%s after Open and Repair: %v; want it left alone", name, err)
		}
	}
}
