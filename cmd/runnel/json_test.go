package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runnel-log/runnel"
)

// decode runs runnel and decodes its standard output, which must be one
// JSON document, into v.
func decode(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out := must(t, dir, "", args...)
	if strings.Count(out, "\n") != 1 {
		t.Errorf("runnel %s: output is not one line:\n%s", strings.Join(args, " "), out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestJSONTopics: topics list and topics describe -format json.
func TestJSONTopics(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "orders", "-partitions", "2", "-retention", "36h", "-segment-bytes", "1MiB")
	must(t, dir, "", "topics", "create", "audit")
	must(t, dir, "a\nb\nc\n", "produce", "orders", "-p", "1")

	var list []jsonTopicEntry
	decode(t, dir, &list, "topics", "list", "-format", "json")
	if diff := cmp.Diff([]jsonTopicEntry{{Name: "audit", Partitions: 1}, {Name: "orders", Partitions: 2}}, list); diff != "" {
		t.Errorf("topics list (-want +got):\n%s", diff)
	}
	other := t.TempDir()
	must(t, other, "", "topics", "create", "gone")
	must(t, other, "", "topics", "delete", "gone")
	if out := must(t, other, "", "topics", "list", "--format=json"); out != "[]\n" {
		t.Errorf("no topics: %q", out)
	}

	var desc jsonTopic
	decode(t, dir, &desc, "topics", "describe", "orders", "-format", "json")
	if desc.Config.RetentionAge != 36*time.Hour || desc.Config.SegmentBytes != 1<<20 || desc.Config.Partitions != 2 {
		t.Errorf("config %+v", desc.Config)
	}
	desc.Config = runnel.TopicConfig{}
	for i := range desc.Offsets {
		if desc.Offsets[i].Bytes <= 0 && desc.Offsets[i].Records > 0 {
			t.Errorf("partition %d: %d records in %d bytes", i, desc.Offsets[i].Records, desc.Offsets[i].Bytes)
		}
		desc.Offsets[i].Bytes = 0
	}
	want := jsonTopic{Name: "orders", Partitions: 2, Offsets: []jsonPartitionState{
		{Partition: 0},
		{Partition: 1, NextOffset: 3, Records: 3, Segments: 1},
	}}
	if diff := cmp.Diff(want, desc); diff != "" {
		t.Errorf("topics describe (-want +got):\n%s", diff)
	}
	failing(t, runIn(t, dir, "", "topics", "describe", "orders", "-format", "yaml"), 2, "want text or json")
}

// TestJSONGroups: groups list and groups describe -format json, with
// nulls for what is not known.
func TestJSONGroups(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	must(t, dir, "a\nb\nc\n", "produce", "t", "-p", "0")
	before := time.Now().Truncate(time.Millisecond)
	must(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "2", "-p", "0")

	var list []jsonGroupEntry
	decode(t, dir, &list, "groups", "list", "-format", "json")
	if diff := cmp.Diff([]jsonGroupEntry{{Name: "g", Topics: []string{"t"}}}, list); diff != "" {
		t.Errorf("groups list (-want +got):\n%s", diff)
	}

	var g jsonGroup
	decode(t, dir, &g, "groups", "describe", "g", "-format", "json")
	if len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 2 || g.Topics[0].Partitions[0].CommittedAt == nil {
		t.Fatalf("groups describe: %+v", g)
	}
	at, err := time.Parse(time.RFC3339Nano, *g.Topics[0].Partitions[0].CommittedAt)
	if err != nil || at.Before(before) || at.After(time.Now()) {
		t.Errorf("committed_at %q: %v", *g.Topics[0].Partitions[0].CommittedAt, err)
	}
	g.Topics[0].Partitions[0].CommittedAt = nil
	want := jsonGroup{Name: "g", Topics: []jsonGroupTopic{{
		Topic:   "t",
		Members: []jsonMember{},
		Partitions: []jsonGroupPartition{
			{Partition: 0, Committed: ptr[int64](2), End: ptr[int64](3), Lag: ptr[int64](1)},
			{Partition: 1, End: ptr[int64](0)},
		},
	}}}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("groups describe (-want +got):\n%s", diff)
	}

	// A live member shows up, with its partitions.
	b := startBackground(t, dir, "consume", "t", "-group", "g", "-follow")
	deadline := time.Now().Add(time.Minute)
	for {
		decode(t, dir, &g, "groups", "describe", "g", "-format", "json")
		if m := g.Topics[0].Members; len(m) == 1 && len(m[0].Partitions) == 2 {
			if m[0].PID != b.cmd.Process.Pid || g.Topics[0].Partitions[1].Owner == nil || *g.Topics[0].Partitions[1].Owner != m[0].Slot {
				t.Errorf("member %+v, partition 1 %+v", m[0], g.Topics[0].Partitions[1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no member owning both partitions in a minute: %+v", g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.interrupt(t)
}

// TestJSONStat: stat -format json, once and with -follow (a line a look).
func TestJSONStat(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\n", "produce", "t")
	must(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "1")
	// A start at a time past every record prints nothing and, unlike the
	// end, is not committed: a group without commits.
	must(t, dir, "", "consume", "t", "-group", "idle", "-since", "2999-01-01")
	var r statReport
	decode(t, dir, &r, "stat", "-format", "json")
	if len(r.Topics) != 1 || r.Topics[0].AppendRate == nil || *r.Topics[0].AppendRate != 0 {
		t.Fatalf("stat: %+v", r)
	}
	r.Topics[0].Bytes, r.Topics[0].AppendRate = 0, nil
	want := statPartition{Topic: "t", jsonPartitionState: jsonPartitionState{NextOffset: 2, Records: 2, Segments: 1}}
	if diff := cmp.Diff(want, r.Topics[0], cmp.AllowUnexported(statPartition{})); diff != "" {
		t.Errorf("stat topics (-want +got):\n%s", diff)
	}
	// A group that committed nothing has no lag, as in "groups describe";
	// it is not caught up.
	wantGroups := []statGroup{
		{Group: "g", Topic: "t", Committed: ptr[int64](1), Lag: ptr[int64](1), CommitRate: ptr(0.0)},
		{Group: "idle", Topic: "t", CommitRate: ptr(0.0)},
	}
	if diff := cmp.Diff(wantGroups, r.Groups); diff != "" {
		t.Errorf("stat groups (-want +got):\n%s", diff)
	}
	if text := must(t, dir, "", "stat"); !regexp.MustCompile(`(?m)^idle\s+t\s+0\s+-\s+-\s`).MatchString(text) {
		t.Errorf("stat shows the idle group with a committed offset or lag:\n%s", text)
	}

	b := startBackground(t, dir, "stat", "-follow", "-format", "json")
	for i, l := range readLines(t, b, 2) {
		var r statReport
		if err := json.Unmarshal([]byte(l), &r); err != nil || len(r.Topics) != 1 {
			t.Errorf("line %d %q: %v", i, l, err)
		}
	}
	b.interrupt(t)
}

// TestJSONVerify: verify -format json on a clean log, and on a damaged one
// (still exit 1, the problem with its file and position).
func TestJSONVerify(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	for i := range 3 {
		must(t, dir, fmt.Sprintf("run %d\n", i), "produce", "t")
	}
	var v jsonVerify
	decode(t, dir, &v, "verify", "-format", "json")
	if !v.OK || v.Topics != 1 || v.Records != 3 || len(v.Partitions) != 1 || v.Partitions[0].Frames != 3 || len(v.Problems) != 0 || v.Notes == nil {
		t.Errorf("clean verify: %+v", v)
	}

	frames := framePositions(t, dir, "t", 0)
	var seg string
	for f := range frames {
		seg = f
	}
	// What a writer that died 20 bytes into a frame leaves past the end.
	data, err := os.ReadFile(filepath.Join(dir, seg))
	if err != nil {
		t.Fatal(err)
	}
	pos := int64(len(data))
	if err := os.WriteFile(filepath.Join(dir, seg), append(data, data[frames[seg][2]:][:20]...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, dir, "", "verify", "t", "-format", "json")
	failing(t, r, 1, "found 1 problem")
	v = jsonVerify{}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	want := []jsonProblem{{Kind: "torn tail", Topic: "t", Partition: ptr(0), Path: seg, Pos: ptr(pos), Offset: ptr[int64](3), Repairable: true, Salvageable: true}}
	if len(v.Problems) == 1 {
		want[0].Detail = v.Problems[0].Detail
	}
	if diff := cmp.Diff(want, v.Problems); diff != "" || v.OK {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestJSONVersion: version -format json says what "go version -m" reads
// from the binary.
func TestJSONVersion(t *testing.T) {
	var v versionInfo
	decode(t, t.TempDir(), &v, "version", "-format", "json")
	bi := goVersionM(t)
	want := versionInfo{
		Module: "github.com/runnel-log/runnel", Version: bi["mod"], Go: bi["go"], Platform: bi["GOOS"] + "/" + bi["GOARCH"],
		BuildInfo: true,
	}
	// What the build does not say is null.
	if rev, ok := bi["vcs.revision"]; ok {
		want.Revision = &rev
	}
	if at, ok := bi["vcs.time"]; ok {
		want.Time = &at
	}
	if m, ok := bi["vcs.modified"]; ok {
		want.Modified = ptr(m == "true")
	}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
}
