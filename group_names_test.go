package runnel

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// committedOf returns group's committed offset per partition of its one
// topic, as DescribeGroup reports them.
func committedOf(t *testing.T, l *Log, group string) []int64 {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatalf("DescribeGroup(%q): %v", group, err)
	}
	if info.Group != group || len(info.Topics) != 1 {
		t.Fatalf("DescribeGroup(%q) = %+v", group, info)
	}
	var out []int64
	for _, gp := range info.Topics[0].Partitions {
		out = append(out, gp.Committed)
	}
	return out
}

// A group may have any name Kafka takes for a group id (issue 13): one
// outside the topic rule lives in an escaped directory, and every call
// takes and shows its own name. A name of the topic rule keeps its plain
// directory, which existing logs have.
func TestGroupNamesOutsideTopicRule(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 5)
	ctx := context.Background()
	for name, gdir := range map[string]string{
		"app:prod/1 x": "app%3Aprod%2F1%20x", "team/orders": "team%2Forders", "my group": "my%20group",
		"ünï": "%C3%BCn%C3%AF", ".": "%2E", "..": "%2E%2E", "../up": "..%2Fup", "a%3Ab": "a%253Ab",
		"orders": "orders", "..a": "..a",
	} {
		c := mustConsumer(t, l, "t", &ConsumerOptions{Group: name, Start: Earliest, DisableAutoCommit: true})
		pollN(t, c, 10)
		if err := c.CommitOffsets(ctx, map[int]int64{0: 3, 1: 4}); err != nil {
			t.Fatalf("%q: CommitOffsets: %v", name, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "groups", gdir, "t.offsets")); err != nil {
			t.Errorf("%q: offsets file not in its directory: %v", name, err)
		}
		if got := committedOf(t, l, name); !slices.Equal(got, []int64{3, 4}) {
			t.Errorf("%q: committed %v, want [3 4]", name, got)
		}
		if groups, err := l.ListGroups(); err != nil || !slices.Contains(groups, name) {
			t.Errorf("%q: ListGroups = %q, %v", name, groups, err)
		}
		// A second member starts from the group's commits.
		c = mustConsumer(t, l, "t", &ConsumerOptions{Group: name, DisableAutoCommit: true})
		if got := pollN(t, c, 3); got[0].Off < 3 {
			t.Errorf("%q: a new member read from %+v, want the commits", name, got[0])
		}
		c.Close()
	}

	var described, stats []string
	for info, err := range l.DescribeGroups() {
		if err != nil {
			t.Fatal(err)
		}
		described = append(described, info.Group)
	}
	for _, g := range l.Stats().Groups {
		stats = append(stats, g.Group)
	}
	groups, err := l.ListGroups()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "..", "../up", "..a", "a%3Ab", "app:prod/1 x", "my group", "orders", "team/orders", "ünï"}
	for what, got := range map[string][]string{"ListGroups": groups, "DescribeGroups": described, "Stats": stats} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	if rep, err := l.Verify(ctx, "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep.Problems, err)
	}

	if _, err := l.ResetGroupOffsets(ctx, "app:prod/1 x", "t", AtOffset(1), nil); err != nil {
		t.Fatal(err)
	}
	if got := committedOf(t, l, "app:prod/1 x"); !slices.Equal(got, []int64{1, 1}) {
		t.Errorf("after ResetGroupOffsets: committed %v, want [1 1]", got)
	}
	if err := l.DeleteGroupOffsets(ctx, "team/orders", "t", []int{0}); err != nil {
		t.Fatal(err)
	}
	if got := committedOf(t, l, "team/orders"); !slices.Equal(got, []int64{-1, 4}) {
		t.Errorf("after DeleteGroupOffsets: committed %v, want [-1 4]", got)
	}
	for _, name := range want {
		if err := l.DeleteGroup(ctx, name, nil); err != nil {
			t.Errorf("DeleteGroup(%q): %v", name, err)
		}
	}
	if groups, err := l.ListGroups(); err != nil || len(groups) > 0 {
		t.Errorf("after DeleteGroup: ListGroups = %q, %v", groups, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "groups")); len(left) > 0 {
		t.Errorf("after DeleteGroup: left in groups/: %v", left)
	}
}

