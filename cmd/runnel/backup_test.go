package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBackup: runnel backup as a user runs it: the copy, what it prints
// (text and JSON), the copy checked and read with runnel itself, and the
// mistakes it refuses.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2", "-segment-bytes", "64K")
	must(t, dir, "", "topics", "create", "quiet")
	// The first records each in a process of its own, so that partition
	// 0's first segment starts with frames of one record each, whatever
	// batching the bulk gets (the damage below goes into its second).
	var in strings.Builder
	for i := range 3000 {
		line := fmt.Sprintf("key%d:value %d %s\n", i, i, strings.Repeat("x", i%100))
		if i < 3 {
			must(t, dir, line, "produce", "t", "-K:", "-p", "0")
			continue
		}
		in.WriteString(line)
	}
	must(t, dir, in.String(), "produce", "t", "-K:")
	must(t, dir, "", "consume", "t", "-group", "billing", "-from-beginning", "-n", "100")
	base := t.TempDir()
	dest := filepath.Join(base, "copy")

	out := must(t, dir, "", "backup", dest)
	want := regexp.MustCompile(`^copied 2 topics, 3 partitions, [0-9]+ segments, 3000 records, [0-9.]+ [KM]iB and the offsets of 1 group into ` + regexp.QuoteMeta(dest) + "\n$")
	if !want.MatchString(out) {
		t.Errorf("backup printed %q", out)
	}
	if out := must(t, dest, "", "verify"); !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("verify of the copy: %q", out)
	}
	consume := []string{"consume", "t", "-from-beginning", "-f", `%p %o %k %s\n`}
	if a, b := must(t, dir, "", consume...), must(t, dest, "", consume...); a != b || strings.Count(b, "\n") != 3000 {
		t.Errorf("the copy's records differ from the log's (%d and %d lines)", strings.Count(a, "\n"), strings.Count(b, "\n"))
	}
	describe := []string{"groups", "describe", "billing", "-format", "json"}
	var src, cp jsonGroup
	decode(t, dir, &src, describe...)
	decode(t, dest, &cp, describe...)
	if diff := cmp.Diff(src, cp); diff != "" {
		t.Errorf("group billing (-log +copy):\n%s", diff)
	}
	for _, name := range []string{"runnel.format", "topics/t/topic.json", "topics/quiet/topic.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(dest, name))
		if string(a) != string(b) || len(a) == 0 {
			t.Errorf("%s: copy %q, log %q", name, b, a)
		}
	}
	// The copy is a log to go on with.
	must(t, dest, "more\n", "produce", "t", "-p", "1")

	// JSON, into an existing empty directory, checked with -verify.
	dest2 := filepath.Join(base, "json")
	os.Mkdir(dest2, 0o755)
	var rep jsonBackup
	decode(t, dir, &rep, "backup", dest2, "-verify", "-format", "json")
	var records int64
	for _, p := range rep.Partitions {
		records += p.Records
		if p.StartOffset != 0 || p.NextOffset != p.Records || int64(p.Segments) < min(p.Records, 1) || p.SegmentsRemoved != 0 || p.LeftOut != 0 {
			t.Errorf("partition %+v", p)
		}
	}
	committed := src.Topics[0].Partitions
	wantGroups := []jsonGroupBackup{{Group: "billing", Topic: "t", Committed: []*int64{committed[0].Committed, committed[1].Committed}}}
	if rep.Dest != dest2 || !slices.Equal(rep.Topics, []string{"quiet", "t"}) || records != 3000 || len(rep.Partitions) != 3 || rep.Bytes == 0 || len(rep.Notes) != 0 {
		t.Errorf("backup -format json: %+v", rep)
	}
	if diff := cmp.Diff(wantGroups, rep.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}

	// Mistakes.
	failing(t, runIn(t, dir, "", "backup", dest), 1, "is not empty")
	failing(t, runIn(t, dir, "", "backup", filepath.Join(dir, "inside")), 1, "inside the log directory")
	failing(t, runIn(t, dir, "", "backup", filepath.Join(base, "no", "such")), 1, "no such file or directory")
	failing(t, runIn(t, dir, "", "backup"), 2, "missing argument")
	failing(t, runIn(t, dir, "", "backup", "a", "b"), 2, `unexpected argument "b"`)
	failing(t, runIn(t, filepath.Join(base, "nolog"), "", "backup", filepath.Join(base, "x")), 1, "no log at")
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("refused backups left %v", entries)
	}

	// Damage in the log fails the backup, naming the file and byte, and
	// leaves nothing.
	frames := framePositions(t, dir, "t", 0)
	seg := "topics/t/0/00000000000000000000.log"
	data, err := os.ReadFile(filepath.Join(dir, seg))
	if err != nil || len(frames[seg]) < 3 || frames[seg][1]+60 >= frames[seg][2] {
		t.Fatalf("%s: frames at %v, %v", seg, frames[seg], err)
	}
	at := frames[seg][1]
	data[at+60] ^= 0xff
	if err := os.WriteFile(filepath.Join(dir, seg), data, 0o644); err != nil {
		t.Fatal(err)
	}
	failing(t, runIn(t, dir, "", "backup", filepath.Join(base, "damaged")), 1, fmt.Sprintf("corrupt data in %s at byte %d", filepath.Join(dir, seg), at))
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("a failed backup left %v", entries)
	}
}
