package regfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-log/runnel/internal/fifotest"
)

// TestOpenDir: a directory, or a link to one, opens; anything else at
// the name fails at once, a FIFO too, whose plain open for reading waits
// for a writer. SyncDir follows the same rule.
func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	fifotest.Replace(t, fifo)
	socket := filepath.Join(dir, "socket")
	fifotest.ReplaceSocket(t, socket)
	for _, tc := range []struct {
		name, path string
		ok         bool
	}{
		{"directory", dir, true},
		{"link to a directory", link, true},
		{"regular file", file, false},
		{"FIFO", fifo, false},
		{"socket", socket, false},
		{"missing", filepath.Join(dir, "missing"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fifotest.Returns(t, "OpenDir", fifo, func() error {
				d, err := OpenDir(tc.path)
				if err == nil {
					d.Close()
				}
				return err
			})
			if (err == nil) != tc.ok {
				t.Errorf("OpenDir(%s): %v, want ok %v", tc.path, err, tc.ok)
			}
			err = fifotest.Returns(t, "SyncDir", fifo, func() error { return SyncDir(tc.path) })
			if (err == nil) != tc.ok {
				t.Errorf("SyncDir(%s): %v, want ok %v", tc.path, err, tc.ok)
			}
		})
	}
}
