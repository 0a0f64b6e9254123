package runnel

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/runnel-log/runnel/internal/regfile"
)

// Where a backup goes (backup.go): a new directory, built under another
// name and renamed into place, so that a copy is never found half made.

// incompleteTag names a directory in which a backup is being built:
// DEST.incomplete-* beside DEST, or DEST/.incomplete-* inside it.
const incompleteTag = ".incomplete-"

// backupDest is where one backup is built and where it goes.
type backupDest struct {
	final string // the directory asked for
	build string // where the copy is built
	// inside: final existed, empty, and the copy is built in a directory
	// inside it (which works where final is a mount point, or its parent
	// is not writable); its entries are moved up at the end. lock holds
	// final's flock meanwhile, so that two backups never build into one
	// directory at once.
	inside bool
	lock   *os.File
}

// prepareBackupDest checks dest, the destination of a backup of the log
// in src, and makes the directory to build the copy in. dest must not
// exist (its parent must), or be an empty directory; it must not be inside
// src.
func prepareBackupDest(src, dest string) (*backupDest, error) {
	if dest == "" {
		return nil, fmt.Errorf("%w: backup destination is empty", ErrInvalidArgument)
	}
	final, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("runnel: backup: %w", err)
	}
	if err := checkOutside(src, final); err != nil {
		return nil, err
	}
	st, err := os.Stat(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		build, err := makeBuildDir(filepath.Dir(final), filepath.Base(final)+incompleteTag)
		if err != nil {
			return nil, fmt.Errorf("runnel: backup: %w", err)
		}
		return &backupDest{final: final, build: build}, nil
	case err != nil:
		return nil, fmt.Errorf("runnel: backup: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("%w: backup destination %s exists and is not a directory", ErrInvalidArgument, final)
	}
	return buildInside(final)
}

// buildInside prepares to build the copy inside final, an existing
// directory that must be empty but for what a killed backup left there.
func buildInside(final string) (*backupDest, error) {
	f, err := regfile.OpenDir(final)
	if err != nil {
		return nil, fmt.Errorf("runnel: backup: %w", err)
	}
	d := &backupDest{final: final, inside: true, lock: f}
	fail := func(err error) (*backupDest, error) {
		f.Close()
		return nil, err
	}
	if err := flockNoWait(f); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fail(fmt.Errorf("%w: another backup is being made into %s", ErrInvalidArgument, final))
		}
		return fail(fmt.Errorf("runnel: backup: lock %s: %w", final, err))
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fail(fmt.Errorf("runnel: backup: %w", err))
	}
	for _, name := range names {
		if !strings.HasPrefix(name, incompleteTag) {
			return fail(fmt.Errorf("%w: backup destination %s is not empty", ErrInvalidArgument, final))
		}
	}
	// Under the flock, a backup's directory is a dead one's.
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(final, name)); err != nil {
			return fail(fmt.Errorf("runnel: backup: %w", err))
		}
	}
	if d.build, err = makeBuildDir(final, incompleteTag); err != nil {
		return fail(fmt.Errorf("runnel: backup: %w", err))
	}
	return d, nil
}

// makeBuildDir makes a new directory in dir named prefix and a random
// number. Unlike os.MkdirTemp's, its mode is the umask's, as Open's
// directories are: the copy may be a log that other users share.
func makeBuildDir(dir, prefix string) (string, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := os.Mkdir(name, 0o755)
		if err == nil || !errors.Is(err, fs.ErrExist) || try == 100 {
			return name, err
		}
	}
}

func flockNoWait(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// checkOutside refuses a destination inside the log directory src (or src
// itself): the copy would land in what it copies.
func checkOutside(src, final string) error {
	srcReal, err := filepath.Abs(src)
	if err == nil {
		srcReal, err = filepath.EvalSymlinks(srcReal)
	}
	if err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	// final may not exist yet; its parent must.
	parent, err := filepath.EvalSymlinks(filepath.Dir(final))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("runnel: backup: %s: the destination's parent directory must exist: %w", final, err)
	}
	if err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	finalReal := filepath.Join(parent, filepath.Base(final))
	if real, err := filepath.EvalSymlinks(finalReal); err == nil {
		finalReal = real
	}
	if rel, err := filepath.Rel(srcReal, finalReal); err == nil && filepath.IsLocal(rel) || finalReal == srcReal {
		return fmt.Errorf("%w: backup destination %s is inside the log directory %s", ErrInvalidArgument, final, src)
	}
	return nil
}

// finish puts the copy, synced, in place: a rename of the directory it was
// built in, or a move of its entries up into final, runnel.format last (a
// directory without it is no log yet), and a sync of the directory that
// got them.
func (d *backupDest) finish() error {
	if !d.inside {
		if err := os.Rename(d.build, d.final); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		if err := syncDir(filepath.Dir(d.final)); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
		return nil
	}
	defer d.lock.Close()
	entries, err := os.ReadDir(d.build)
	if err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.SortStableFunc(names, func(a, b string) int {
		switch {
		case a == formatFileName:
			return 1
		case b == formatFileName:
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		if err := os.Rename(filepath.Join(d.build, name), filepath.Join(d.final, name)); err != nil {
			return fmt.Errorf("runnel: backup: %w", err)
		}
	}
	if err := os.Remove(d.build); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	if err := syncDir(d.final); err != nil {
		return fmt.Errorf("runnel: backup: %w", err)
	}
	return nil
}

// abort removes what a failed backup built.
func (d *backupDest) abort() error {
	err := os.RemoveAll(d.build)
	if d.lock != nil {
		d.lock.Close()
	}
	if err != nil {
		return fmt.Errorf("runnel: backup: remove the unfinished copy: %w", err)
	}
	return nil
}
