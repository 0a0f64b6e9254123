package kafka

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupStateLeavesNoTemp: a write of the group state file that a
// crash cut short leaves its temporary file (planted here as it is
// left); the next server at the address removes it as it takes the file
// over, and its own writes leave none: the directory holds the file and
// its lock alone, however many crashes came before.
func TestGroupStateLeavesNoTemp(t *testing.T) {
	dir, addr := t.TempDir(), "127.0.0.1:9092"
	path := groupStatePath(dir, addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+groupStateTempSuffix, []byte("RNKGRP01 cut short"), 0o644); err != nil {
		t.Fatal(err)
	}
	warn := func(msg string, args ...any) { t.Logf("warn: %s %v", msg, args) }
	f, _, err := openGroupState(dir, addr, warn)
	if err != nil || f == nil {
		t.Fatalf("openGroupState: %v, %v", f, err)
	}
	g := &savedGroup{name: "g", generation: 1, protocolType: "connect", protocol: "p", members: []savedMember{{
		id: "m", session: time.Second, rebalance: time.Second,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "p"}},
	}}}
	f.save(g.name, g)
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(path), filepath.Base(path) + ".lock"}
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("kafka/groups after a crash's leftover, an open and a write (-want +got):\n%s", diff)
	}
	if saved, err := readGroupState(path); err != nil || len(saved) != 1 || saved[0].name != "g" {
		t.Errorf("the file written: %v, %v", saved, err)
	}
}
