package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagSpellings: Go-style flags (one dash, =value), GNU-style (two
// dashes), kcat-style short flags (value attached or in the next word,
// even when it starts with a dash), flags before, between and after the
// arguments, and "--" all mean the same.
func TestFlagSpellings(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a:1\nb:2\nc:3\n", "produce", "t", "-key-sep", ":")
	want := "b=2\nc=3\n"
	for _, args := range [][]string{
		{"consume", "t", "-offset", "-2", "-key-sep", "="},
		{"consume", "t", "-offset=-2", "-key-sep=="},
		{"consume", "t", "--offset", "-2", "--key-sep", "="},
		{"consume", "t", "--offset=-2", "--key-sep=="},
		{"consume", "t", "-o", "-2", "-K", "="},
		{"consume", "t", "-o-2", "-K="},
		{"consume", "-o", "-2", "t", "-K", "="},
		{"consume", "-K=", "-o", "-2", "--", "t"},
		{"-dir", dir, "consume", "t", "-o", "-2", "-K", "="},
		{"consume", "t", "-o", "-2", "-K", "=", "--dir", dir},
		{"consume", "t", "-o", "-2", "-K", "=", "-n", "5", "-follow=false"},
		{"consume", "t", "-o", "-2", "-K", "=", "-c", "5", "-e"}, // kcat's count and exit at the end
		{"consume", "t", "-o", "-2", "-K", "=", "-c2", "-e"},
	} {
		if got := must(t, dir, "", args...); got != want {
			t.Errorf("%q: %q, want %q", args, got, want)
		}
	}
	// The word after a flag that takes a value is its value, even when it
	// names a flag or a command.
	must(t, dir, "x\n", "produce", "t", "-k", "-follow")
	must(t, dir, "y\n", "produce", "t", "-k", "consume")
	if got := must(t, dir, "", "consume", "t", "-o", "-2", "-f", "%k\\n"); got != "-follow\nconsume\n" {
		t.Errorf("keys %q", got)
	}
	// A topic may be named like a subcommand.
	must(t, dir, "", "topics", "create", "list")
	if got := must(t, dir, "", "topics", "describe", "list", "-format", "json"); !strings.Contains(got, `"name":"list"`) {
		t.Errorf("describe list: %q", got)
	}
}

// TestUsageMistakes: a usage mistake prints one line saying what is
// wrong, the usage line, and where to read more; not the whole help.
func TestUsageMistakes(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", "t", "-zzz"}, "runnel consume: flag provided but not defined: -zzz\n" +
			"usage: runnel consume TOPIC... [-group G] [-from-beginning | -o OFFSET | -since TIME] [-p N]\n" +
			"      [-follow] [-n COUNT] [-until TIME] [-f value|json|FORMAT | -J] [-K SEP] [-D DELIM]\n" +
			"Run \"runnel consume -help\" for more.\n"},
		{[]string{"topics", "create", "u", "-partitions", "x"}, "runnel topics create: invalid value \"x\" for -partitions: want a number\n" +
			"usage: runnel topics create NAME [-partitions N] [-segment-bytes N] [-retention DURATION] [-retention-bytes N]\n" +
			"Run \"runnel topics create -help\" for more.\n"},
		{[]string{"consume", "t", "-offset"}, "runnel consume: flag needs an argument: -offset\n"},
		{[]string{"consume", "t", "-nope"}, "runnel consume: invalid value \"ope\" for -n (-count): want a number\n"},
		{[]string{"consume"}, "runnel consume: missing argument\n"},
		{[]string{"verify", "-format", "xml"}, "runnel verify: invalid value \"xml\" for -format: want text or json\n"},
		{[]string{"topics", "describ", "t"}, "runnel topics: unknown subcommand \"describ\"\n"},
		{[]string{"consum", "t"}, "runnel: unknown command \"consum\" (did you mean \"consume\"?)\n" +
			"usage: runnel [-dir DIR] COMMAND [ARGS]\n" +
			"Run \"runnel -help\" for more.\n"},
		{[]string{"-bogus"}, "runnel: flag provided but not defined: -bogus\n"},
		{[]string{"consume", "t", "-e", "-follow"}, "runnel consume: -e stops at the end, -follow waits for more: give one\n"},
	} {
		r := runIn(t, dir, "", tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant it to start with:\n%s", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
		if n := strings.Count(r.stderr, "\n"); n > 10 { // topics' seven subcommands, and a line each around them
			t.Errorf("%q: %d lines of usage", tc.args, n)
		}
	}
	// -help is the whole help, on standard output.
	r := runIn(t, dir, "", "consume", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "flags:\n") || !strings.Contains(r.stdout, "  -o, -offset OFFSET") || r.stderr != "" {
		t.Errorf("consume --help: exit %d, stderr %q:\n%s", r.code, r.stderr, r.stdout)
	}
	if r := runIn(t, dir, "", "consume", "-h"); r.stdout != runIn(t, dir, "", "help", "consume").stdout {
		t.Errorf("consume -h and help consume differ")
	}
}

// TestDumpBadPartition: dump of a partition the topic does not have says
// so, and prints nothing before it.
func TestDumpBadPartition(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	for _, p := range []string{"7", "2", "-1"} {
		r := runIn(t, dir, "", "dump", "t", "-partition", p)
		failing(t, r, 1, "topic t has 2 partitions (0 to 1), not "+p)
		if r.stdout != "" {
			t.Errorf("dump -partition %s printed %q", p, r.stdout)
		}
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-p", "2"), 1, "has 2 partitions")
	if out := must(t, dir, "", "dump", "t", "-p", "1"); out != "partition 1\n" {
		t.Errorf("dump of an empty partition: %q", out)
	}
}

// TestKcatTopicFlag: consume and produce take kcat's -t TOPIC (-topic)
// for the topic argument: consume repeated, for several topics; produce
// once, its arguments then all files, as kcat -P -t T file1 file2.
func TestKcatTopicFlag(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "", "topics", "create", "u")
	must(t, dir, "a\nb\n", "produce", "-t", "t")
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("whole\nfile"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, dir, "", "produce", "--topic=u", file)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", "-t", "t"}, "a\nb\n"},
		{[]string{"consume", "-t", "u", "-t", "t", "-f", `%t:%s\n`}, "u:whole\nfile\nt:a\nt:b\n"},
		{[]string{"consume", "-tu", "t", "-f", `%t:%s\n`}, "u:whole\nfile\nt:a\nt:b\n"},
	} {
		if got := must(t, dir, "", tc.args...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	failing(t, runIn(t, dir, "x\n", "produce", "-t", "t", "-t", "u"), 2, "-topic given 2 times: produce takes one topic")
	failing(t, runIn(t, dir, "", "consume", "-t", "t", "-t", "t"), 2, `topic "t" given twice`)
}
