package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
)

// committedOffsets reads a group's committed offsets for its first topic,
// -1 where none.
func committedOffsets(t *testing.T, dir, group string) []int64 {
	t.Helper()
	var g jsonGroup
	decode(t, dir, &g, "groups", "describe", group, "-format", "json")
	var out []int64
	for _, p := range g.Topics[0].Partitions {
		c := int64(-1)
		if p.Committed != nil {
			c = *p.Committed
		}
		out = append(out, c)
	}
	return out
}

// TestGroupsResetPartition: -partition (-p) resets only the partitions
// named, repeated or comma-separated.
func TestGroupsResetPartition(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "4")
	for p := range 4 {
		must(t, dir, strings.Repeat("x\n", 10), "produce", "t", "-p", fmt.Sprint(p))
	}
	out := must(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "5", "-partition", "2")
	if !regexp.MustCompile(`^PARTITION\s+COMMITTED\n2\s+5\n$`).MatchString(out) {
		t.Errorf("reset said %q", out)
	}
	if got := committedOffsets(t, dir, "g"); !slices.Equal(got, []int64{-1, -1, 5, -1}) {
		t.Errorf("after -partition 2: %v", got)
	}
	must(t, dir, "", "groups", "reset", "g", "t", "-to-latest", "-p", "0", "-p", "3")
	must(t, dir, "", "groups", "reset", "g", "t", "-to-earliest", "-p", "1,2")
	if got := committedOffsets(t, dir, "g"); !slices.Equal(got, []int64{10, 0, 0, 10}) {
		t.Errorf("after -p 0 -p 3 and -p 1,2: %v", got)
	}
	failing(t, runIn(t, dir, "", "groups", "reset", "g", "t", "-to-earliest", "-p", "4"), 1, "partition 4")
	failing(t, runIn(t, dir, "", "groups", "reset", "g", "t", "-to-earliest", "-p", "x"), 2, "want a number")
}

