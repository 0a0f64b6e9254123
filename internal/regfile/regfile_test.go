package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runnel-log/runnel/internal/fifotest"
	"golang.org/x/sys/unix"
)

// A FIFO, for reading or for both, and a directory are refused at once,
// with an error naming the file and what is there; a regular file opens
// and is left blocking, as os.OpenFile leaves it.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		flag int
		want string
	}{
		{fifo, os.O_RDONLY, "named pipe"},
		{fifo, os.O_RDWR, "named pipe"},
		{fifo, os.O_RDWR | os.O_CREATE, "named pipe"},
		{dir, os.O_RDONLY, "directory"},
	} {
		err := fifotest.Returns(t, "Open", c.path, func() error {
			f, err := Open(c.path, c.flag, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		})
		var pe *fs.PathError
		if !errors.Is(err, ErrNotRegular) || !errors.As(err, &pe) || pe.Path != c.path || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s, %#x): %v, want a PathError naming it, ErrNotRegular, %q", c.path, c.flag, err, c.want)
		}
	}

	reg := filepath.Join(dir, "reg")
	f, err := Open(reg, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Errorf("a regular file opened with O_NONBLOCK left set (flags %#x)", fl)
	}
	if _, err := Open(filepath.Join(dir, "missing"), os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
