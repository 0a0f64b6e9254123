package runnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-log/runnel/internal/fifotest"
)

// TestBackupServerStateLinks: a file of kafka/ that is a symbolic link
// to a regular file (docs/FORMAT.md allows one, as for every file of the
// directory) is copied as the regular file it leads to, as a linked
// segment is; one that leads nowhere, or to something other than a
// regular file, fails the backup with a *CorruptError naming it, at
// once. Backup passed over every link there, and over a FIFO at
// kafka/cluster.id, leaving the copy without the server's cluster id.
func TestBackupServerStateLinks(t *testing.T) {
	const clusterID = "AAAAAAAAAAAAAAAAAAAAAA\n"
	for _, tc := range []struct {
		name string
		put  func(t *testing.T, path string) // puts something at kafka/cluster.id
		ok   bool
	}{
		{"link to a regular file", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "cluster.id")
			if err := os.WriteFile(target, []byte(clusterID), 0o644); err != nil {
				t.Fatal(err)
			}
			symlink(t, target, path)
		}, true},
		{"link that leads nowhere", func(t *testing.T, path string) {
			symlink(t, filepath.Join(t.TempDir(), "gone"), path)
		}, false},
		{"link to a FIFO", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "fifo")
			fifotest.Replace(t, target)
			symlink(t, target, path)
		}, false},
		{"link to a directory", func(t *testing.T, path string) {
			symlink(t, t.TempDir(), path)
		}, false},
		{"FIFO", func(t *testing.T, path string) { fifotest.Replace(t, path) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
			path := filepath.Join(dir, serverStateDir, "cluster.id")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.put(t, path)
			dest := filepath.Join(t.TempDir(), "copy")
			resolved, _ := filepath.EvalSymlinks(path)
			err := fifotest.Returns(t, "Backup", resolved, func() error {
				_, err := l.Backup(context.Background(), dest, nil)
				return err
			})
			if !tc.ok {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path {
					t.Fatalf("Backup: %v; want a *CorruptError naming %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cp := filepath.Join(dest, serverStateDir, "cluster.id")
			st, err := os.Lstat(cp)
			if err != nil || !st.Mode().IsRegular() {
				t.Fatalf("the copy's %s: %v, %v; want a regular file", cp, st, err)
			}
			if data, _ := os.ReadFile(cp); string(data) != clusterID {
				t.Errorf("the copy's cluster.id holds %q, want %q", data, clusterID)
			}
		})
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// TestBackupServerStateLinkedDirs: the server's directories in kafka/
// (groups/, producers/), which a backup does not copy, are passed over
// when they are symbolic links to directories too (moved to another
// disk, say), as they were before links there were followed: the backup
// succeeds, with the server's cluster id and without those directories.
func TestBackupServerStateLinkedDirs(t *testing.T) {
	const clusterID = "AAAAAAAAAAAAAAAAAAAAAA\n"
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	state := filepath.Join(dir, serverStateDir)
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "cluster.id"), []byte(clusterID), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"groups", "producers"} {
		symlink(t, t.TempDir(), filepath.Join(state, name))
	}
	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := l.Backup(context.Background(), dest, nil); err != nil {
		t.Fatalf("Backup with kafka/groups and kafka/producers linked to directories: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dest, serverStateDir, "cluster.id")); err != nil || string(data) != clusterID {
		t.Errorf("the copy's cluster.id: %q, %v; want %q", data, err, clusterID)
	}
	for _, name := range []string{"groups", "producers"} {
		if _, err := os.Lstat(filepath.Join(dest, serverStateDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the copy's kafka/%s: %v; want none", name, err)
		}
	}
}
