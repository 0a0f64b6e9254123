package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGroupsNameOutsideTopicRule: the groups commands take any group name
// Kafka takes (issue 13), show it as given, and list it so; consume
// -group joins such a group and reads on from its commits.
func TestGroupsNameOutsideTopicRule(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\nc\nd\n", "produce", "t")
	must(t, dir, "", "groups", "reset", "a:b", "t", "-to-offset", "1")
	must(t, dir, "", "groups", "reset", "my group/é", "t", "-to-offset", "2")
	if got := committedOffsets(t, dir, "a:b"); !slices.Equal(got, []int64{1}) {
		t.Errorf("a:b committed %v, want [1]", got)
	}
	if out := must(t, dir, "", "groups", "describe", "a:b"); !strings.HasPrefix(out, "group a:b\n") {
		t.Errorf("groups describe a:b said %q", out)
	}
	if out := must(t, dir, "", "consume", "t", "-group", "my group/é", "-n", "2"); out != "c\nd\n" {
		t.Errorf("consume -group 'my group/é' printed %q, want the records from its commit", out)
	}
	if got := committedOffsets(t, dir, "my group/é"); !slices.Equal(got, []int64{4}) {
		t.Errorf("my group/é committed %v, want [4]", got)
	}
	if out := must(t, dir, "", "groups", "list"); out != "a:b\nmy group/é\n" {
		t.Errorf("groups list said %q", out)
	}
	var list []jsonGroupEntry
	decode(t, dir, &list, "groups", "list", "-format", "json")
	if diff := cmp.Diff([]jsonGroupEntry{{"a:b", []string{"t"}}, {"my group/é", []string{"t"}}}, list); diff != "" {
		t.Errorf("groups list -format json (-want +got):\n%s", diff)
	}
	must(t, dir, "", "groups", "delete", "a:b")
	if out := must(t, dir, "", "groups", "list"); out != "my group/é\n" {
		t.Errorf("after groups delete a:b, groups list said %q", out)
	}
	failing(t, runIn(t, dir, "", "groups", "describe", strings.Repeat(":", 84)), 1, "too long")
}
