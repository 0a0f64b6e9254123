package runnel

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/runnel-log/runnel/internal/names"
)

// validateName applies Kafka's topic-name rule (names.Check) to every
// topic name, which becomes a path component, so no name can escape the
// log directory.
func validateName(kind, name string) error {
	if err := names.Check(kind, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return nil
}

// validateGroup applies the group-name rule (names.CheckGroup): any
// non-empty UTF-8 name, as Kafka's group ids, whose groupDir fits.
func validateGroup(group string) error {
	if err := names.CheckGroup(group); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return nil
}

// groupDir is the directory of group's offsets files in the log directory
// dir: groups/ and the group's name, escaped if it is outside the topic
// rule (names.GroupDir).
func groupDir(dir, group string) string {
	return filepath.Join(dir, "groups", names.GroupDir(group))
}

// readGroupDirs lists the groups that have a directory in the log
// directory dir, by name (unescaped). An entry that is no group's
// directory (a stray file, a name no runnel makes) is left out.
func readGroupDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "groups"))
	var groups []string
	for _, e := range entries {
		if group, ok := names.GroupFromDir(e.Name()); ok && e.IsDir() {
			groups = append(groups, group)
		}
	}
	return groups, err
}
