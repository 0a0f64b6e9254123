package runnel

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPartNum: a topic directory's entry is a partition's directory only
// under the name partitionDir gives it (names.PartitionDir); "05", "+5"
// and " 5" were read as partition 5.
func TestPartNum(t *testing.T) {
	dir := t.TempDir()
	want := map[string]int{"0": 0, "5": 5, "12": 12, "05": -1, "+5": -1, " 5": -1, "5 ": -1, "-1": -1, "00": -1, "x": -1}
	for name := range want {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, p := range map[string]int{"7": -1, topicFileName: -1} { // files, not directories
		want[name] = p
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if got := partNum(e); got != want[e.Name()] {
			t.Errorf("partNum(%q) = %d, want %d", e.Name(), got, want[e.Name()])
		}
	}
}
