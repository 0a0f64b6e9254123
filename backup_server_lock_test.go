package runnel

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBackupServerStateLockHeld: a Kafka server stopped (SIGSTOP) or hung
// inside its producer-id reservation holds kafka/producer-ids' flock for
// as long. A Backup waits for it only while its context lasts, where it
// waited for good, and leaves no destination; once the lock is let go, a
// Backup copies the counter.
func TestBackupServerStateLockHeld(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 20)
	lock, err := os.Open(filepath.Join(src, serverStateDir, "producer-ids"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// Another open file description: as another process's, it conflicts.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backupHook = func(stage, _ string, _ int, _ int64) {
		if stage == "server state" {
			cancel()
		}
	}
	t.Cleanup(func() { backupHook = nil })
	dest := filepath.Join(t.TempDir(), "copy")
	err = inTime(t, "Backup", func() error {
		_, err := l.Backup(ctx, dest, nil)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Backup while a server holds producer-ids' lock: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destination after the cancel: %v; want none", err)
	}

	backupHook = nil
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Backup(context.Background(), dest, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, serverStateDir, "producer-ids")); err != nil || string(got) != "00000000000000003000\n" {
		t.Errorf("the copy's producer-ids: %q, %v", got, err)
	}
}
