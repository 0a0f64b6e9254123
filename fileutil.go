package runnel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/runnel-log/runnel/internal/regfile"
)

// openRegular is os.OpenFile for a file of the log's directory, by
// regfile.Open's rule: whatever is there but a regular file (a FIFO,
// which an open for reading would wait on for good, a directory, a
// device) is damage, a *CorruptError naming the file and what it is,
// found without waiting.
func openRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := regfile.Open(path, flag, perm)
	var pe *fs.PathError
	if errors.Is(err, regfile.ErrNotRegular) && errors.As(err, &pe) {
		return nil, &CorruptError{Path: pe.Path, Pos: -1, Offset: -1, Err: pe.Err}
	}
	return f, err
}

// openRegularRead is os.Open by openRegular's rule.
func openRegularRead(path string) (*os.File, error) {
	return openRegular(path, os.O_RDONLY, 0)
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix: write a temp file, fsync it, rename
// it over path, fsync the directory so the rename itself is durable.
func writeFileAtomic(path string, data []byte) error {
	return writeFileAtomicSteps(path, data, nil)
}

// writeFileAtomicSteps is writeFileAtomic calling step, if not nil, after
// each of its durable steps: "written" (the temporary file synced),
// "renamed", "synced" (the directory). Crash tests stop a process there.
func writeFileAtomicSteps(path string, data []byte, step func(string)) error {
	if step == nil {
		step = func(string) {}
	}
	dir := filepath.Dir(path)
	tmp, err := writeTempSynced(dir, "."+filepath.Base(path)+".tmp-*", data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op after the rename
	step("written")
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	step("renamed")
	if err := syncDir(dir); err != nil {
		return err
	}
	step("synced")
	return nil
}

// writeTempSynced writes data to a new temporary file in dir, readable by
// everyone who may share the log (CreateTemp makes it 0600), fsyncs and
// closes it, and returns its name. The caller links or renames it into
// place and removes the name it is left with.
func writeTempSynced(dir, pattern string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = tmp.Chmod(0o644)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir makes the creation, removal or renaming of entries in dir
// durable, by regfile.SyncDir's rule: anything but a directory at dir (a
// FIFO, whose plain open would wait for a writer) fails at once.
func syncDir(dir string) error {
	observeSync(dir, syncDirectory, false, nil)
	err := regfile.SyncDir(dir)
	observeSync(dir, syncDirectory, true, err)
	return err
}

// sameFile reports whether two open files are one file.
func sameFile(a, b *os.File) (bool, error) {
	sa, err := a.Stat()
	if err != nil {
		return false, err
	}
	sb, err := b.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// errFileTooLarge says a small file (readSmallFile) is larger than any
// this package writes: damage, or not the file it should be.
var errFileTooLarge = errors.New("larger than any runnel writes")

// readSmallFile reads a file this package writes small (the format file,
// a topic's topic.json) and fails with errFileTooLarge past max bytes:
// what the file's size, or an endless file where it should be, says
// never decides the allocation. Anything but a regular file there is
// openRegular's *CorruptError.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := openRegularRead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: over %d bytes, %w", path, max, errFileTooLarge)
	}
	return data, nil
}

// Bounds of readSmallFile's files, far above what is written there.
const (
	maxFormatFileBytes = 4 << 10
	maxTopicFileBytes  = 1 << 20
)