// TestGroupsResetForce: a reset of partitions a live member owns fails,
// naming -force; with -force the member moves (it prints the records
// again from the new offset) and the command returns once it has.
func TestGroupsResetForce(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\nc\n", "produce", "t")
	b := startBackground(t, dir, "consume", "t", "-group", "g", "-from-beginning", "-follow")
	if got := readLines(t, b, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("member printed %q", got)
	}
	// Once it has committed all three (at most a second later), it owns
	// the partition and has nothing to print.
	deadline := time.Now().Add(time.Minute)
	for !slices.Equal(committedOffsets(t, dir, "g"), []int64{3}) {
		if time.Now().After(deadline) {
			t.Fatalf("the member did not commit 3 in a minute: %v", committedOffsets(t, dir, "g"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	failing(t, runIn(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "1"), 1, "(stop them, or force the reset); -force forces it")

	out := must(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "1", "-force")
	if !strings.Contains(out, "PARTITION") {
		t.Errorf("reset -force said %q", out)
	}
	if got := readLines(t, b, 2); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after the forced reset the member printed %q, want b and c again", got)
	}
	// What it printed since, it commits, though it had committed the
	// same offset before the reset.
	for !slices.Equal(committedOffsets(t, dir, "g"), []int64{3}) {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("the member did not commit 3 again: %v", committedOffsets(t, dir, "g"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(t, dir, "d\n", "produce", "t")
	if got := readLines(t, b, 1); !slices.Equal(got, []string{"d"}) {
		t.Errorf("then %q", got)
	}
	if code := b.interrupt(t); code != 0 {
		t.Errorf("Ctrl-C: exit %d: %s", code, b.stderr.String())
	}
	if got := committedOffsets(t, dir, "g"); !slices.Equal(got, []int64{4}) {
		t.Errorf("committed %v after the member stopped, want [4]", got)
	}
}

// TestGroupsOneDamagedTopic: with the group's offsets file for topic a
// damaged, groups describe prints topic t, in text and JSON, and names
// the damage (topic, file and byte) on standard error, exiting 1; groups
// list lists the group, and with -format json its two topics, naming the
// damage too. Any error from DescribeGroup printed nothing but it, and
// failed the whole JSON list.
func TestGroupsOneDamagedTopic(t *testing.T) {
	dir, damage := groupWithDamagedTopic(t)

	r := runIn(t, dir, "", "groups", "describe", "g")
	failing(t, r, 1, damage)
	if !regexp.MustCompile(`(?m)^topic t: 0 live members\n(.*\n)*0\s+1\s+2\s+1\s`).MatchString(r.stdout) || strings.Contains(r.stdout, "topic a") {
		t.Errorf("groups describe printed %q, want topic t alone, committed 1 of 2", r.stdout)
	}

	r = runIn(t, dir, "", "groups", "describe", "g", "-format", "json")
	failing(t, r, 1, damage)
	var g jsonGroup
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
		t.Fatalf("groups describe -format json printed %q: %v", r.stdout, err)
	}
	if len(g.Topics) != 1 || g.Topics[0].Topic != "t" || len(g.Topics[0].Partitions) != 1 ||
		g.Topics[0].Partitions[0].Committed == nil || *g.Topics[0].Partitions[0].Committed != 1 {
		t.Errorf("groups describe -format json: %+v, want topic t alone, committed 1", g)
	}

	if got := must(t, dir, "", "groups", "list"); got != "g\n" {
		t.Errorf("groups list: %q", got)
	}
	r = runIn(t, dir, "", "groups", "list", "-format", "json")
	failing(t, r, 1, damage)
	var list []jsonGroupEntry
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("groups list -format json printed %q: %v", r.stdout, err)
	}
	if diff := cmp.Diff([]jsonGroupEntry{{Name: "g", Topics: []string{"a", "t"}}}, list); diff != "" {
		t.Errorf("groups list -format json (-want +got):\n%s", diff)
	}
}

// groupWithDamagedTopic makes a log in which group g has committed 1 of
// the 2 records of topics a and t, and damages its offsets file for a. It
// returns the directory and how an error names the damage.
func groupWithDamagedTopic(t *testing.T) (dir, damage string) {
	t.Helper()
	dir = t.TempDir()
	for _, topic := range []string{"a", "t"} {
		must(t, dir, "", "topics", "create", topic)
		must(t, dir, "x\ny\n", "produce", topic)
		must(t, dir, "", "groups", "reset", "g", topic, "-to-offset", "1")
	}
	path := damageOffsets(t, dir, "g", "a")
	return dir, "group g, topic a: runnel: corrupt data in " + path + " at byte 0"
}

// damageOffsets flips a bit of the header of group's offsets file for
// topic in the log in dir: DescribeGroup can no longer read that topic,
// and says so with a *runnel.GroupTopicError. It returns the file's path.
func damageOffsets(t *testing.T, dir, group, topic string) string {
	t.Helper()
	path := filepath.Join(dir, "groups", group, topic+".offsets")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[12] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGroupsResetForceWarnsOneDamagedTopic: a forced reset of topic t
// warns of the Kafka member that owns t's partition though the group's
// offsets file for topic a is damaged; any error from DescribeGroup
// skipped the warning.
func TestGroupsResetForceWarnsOneDamagedTopic(t *testing.T) {
	dir, _ := groupWithDamagedTopic(t)

	// A member named as runnel serve names a Kafka member's, in this
	// process, owning t's partition and polling, so that it applies the
	// forced reset.
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Consumer("t", &runnel.ConsumerOptions{Group: "g", MemberName: kafka.MemberNamePrefix + "m1", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryPoll(); err != nil { // joins: it owns the partition
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			c.Poll(ctx)
		}
	}()
	defer func() {
		cancel()
		<-polled
	}()

	r := runIn(t, dir, "", "groups", "reset", "g", "t", "-to-offset", "0", "-force")
	if want := "warning: Kafka member kafka/m1 owns partitions [0]"; r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("groups reset -force: exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
	}
}

// TestStatOneDamagedTopic: stat shows a group whose offsets file for topic
// a is damaged by its topic t, and names the damage on standard error:
// exiting 1, or with -follow after each look, going on. Any error from
// DescribeGroup left the group out, silently.
func TestStatOneDamagedTopic(t *testing.T) {
	dir, damage := groupWithDamagedTopic(t)
	want := []statGroup{{Group: "g", Topic: "t", Committed: ptr[int64](1), Lag: ptr[int64](1), CommitRate: ptr(0.0)}}

	r := runIn(t, dir, "", "stat", "-format", "json")
	failing(t, r, 1, damage)
	var st statReport
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stat -format json printed %q: %v", r.stdout, err)
	}
	if diff := cmp.Diff(want, st.Groups); diff != "" {
		t.Errorf("stat groups (-want +got):\n%s", diff)
	}

	b := startBackground(t, dir, "stat", "-follow", "-format", "json")
	for i, l := range readLines(t, b, 2) {
		var st statReport
		if err := json.Unmarshal([]byte(l), &st); err != nil {
			t.Fatalf("stat -follow line %d %q: %v", i, l, err)
		}
		if diff := cmp.Diff(want, st.Groups, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".CommitRate" }, cmp.Ignore())); diff != "" {
			t.Errorf("stat -follow line %d groups (-want +got):\n%s", i, diff)
		}
	}
	if code := b.interrupt(t); code != 0 || !strings.Contains(b.stderr.String(), "warning: runnel: "+damage) {
		t.Errorf("stat -follow: exit %d after Ctrl-C, stderr %q; want 0 and the damage named", code, b.stderr.String())
	}
}
