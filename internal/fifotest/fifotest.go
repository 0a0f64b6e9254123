// Package fifotest puts FIFOs (and sockets) where runnel's files should
// be, for the tests of runnel and of its Kafka server that show a call
// meeting one fails at once rather than waiting for a writer for good.
package fifotest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Wait bounds how long a call that meets a FIFO may take before the test
// says it is still waiting: far longer than any such call takes on a
// busy machine, so that only a call stuck in an open fails.
const Wait = 30 * time.Second

// Replace puts a FIFO at path, in place of what was there, if anything
// (and path's directory, if missing).
func Replace(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReplaceSocket puts a Unix socket at path, in place of what was there,
// if anything: a file whose open fails (ENXIO on Linux) rather than
// opening something that is not a regular file. It is bound in a
// directory of its own and renamed to path, which may be longer than a
// socket's address can be.
func ReplaceSocket(t testing.TB, path string) {
	t.Helper()
	tmp, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	bound := filepath.Join(tmp, "s")
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: bound}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bound, path); err != nil {
		t.Fatal(err)
	}
}

// Returns runs op and returns its error, failing the test if op is still
// waiting after Wait, with the FIFO at fifo. Then a reader and a writer
// come and go at the FIFO, so that an open waiting for either returns
// and the test binary is not left with it.
func Returns(t testing.TB, what, fifo string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-time.After(Wait):
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatalf("%s: still waiting after %v, with a FIFO at %s", what, Wait, fifo)
		return nil
	}
}
