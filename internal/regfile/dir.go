package regfile

import (
	"fmt"
	"os"
	"syscall"
)

// OpenDir opens the directory at path (a symbolic link to one is
// followed) for reading, and fails at once on anything else there: it
// opens with O_DIRECTORY, which the system checks before the open of a
// FIFO could wait for a writer, as a plain os.Open of one would, for
// good.
func OpenDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// SyncDir makes the creation, removal or renaming of entries in the
// directory dir durable.
func SyncDir(dir string) error {
	d, err := OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