// Names that a naive escape would store in one directory (escaping the
// bytes outside the rule but not '%' stores "a:b" and "a%3Ab" both as
// "a%3Ab") are separate groups. Backup copies each; DeleteTopic drops
// each one's offsets for the topic.
func TestGroupNamesDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 10)
	ctx := context.Background()
	names := []string{"a:b", "a%3Ab", "a%253Ab", "a%3ab", "A:B", "a b", "a+b", "a%20b", "ab"}
	for i, name := range names {
		if _, err := l.ResetGroupOffsets(ctx, name, "t", AtOffset(int64(i)), nil); err != nil {
			t.Fatalf("ResetGroupOffsets(%q): %v", name, err)
		}
	}
	check := func(l *Log) {
		t.Helper()
		for i, name := range names {
			if got := committedOf(t, l, name); !slices.Equal(got, []int64{int64(i)}) {
				t.Errorf("%q: committed %v, want [%d]", name, got, i)
			}
		}
		groups, err := l.ListGroups()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(slices.Sorted(slices.Values(names)), groups); diff != "" {
			t.Errorf("ListGroups (-want +got):\n%s", diff)
		}
	}
	check(l)

	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := l.Backup(ctx, dest, nil); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dest, nil))

	if err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if groups, err := l.ListGroups(); err != nil || len(groups) > 0 {
		t.Errorf("after DeleteTopic: ListGroups = %q, %v", groups, err)
	}
}

// A directory under groups/ that is no group's (a name with a '%' that is
// not its escape, "." spelled escaped as it never is) is left out of the
// listings, with offsets files in it or not, and no call reads it.
func TestGroupDirectoriesNotDecoded(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	ctx := context.Background()
	if _, err := l.ResetGroupOffsets(ctx, "a:b", "t", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, "groups", "a%3Ab", "t.offsets"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stray := range []string{"a%3ab", "%41", "a%", "a%3", "a%zz", "%2E%2Ea", "%FF", "%C3", strings.Repeat("%3A", 84)} {
		if err := os.Mkdir(filepath.Join(dir, "groups", stray), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "groups", stray, "t.offsets"), file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := l.ListGroups()
	if err != nil || !slices.Equal(groups, []string{"a:b"}) {
		t.Errorf("ListGroups = %q, %v; want [a:b]", groups, err)
	}
	if st := l.Stats(); len(st.Groups) != 1 || st.Err != nil {
		t.Errorf("Stats: groups %+v, err %v", st.Groups, st.Err)
	}
	if rep, err := l.Verify(ctx, "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep.Problems, err)
	}
}

// Verify checks the offsets files of an escaped group's directory, and
// names the file where it finds damage.
func TestVerifyEscapedGroupOffsets(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	if _, err := l.ResetGroupOffsets(context.Background(), "team/orders", "t", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "groups", "team%2Forders", "t.offsets")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 0); err != nil { // the magic
		t.Fatal(err)
	}
	f.Close()
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemOffsets || rep.Problems[0].Path != path {
		t.Errorf("Verify found %+v, want the offsets file %s", rep.Problems, path)
	}
}

// A member in another process joins a group whose name is outside the
// topic rule, and reads on from the commits this process made.
func TestGroupNameOutsideTopicRuleMultiProcess(t *testing.T) {
	slowAlone(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 6)
	const group = "app:prod/1 x"
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: group, Start: Earliest, DisableAutoCommit: true})
	pollN(t, c, 3)
	if err := c.CommitOffsets(context.Background(), map[int]int64{0: 3}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m := startMPMember(t, dir, "t", group, "child")
	waitFor(t, patience, "the child's records", func() bool { return len(m.records()) >= 3 })
	if diff := cmp.Diff([]offsetKey{{0, 3}, {0, 4}, {0, 5}}, m.records()); diff != "" {
		t.Errorf("the child read (-want +got):\n%s", diff)
	}
	checkGroupDescribed(t, l, group, m)
	m.leave(t)
	if got := committedOf(t, l, group); !slices.Equal(got, []int64{6}) {
		t.Errorf("after the child left: committed %v, want [6]", got)
	}
}
