package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// syncLog records, through the sync observer (sync_observer.go), what each
// file held when its last sync began and which names each directory held
// when its last sync began: what a power loss right after Backup returns
// cannot take. Files synced by descriptor are named through /proc.
type syncLog struct {
	mu    sync.Mutex
	files map[string][]byte
	dirs  map[string][]string
	begun map[string]any // by path: what the sync in progress will make durable
}

func (s *syncLog) observe(e syncEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := e.path
	if e.fd >= 0 {
		p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", e.fd))
		if err != nil || strings.HasSuffix(p, " (deleted)") {
			return
		}
		path = p
	}
	if !e.done {
		if e.kind == syncDirectory {
			s.begun[path] = entryNames(path)
		} else {
			data, _ := os.ReadFile(path)
			s.begun[path] = data
		}
		return
	}
	v, ok := s.begun[path]
	delete(s.begun, path)
	if !ok || e.err != nil {
		return
	}
	if e.kind == syncDirectory {
		s.dirs[path] = v.([]string)
	} else {
		s.files[path] = v.([]byte)
	}
}

// entryNames lists the names in the directory at path.
func entryNames(path string) []string {
	entries, _ := os.ReadDir(path)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// placed maps a path under the directory a backup was built in to where
// the copy put it.
func placed(path string) string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		switch {
		case strings.HasPrefix(c, incompleteTag):
			continue // built inside the destination
		case strings.Contains(c, incompleteTag):
			c = c[:strings.Index(c, incompleteTag)] // built beside it
		}
		out = append(out, c)
	}
	return strings.Join(out, "/")
}

// TestBackupSyncsEverything checks that when Backup returns, every file of
// the copy holds what it held when it was last synced, and every directory
// of the copy (and the one it went in) the names it held then.
func TestBackupSyncsEverything(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 300)
	for _, mode := range []string{"new directory", "empty directory"} {
		t.Run(mode, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "copy")
			if mode == "empty directory" {
				os.Mkdir(dest, 0o755)
			}
			sl := &syncLog{files: map[string][]byte{}, dirs: map[string][]string{}, begun: map[string]any{}}
			obs := sl.observe
			syncObserver.Store(&obs)
			_, err := l.Backup(context.Background(), dest, nil)
			syncObserver.Store(nil)
			if err != nil {
				t.Fatal(err)
			}
			files, dirs := map[string][]byte{}, map[string][]string{}
			for p, data := range sl.files {
				files[placed(p)] = data
			}
			for p, names := range sl.dirs {
				dirs[placed(p)] = names
			}
			checked := 0
			err = filepath.WalkDir(dest, func(path string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				checked++
				if d.IsDir() {
					names := entryNames(path)
					synced, ok := dirs[path]
					if !ok {
						t.Errorf("directory %s was never synced", path)
					} else if diff := cmp.Diff(names, synced); diff != "" {
						t.Errorf("directory %s: names now (-) and when last synced (+):\n%s", path, diff)
					}
					return nil
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				synced, ok := files[path]
				switch {
				case !ok:
					t.Errorf("file %s was never synced", path)
				case string(synced) != string(data):
					t.Errorf("file %s: %d bytes, %d when last synced", path, len(data), len(synced))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if checked < 30 {
				t.Errorf("checked %d files and directories; the copy should hold more", checked)
			}
			// A new destination's own entry is durable too (an existing one
			// was there before).
			if names := dirs[filepath.Dir(dest)]; mode == "new directory" && !slices.Contains(names, "copy") {
				t.Errorf("the destination's parent was not synced with it in: %v", names)
			}
		})
	}
}
