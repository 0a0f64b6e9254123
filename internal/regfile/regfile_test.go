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

// A FIFO, a directory and a socket are refused at once, however they
// are opened (where the open itself fails: a directory or a FIFO opened
// for writing, a socket), with an error naming the file and what is
// there; a regular file opens and is left blocking, as os.OpenFile
// leaves it.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fifotest.ReplaceSocket(t, sock)
	for _, c := range []struct {
		path string
		flag int
		want string
	}{
		{fifo, os.O_RDONLY, "named pipe"},
		{fifo, os.O_RDWR, "named pipe"},
		{fifo, os.O_RDWR | os.O_CREATE, "named pipe"},
		{fifo, os.O_WRONLY, "named pipe"},
		{dir, os.O_RDONLY, "directory"},
		{dir, os.O_RDWR, "directory"},
		{dir, os.O_RDWR | os.O_CREATE, "directory"},
		{sock, os.O_RDONLY, "socket"},
		{sock, os.O_RDWR | os.O_CREATE, "socket"},
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
	// O_EXCL says what it says of any file there, as os.OpenFile does.
	if _, err := Open(fifo, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on a FIFO: %v, want fs.ErrExist", err)
	}
}

// WriteFile writes a regular file whole, and refuses a FIFO at once,
// whose open for writing waits for a reader.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	for _, data := range []string{"longer first", "short"} {
		if err := WriteFile(reg, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(reg); err != nil || string(got) != data {
			t.Errorf("after WriteFile(%q): %q, %v", data, got, err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	fifotest.Replace(t, fifo)
	err := fifotest.Returns(t, "WriteFile", fifo, func() error { return WriteFile(fifo, []byte("x"), 0o644) })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("WriteFile of a FIFO: %v, want ErrNotRegular", err)
	}
}
