package runnel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-log/runnel/internal/fifotest"
)

// TestSyncDirRefusesNonDirectory: syncDir syncs a directory, or a link
// to one, and fails at once on anything else at the name: a FIFO, whose
// plain open for reading waited for a writer for good, and a regular
// file, which it synced as if it were the directory.
func TestSyncDirRefusesNonDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := syncDir(dir); err != nil {
		t.Errorf("syncDir of a directory: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(link); err != nil {
		t.Errorf("syncDir of a link to a directory: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(file); err == nil {
		t.Errorf("syncDir of a regular file: no error")
	}
	fifo := filepath.Join(dir, "fifo")
	fifotest.Replace(t, fifo)
	if err := fifotest.Returns(t, "syncDir", fifo, func() error { return syncDir(fifo) }); err == nil {
		t.Errorf("syncDir of a FIFO: no error")
	}
}
