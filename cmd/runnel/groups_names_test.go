package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runnel-log/runnel"
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

// TestGroupsNameNotPrintable: a group name with a character that is not
// printable (which any Kafka client may send) prints quoted in the text
// output, so that it neither splits a line, shifts a column nor reaches
// the terminal as an escape sequence; JSON has it exactly.
func TestGroupsNameNotPrintable(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\n", "produce", "t")
	odd := []string{"ok\x1b[2K\rfake\tx", "x\ny", `"q"`, "plain é"}
	for _, g := range odd {
		must(t, dir, "", "groups", "reset", g, "t", "-to-offset", "1")
	}
	want := `"\"q\""` + "\n" + `"ok\x1b[2K\rfake\tx"` + "\nplain é\n" + `"x\ny"` + "\n"
	if out := must(t, dir, "", "groups", "list"); out != want {
		t.Errorf("groups list said %q, want %q", out, want)
	}
	if out := must(t, dir, "", "groups", "describe", odd[0]); !strings.HasPrefix(out, `group "ok\x1b[2K\rfake\tx"`+"\n") {
		t.Errorf("groups describe said %q", out)
	}
	stat := must(t, dir, "", "stat")
	for _, line := range strings.Split(stat, "\n") {
		if strings.ContainsAny(line, "\x1b\r\t") {
			t.Errorf("stat printed a raw control character: %q", line)
		}
	}
	if !strings.Contains(stat, `"x\ny"`) {
		t.Errorf("stat shows no quoted x\\ny:\n%s", stat)
	}
	var list []jsonGroupEntry
	decode(t, dir, &list, "groups", "list", "-format", "json")
	var got []string
	for _, e := range list {
		got = append(got, e.Name)
	}
	slices.Sort(got)
	exact := slices.Clone(odd)
	slices.Sort(exact)
	if !slices.Equal(got, exact) {
		t.Errorf("groups list -format json names %q, want %q", got, exact)
	}
}

// TestGroupsMemberNameNotUTF8: a member name with bytes that are not
// UTF-8 (a Kafka client id is any bytes; "\x9b" is a terminal's 8-bit
// CSI) prints quoted in groups describe, as one with a character that is
// not printable does.
func TestGroupsMemberNameNotUTF8(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Consumer("t", &runnel.ConsumerOptions{Group: "g", MemberName: "w\x9b2Jx"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := must(t, dir, "", "groups", "describe", "g")
	if !strings.Contains(out, `  "w\x9b2Jx"  pid`) {
		t.Errorf("groups describe printed the member name unquoted:\n%q", out)
	}
}
