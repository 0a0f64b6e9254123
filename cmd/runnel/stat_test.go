package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatDamagedTopic: stat shows topic b though topic a cannot be
// described, and names a and the file at fault on standard error, exiting
// 1, in text and JSON, as it does a group's damaged offsets file. It used
// to leave a out silently and exit 0, as if a had been deleted.
func TestStatDamagedTopic(t *testing.T) {
	cases := []struct {
		name string
		// damage damages the topic in topicDir and returns how the
		// error names the damage.
		damage func(t *testing.T, topicDir string) (want string)
	}{
		{"topic.json", func(t *testing.T, topicDir string) string {
			path := filepath.Join(topicDir, "topic.json")
			if err := os.WriteFile(path, []byte("{garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "corrupt data in " + path + " at byte 2"
		}},
		{"partition", func(t *testing.T, topicDir string) string {
			// A file where the partition's directory should be: its
			// segments cannot be listed.
			path := filepath.Join(topicDir, "0")
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path + ": not a directory"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, topic := range []string{"a", "b"} {
				must(t, dir, "", "topics", "create", topic)
				must(t, dir, "x\n", "produce", topic)
			}
			damage := tc.damage(t, filepath.Join(dir, "topics", "a"))

			r := runIn(t, dir, "", "stat")
			failing(t, r, 1, "topic a: ")
			failing(t, r, 1, damage)
			if !strings.Contains(r.stdout, "\nb ") || strings.Contains(r.stdout, "\na ") {
				t.Errorf("stat printed %q, want topic b alone", r.stdout)
			}

			r = runIn(t, dir, "", "stat", "-format", "json")
			failing(t, r, 1, "topic a: ")
			failing(t, r, 1, damage)
			var st statReport
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("stat -format json printed %q: %v", r.stdout, err)
			}
			if len(st.Topics) != 1 || st.Topics[0].Topic != "b" {
				t.Errorf("stat -format json topics %+v, want topic b alone", st.Topics)
			}
		})
	}
}
