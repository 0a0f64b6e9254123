package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConsumeTopics: consume reads every topic named, as kcat -G G T1
// T2 does: without -follow one topic after the other, in the order given,
// %t saying which; -n counts the records of all of them; a group commits
// in each; with -follow the topics are read side by side. A topic named
// twice is a usage mistake and one missing fails before anything is
// printed.
func TestConsumeTopics(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "a")
	must(t, dir, "", "topics", "create", "b", "-partitions", "2")
	must(t, dir, "a0\na1\n", "produce", "a")
	must(t, dir, "b0\nb1\n", "produce", "b", "-p", "1")

	format := []string{"-f", `%t %p %o %s\n`}
	all := "b 1 0 b0\nb 1 1 b1\na 0 0 a0\na 0 1 a1\n"
	if got := must(t, dir, "", append([]string{"consume", "b", "a"}, format...)...); got != all {
		t.Errorf("consume b a: %q, want %q", got, all)
	}
	if got := must(t, dir, "", append([]string{"consume", "b", "a", "-n", "3"}, format...)...); got != "b 1 0 b0\nb 1 1 b1\na 0 0 a0\n" {
		t.Errorf("consume b a -n 3: %q", got)
	}
	if got := must(t, dir, "", "consume", "a", "b", "-J", "-n", "3"); strings.Count(got, `"topic":"a"`) != 2 || strings.Count(got, `"topic":"b"`) != 1 {
		t.Errorf("consume a b -J -n 3: %s", got)
	}
	failing(t, runIn(t, dir, "", "consume", "a", "b", "a"), 2, `topic "a" given twice`)
	r := runIn(t, dir, "", "consume", "a", "nosuch")
	failing(t, r, 1, "nosuch")
	if r.stdout != "" {
		t.Errorf("consume a nosuch printed %q before failing", r.stdout)
	}

	// A group commits in every topic; its next run goes on from there.
	if got := must(t, dir, "", append([]string{"consume", "a", "b", "-group", "g", "-from-beginning"}, format...)...); got != "a 0 0 a0\na 0 1 a1\nb 1 0 b0\nb 1 1 b1\n" {
		t.Errorf("consume a b -group g: %q", got)
	}
	if got, want := topicCommits(t, dir, "g"), "a [2] b [0 2]"; got != want {
		t.Errorf("group g committed %s, want %s", got, want)
	}
	must(t, dir, "a2\n", "produce", "a")
	must(t, dir, "b2\n", "produce", "b", "-p", "0")
	if got := must(t, dir, "", append([]string{"consume", "a", "b", "-group", "g"}, format...)...); got != "a 0 2 a2\nb 0 0 b2\n" {
		t.Errorf("second run of the group: %q, want the records produced since", got)
	}

	// Following, the topics are read side by side.
	bg := startBackground(t, dir, append([]string{"consume", "a", "b", "-follow"}, format...)...)
	// Whenever each topic's reader started, it started after the newest
	// record: produce to both until each has printed one.
	seen := map[string]bool{}
	for i := 0; !seen["a"] || !seen["b"]; i++ {
		if i > 600 {
			t.Fatalf("consume a b -follow printed %v of 600 records produced to each", seen)
		}
		must(t, dir, "x\n", "produce", "b", "-p", "1")
		must(t, dir, "y\n", "produce", "a")
		select {
		case l, ok := <-bg.lines:
			if !ok {
				t.Fatalf("consume a b -follow ended: %s", bg.stderr.String())
			}
			topic, _, _ := strings.Cut(l, " ")
			seen[topic] = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code := bg.interrupt(t); code != 0 {
		t.Errorf("Ctrl-C: exit %d: %s", code, bg.stderr.String())
	}
}

// TestConsumeTopicsAsKcat: consume -group G T1 T2 (or ^PATTERN) prints
// what kcat -G G T1 T2 prints of the same topics through runnel serve,
// and leaves the same commits.
func TestConsumeTopicsAsKcat(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "a")
	must(t, dir, "", "topics", "create", "b", "-partitions", "2")
	must(t, dir, "a0\na1\n", "produce", "a")
	must(t, dir, "b0\n", "produce", "b", "-p", "0")
	must(t, dir, "b1\nb2\n", "produce", "b", "-p", "1")
	kcat := kcatThroughServe(t, dir)
	format := []string{"-o", "beginning", "-f", `%t %p %o %k %s\n`}
	for _, topics := range [][]string{{"a", "b"}, {"^[ab]$"}} {
		want := strings.Split(kcat(append(append([]string{"-G", "k" + topics[0], "-e", "-q"}, topics...), format...)...), "\n")
		got := strings.Split(must(t, dir, "", append(append([]string{"consume", "-G", "r" + topics[0]}, topics...), format...)...), "\n")
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("kcat -G %q printed %q, runnel consume -G %q", topics, want, got)
		}
		if got, want := topicCommits(t, dir, "r"+topics[0]), topicCommits(t, dir, "k"+topics[0]); got != want {
			t.Errorf("commits: runnel's group %s, kcat's %s", got, want)
		}
	}
}

// topicCommits is a group's committed offsets, by topic: "a [2] b [1 2]".
func topicCommits(t *testing.T, dir, group string) string {
	t.Helper()
	var g jsonGroup
	decode(t, dir, &g, "groups", "describe", group, "-format", "json")
	var s []string
	for _, gt := range g.Topics {
		var offsets []string
		for _, p := range gt.Partitions {
			if p.Committed == nil {
				offsets = append(offsets, "-")
			} else {
				offsets = append(offsets, strconv.FormatInt(*p.Committed, 10))
			}
		}
		s = append(s, fmt.Sprintf("%s %v", gt.Topic, offsets))
	}
	return strings.Join(s, " ")
}

// TestConsumeTopicPattern: an argument beginning with ^ is a regular
// expression, as in kcat -G G ^pattern: consume reads every topic whose
// name it matches, in name order, each once however many arguments name
// it; one that matches none fails, and one that does not compile is a
// usage mistake.
func TestConsumeTopicPattern(t *testing.T) {
	dir := t.TempDir()
	for _, topic := range []string{"orders.eu", "orders.us", "audit"} {
		must(t, dir, "", "topics", "create", topic)
		must(t, dir, topic+"\n", "produce", topic)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{`^orders\.`}, "orders.eu\norders.us\n"},
		{[]string{"audit", `^o`}, "audit\norders.eu\norders.us\n"},
		{[]string{"orders.us", `^orders`}, "orders.us\norders.eu\n"},
		{[]string{`^.*s$`}, "orders.us\n"},
		{[]string{`^orders`, "-t", "audit"}, "audit\norders.eu\norders.us\n"},
	} {
		if got := must(t, dir, "", append([]string{"consume"}, tc.args...)...); got != tc.want {
			t.Errorf("consume %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	failing(t, runIn(t, dir, "", "consume", "audit", "^nothing"), 1, `no topic matches "^nothing"`)
	failing(t, runIn(t, dir, "", "consume", "^(orders"), 2, "missing closing )")
}
