package main

import (
	"context"
	"strings"
	"testing"

	"github.com/runnel-log/runnel"
)

// A group's commit past the end of its partition, which a Kafka client's
// OffsetCommit (an Unchecked reset) may make, is a note: verify exits 0.
func TestVerifyCommitPastEnd(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "1")
	must(t, dir, "a\nb\n", "produce", "t")
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.ResetGroupOffsets(context.Background(), "g", "t", runnel.AtOffset(50), &runnel.ResetOptions{Unchecked: true})
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out := must(t, dir, "", "verify")
	if want := "groups/g/t.offsets: partition 0: committed offset 50 is past the end 2"; !strings.Contains(out, want) || !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("verify with a commit past the end: %q, want a note %q and ok", out, want)
	}
}
