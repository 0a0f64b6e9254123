package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDumpLogStart: dump of a partition whose start DeleteRecords moved
// says where the start is and marks the records below it, which no reader
// is given, as deleted; with the log-start file damaged it still dumps the
// frames, and names the file and the byte of the damage. Repair names the
// damage and does not send the user to -salvage, which cannot mend it.
func TestDumpLogStart(t *testing.T) {
	dir := offsetsLog(t) // t/0 holds offsets 0, 1 and 2
	must(t, dir, "", "topics", "delete-records", "t:0:2")
	out := must(t, dir, "", "dump", "t")
	if !strings.Contains(out, "topics/t/0/log-start\n  log start 2:") {
		t.Errorf("dump does not show the log start 2:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		rec := strings.Fields(line)
		if len(rec) < 2 || !strings.HasPrefix(line, "    ") {
			continue
		}
		deleted := strings.HasSuffix(line, " deleted: below the log start")
		if want := rec[0] != "2"; deleted != want {
			t.Errorf("record line %q: marked deleted %v, want %v", line, deleted, want)
		}
	}

	path := filepath.Join(dir, "topics", "t", "0", "log-start")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out = must(t, dir, "", "dump", "t")
	if !strings.Contains(out, "topics/t/0/log-start\n  @16 log start BAD: log start checksum mismatch") {
		t.Errorf("dump with a damaged log-start file does not name it and byte 16:\n%s", out)
	}
	if strings.Count(out, `value "v"`) != 3 || strings.Contains(out, "deleted") {
		t.Errorf("dump with a damaged log-start file does not show the 3 records, unmarked:\n%s", out)
	}
	for _, args := range [][]string{{"repair"}, {"repair", "-salvage"}} {
		r := runIn(t, dir, "", args...)
		failing(t, r, 1, "1 problem cannot be repaired")
		if strings.Contains(r.stderr, "-salvage") {
			t.Errorf("runnel %v sends the user to -salvage, which does not mend a log-start file: %s", args, r.stderr)
		}
		if !strings.Contains(r.stdout, "topics/t/0/log-start at byte 16") {
			t.Errorf("runnel %v does not name the file and byte:\n%s", args, r.stdout)
		}
	}
}
