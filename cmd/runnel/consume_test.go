package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// consumedRecord is a line of consume -format json, as a test reads it.
type consumedRecord struct {
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time
	Key       *string
	Value     string
	Headers   []struct{ Key, Value string }
}

func consumeJSON(t *testing.T, dir string, args ...string) []consumedRecord {
	t.Helper()
	out := must(t, dir, "", append([]string{"consume"}, append(args, "-format", "json")...)...)
	var recs []consumedRecord
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r consumedRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%.200q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestConsumeFormatString: every kcat token and escape of -f, on keyed,
// keyless, empty and header-carrying records.
func TestConsumeFormatString(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "k1:v1\nno key here\n:\n", "produce", "t", "-K", ":", "-H", "h1=x", "-H", "h2=y=z")
	recs := consumeJSON(t, dir, "t", "-from-beginning")
	if len(recs) != 3 {
		t.Fatalf("consumed %d records", len(recs))
	}
	got := must(t, dir, "", "consume", "t", "-from-beginning", "-f", `%t|%p|%o|%k|%s|%h|%T|%K|%S|100%%\t\n`)
	var want strings.Builder
	for i, kv := range [][2]string{{"k1", "v1"}, {"", "no key here"}, {"", ""}} {
		klen := strconv.Itoa(len(kv[0]))
		if i == 1 {
			klen = "-1" // no key at all, as kcat shows it
		}
		fmt.Fprintf(&want, "t|0|%d|%s|%s|h1=x,h2=y=z|%d|%s|%d|100%%\t\n", i, kv[0], kv[1], recs[i].Time.UnixMilli(), klen, len(kv[1]))
	}
	if got != want.String() {
		t.Errorf("-f output:\n%s", cmp.Diff(want.String(), got))
	}
	// The short and long forms, with one dash or two, attached or not.
	for _, args := range [][]string{{"-f%o:%s\\n"}, {"-f", "%o:%s\\n"}, {"--format=%o:%s\\n"}, {"-format", "%o:%s\\n"}} {
		if got := must(t, dir, "", append([]string{"consume", "t", "-from-beginning"}, args...)...); got != "0:v1\n1:no key here\n2:\n" {
			t.Errorf("%q: %q", args, got)
		}
	}
	for _, tc := range []struct{ format, want string }{
		{"%x", "unknown token %x"},
		{"%s%", "lone %"},
		{`%s\q`, `unknown escape "\\q"`},
		{"plain", "format with % tokens"},
	} {
		failing(t, runIn(t, dir, "", "consume", "t", "-f", tc.format), 2, tc.want)
	}
}

// TestConsumeKeyOutput: -K prints key, separator, value without JSON; -D
// ends records with a delimiter of choice; both take escapes.
func TestConsumeKeyOutput(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a:1\nb:2\nkeyless\n", "produce", "t", "-key-sep", ":")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-K", "="}, "a=1\nb=2\n=keyless\n"},
		{[]string{"-K\\t"}, "a\t1\nb\t2\n\tkeyless\n"},
		{[]string{"-key-sep", " => ", "-D", "\\0"}, "a => 1\x00b => 2\x00 => keyless\x00"},
		{[]string{"--record-sep", ";"}, "1;2;keyless;"},
	}
	for _, tc := range cases {
		if got := must(t, dir, "", append([]string{"consume", "t", "-from-beginning"}, tc.args...)...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	// What consume -K prints, produce -K reads back.
	must(t, dir, "", "topics", "create", "copy")
	must(t, dir, must(t, dir, "", "consume", "t", "-from-beginning", "-K", "|"), "produce", "copy", "-K", "|")
	if got := must(t, dir, "", "consume", "copy", "-from-beginning", "-K", "|"); got != "a|1\nb|2\n|keyless\n" {
		t.Errorf("round trip: %q", got)
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-f", "json", "-K", ":"), 2, "go with -format value")
	failing(t, runIn(t, dir, "", "consume", "t", "-K", "\\"), 2, "lone backslash")
}

// TestConsumeOffsets: -o (-offset) takes kcat's beginning, end, N (of
// each partition without -p, as kcat), -N (the last N of each partition)
// and s@MS; -offset N still works.
func TestConsumeOffsets(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	var p0, p1 strings.Builder
	for i := range 5 {
		fmt.Fprintf(&p0, "a%d\n", i)
		fmt.Fprintf(&p1, "b%d\n", i)
	}
	must(t, dir, p0.String(), "produce", "t", "-p", "0")
	must(t, dir, p1.String(), "produce", "t", "-p", "1")
	values := func(args ...string) []string {
		t.Helper()
		return partitionValues(t, dir, append([]string{"t"}, args...)...)
	}
	all := []string{"0/a0", "0/a1", "0/a2", "0/a3", "0/a4", "1/b0", "1/b1", "1/b2", "1/b3", "1/b4"}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"-o", "beginning"}, all},
		{[]string{"-offset", "earliest"}, all},
		{[]string{"-from-beginning"}, all},
		{[]string{"-o", "end"}, nil},
		{[]string{"-o", "3", "-p", "1"}, []string{"1/b3", "1/b4"}},
		{[]string{"-offset", "3", "-partition", "0"}, []string{"0/a3", "0/a4"}},
		{[]string{"-o", "-2"}, []string{"0/a3", "0/a4", "1/b3", "1/b4"}},
		{[]string{"-o-1"}, []string{"0/a4", "1/b4"}},
		{[]string{"-offset=-2", "-p", "1"}, []string{"1/b3", "1/b4"}},
		{[]string{"-offset", "-2"}, []string{"0/a3", "0/a4", "1/b3", "1/b4"}}, // once "(removed by retention)"
		{[]string{"-o", "-100"}, all},
		{[]string{"-o", "3"}, []string{"0/a3", "0/a4", "1/b3", "1/b4"}}, // every partition at 3, as kcat
	}
	for _, tc := range cases {
		if got := values(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}

	// s@MS: the first record at or after a time in milliseconds. Wait
	// until the clock has passed the last record's millisecond, so that
	// the next records are the only ones at or after the next one.
	before := consumeJSON(t, dir, "t", "-o", "beginning")
	first := before[0].Time.UnixMilli()
	for _, r := range before {
		first = min(first, r.Time.UnixMilli())
	}
	next := waitPastMillis(before)
	must(t, dir, "late1\nlate2\n", "produce", "t", "-p", "0")
	if got := values("-o", fmt.Sprintf("s@%d", next)); !slices.Equal(got, []string{"0/late1", "0/late2"}) {
		t.Errorf("s@%d: %q", next, got)
	}
	if got := values("-o", fmt.Sprintf("s@%d", first)); len(got) != 12 {
		t.Errorf("s@ the first record's time: %d records, want 12", len(got))
	}
	// Partition 1 ends at 5: without -p, it starts there, as kcat's
	// does, and has nothing to print; with -p, 6 is past its end.
	if got := values("-o", "6"); !slices.Equal(got, []string{"0/late2"}) {
		t.Errorf("-o 6: %q", got)
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-o", "6", "-p", "1"), 1, "past its end")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "soon"}, "want beginning, end, stored, N, -N"},
		{[]string{"-o", "-0"}, "last 0 records"},
		{[]string{"-o", "s@x"}, "milliseconds since 1970"},
		{[]string{"-o", "beginning", "-from-beginning"}, "at most one"},
		{[]string{"-o", "-2", "-group", "g"}, "cannot go with -group"},
		{[]string{"-o", "1", "-p", "2"}, ""},
	} {
		code := 2
		if tc.want == "" {
			code, tc.want = 1, "has 2 partitions"
		}
		failing(t, runIn(t, dir, "", append([]string{"consume", "t"}, tc.args...)...), code, tc.want)
	}
}

// partitionValues consumes with args and returns each record as
// "PARTITION/VALUE", sorted.
func partitionValues(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	var vs []string
	for _, r := range consumeJSON(t, dir, args...) {
		vs = append(vs, fmt.Sprintf("%d/%s", r.Partition, r.Value))
	}
	slices.Sort(vs)
	return vs
}

// waitPastMillis waits until the clock has passed the millisecond of the
// latest record in recs, so that records sent next are the only ones at
// or after the millisecond it returns.
func waitPastMillis(recs []consumedRecord) int64 {
	var last int64
	for _, r := range recs {
		last = max(last, r.Time.UnixMilli())
	}
	for time.Now().UnixMilli() <= last+1 {
		time.Sleep(time.Millisecond)
	}
	return last + 1
}

// TestConsumeUntil: -until TIME and kcat's -o e@MS (beside a start given
// with another -o, in either order) stop each partition at its first
// record at or after the time, which is not printed; with -follow the run
// ends by itself once every partition has stopped.
func TestConsumeUntil(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	must(t, dir, "a0\na1\n", "produce", "t", "-p", "0")
	must(t, dir, "b0\n", "produce", "t", "-p", "1")
	stop := waitPastMillis(consumeJSON(t, dir, "t", "-o", "beginning"))
	must(t, dir, "a2\n", "produce", "t", "-p", "0")
	must(t, dir, "b1\nb2\n", "produce", "t", "-p", "1")
	eAt := fmt.Sprintf("e@%d", stop)
	untilTime := time.UnixMilli(stop).UTC().Format(time.RFC3339Nano)
	early := []string{"0/a0", "0/a1", "1/b0"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-o", "beginning", "-o", eAt}, early},
		{[]string{"-o", eAt, "-o", "beginning"}, early},
		{[]string{"-o", "s@0", "-o", eAt}, early},
		{[]string{"-from-beginning", "-until", untilTime}, early},
		{[]string{"-o", "-1", "-until", untilTime}, nil},                                                        // the last of each partition is after the time
		{[]string{"-o", "1", "-p", "0", "-o", eAt}, []string{"0/a1"}},                                           // an offset and a stop
		{[]string{"-from-beginning", "-follow", "-until", untilTime}, early},                                    // both partitions reach the time
		{[]string{"-from-beginning", "-follow", "-p", "1", "-o", eAt}, []string{"1/b0"}},                        // the one partition read does
		{[]string{"-o", eAt}, early},                                                                            // starts at the oldest, as kcat
		{[]string{"-from-beginning", "-until", "2000-01-01"}, nil},                                              // every record is after it
		{[]string{"-from-beginning", "-until", "0s"}, []string{"0/a0", "0/a1", "0/a2", "1/b0", "1/b1", "1/b2"}}, // none is after now
	} {
		if got := partitionValues(t, dir, append([]string{"t"}, tc.args...)...); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "e@x"}, "want e@MS, milliseconds since 1970"},
		{[]string{"-o", "e@1", "-o", "e@2"}, "where to stop (e@MS) given twice (e@1, then e@2)"},
		{[]string{"-o", "beginning", "-o", "end"}, "where to start given twice (beginning, then end)"},
		{[]string{"-o", "e@1", "-until", "1h"}, "give -until or -offset e@MS, not both"},
		{[]string{"-until", "soon"}, "-until: invalid time"},
		{[]string{"-until", "1h", "-group", "g"}, "cannot go with -group"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"consume", "t"}, tc.args...)...), 2, tc.want)
	}
}

// TestConsumeGroupCommitRemoved: a group member whose committed offset
// retention removed starts where its start flags say, as -help promises:
// -since and s@MS at the first record at or after the time, as
// -from-beginning at the oldest record and no flag at the end.
func TestConsumeGroupCommitRemoved(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-segment-bytes", "64KiB")
	cases := []struct {
		group string
		args  []string
		all   bool // every record retention left, else none
	}{
		{"since", []string{"-since", "2020-01-01"}, true},
		{"ms", []string{"-o", "s@0"}, true},
		{"beginning", []string{"-from-beginning"}, true},
		{"end", nil, false},
	}
	for run := range 10 {
		var in strings.Builder
		for i := run * 500; i < (run+1)*500; i++ {
			fmt.Fprintf(&in, "%06d %s\n", i, strings.Repeat("x", 200))
		}
		must(t, dir, in.String(), "produce", "t")
		if run == 0 {
			for _, tc := range cases {
				must(t, dir, "", "consume", "t", "-group", tc.group, "-from-beginning", "-n", "1")
			}
		}
	}
	must(t, dir, "", "topics", "alter", "t", "-retention-bytes", "200KiB")
	kept := strings.Count(must(t, dir, "", "consume", "t", "-from-beginning"), "\n")
	if kept == 0 || kept == 5000 {
		t.Fatalf("retention kept %d records of 5000", kept)
	}
	for _, tc := range cases {
		got := strings.Count(must(t, dir, "", append([]string{"consume", "t", "-group", tc.group}, tc.args...)...), "\n")
		if want := map[bool]int{true: kept}[tc.all]; got != want {
			t.Errorf("group %s %q, its commit removed: %d records, want %d", tc.group, tc.args, got, want)
		}
	}
}

// TestConsumeDefaultStart: without a start flag, a run that stops at the
// end prints every record there is, as cat and kcat -e do (it used to
// start after the newest and print nothing, as if the topic were empty),
// and one that follows prints only records that come after it started, as
// tail -f and kafka-console-consumer do.
func TestConsumeDefaultStart(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "1\n2\n", "produce", "t")
	for _, args := range [][]string{{"t"}, {"t", "-e"}, {"t", "-n", "5"}} {
		if got := must(t, dir, "", append([]string{"consume"}, args...)...); got != "1\n2\n" {
			t.Errorf("consume %q printed %q, want both records", args, got)
		}
	}
	b := startBackground(t, dir, "consume", "t", "-follow")
	// Whenever it started, it started after "2": produce until it prints.
	var got []string
	for i := 3; len(got) == 0; i++ {
		must(t, dir, fmt.Sprintf("%d\n", i), "produce", "t")
		select {
		case l, ok := <-b.lines:
			if !ok {
				t.Fatalf("consume -follow ended: %s", b.stderr.String())
			}
			got = append(got, l)
		case <-time.After(100 * time.Millisecond):
		}
		if i > 600 {
			t.Fatal("consume -follow printed nothing of 600 records produced after it started")
		}
	}
	if n, err := strconv.Atoi(got[0]); err != nil || n < 3 {
		t.Errorf("consume -follow printed %q first, want a record produced after it started", got[0])
	}
	if code := b.interrupt(t); code != 0 {
		t.Errorf("Ctrl-C: exit %d: %s", code, b.stderr.String())
	}
}

// TestConsumeGroupFirstRunCommitsStart: a group's first run starts after
// the newest record and commits that start, as a Kafka consumer commits
// its position, so that the next run prints what came in between. It
// committed only what it printed, nothing: every run of a new group
// without -follow started at the end again and printed nothing, ever.
// With -n, a partition cut off before its records commits its start, not
// what was read past the count.
func TestConsumeGroupFirstRunCommitsStart(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	must(t, dir, "old\n", "produce", "t", "-p", "0")
	if got := must(t, dir, "", "consume", "t", "-group", "g"); got != "" {
		t.Fatalf("first run printed %q, want nothing (it starts after the newest)", got)
	}
	if got := committedOffsets(t, dir, "g"); !slices.Equal(got, []int64{1, 0}) {
		t.Errorf("first run committed %v, want its start, [1 0]", got)
	}
	must(t, dir, "a\n", "produce", "t", "-p", "0")
	must(t, dir, "b\n", "produce", "t", "-p", "1")
	if got := partitionValues(t, dir, "t", "-group", "g"); !slices.Equal(got, []string{"0/a", "1/b"}) {
		t.Errorf("second run printed %q, want what came after the first", got)
	}

	must(t, dir, "c\n", "produce", "t", "-p", "0")
	must(t, dir, "d\n", "produce", "t", "-p", "1")
	out := must(t, dir, "", "consume", "t", "-group", "h", "-from-beginning", "-n", "1")
	if got := committedOffsets(t, dir, "h"); slices.Min(got) != 0 || got[0]+got[1] != 1 {
		t.Errorf("after printing %q, -n 1 committed %v: want the printed record's partition at 1, the other at its start, 0", out, got)
	}
}

// TestConsumeLastFollow: -o -N with -follow prints the last N records,
// then new ones as they come, as tail -f does.
func TestConsumeLastFollow(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "1\n2\n3\n4\n", "produce", "t")
	b := startBackground(t, dir, "consume", "t", "-o", "-2", "-follow")
	got := readLines(t, b, 2)
	must(t, dir, "5\n", "produce", "t")
	got = append(got, readLines(t, b, 1)...)
	if want := []string{"3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("printed %q, want %q", got, want)
	}
	if code := b.interrupt(t); code != 0 {
		t.Errorf("Ctrl-C: exit %d: %s", code, b.stderr.String())
	}
}

// readLines reads n lines from a background runnel, or fails.
func readLines(t *testing.T, b *background, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(time.Minute)
	for len(got) < n {
		select {
		case l, ok := <-b.lines:
			if !ok {
				t.Fatalf("runnel ended after %q: %s", got, b.stderr.String())
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("read %q in a minute, want %d lines", got, n)
		}
	}
	return got
}

// TestConsumeCount: -n COUNT stops after COUNT records; -n 0 prints none;
// a negative count is a usage mistake that says what it wants.
func TestConsumeCount(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\nc\n", "produce", "t")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "2"}, "a\nb\n"},
		{[]string{"-count", "1"}, "a\n"},
		{[]string{"-n", "0"}, ""},
		{[]string{"-n", "0", "-follow"}, ""}, // returns at once, not at Ctrl-C
		{[]string{"-c", "1"}, "a\n"},         // kcat's spelling
		{[]string{"-c", "0", "-follow"}, ""},
		{[]string{"-n", "5"}, "a\nb\nc\n"},
	} {
		if got := must(t, dir, "", append([]string{"consume", "t", "-from-beginning"}, tc.args...)...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-n", "-1"), 2, "-n -1: want a count, 0 or more")
}

// TestConsumeReaderGone: consume -follow | head -1 ends when head does,
// while it waits for records that never come, and exits 0; in a group it
// commits what it wrote before. A run whose write fails as head goes away
// (more output than the pipe holds) exits 0 too, and says nothing: the
// reader has all it wanted.
func TestConsumeReaderGone(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "first\nsecond\n", "produce", "t")
	must(t, dir, "", "topics", "create", "big")
	must(t, dir, "first\n"+strings.Repeat("more of it\n", 100_000), "produce", "big")
	for _, args := range [][]string{
		{"t", "-follow"},
		{"t", "-follow", "-group", "g"},
		{"big"},
		{"big", "-group", "h"},
		{"big", "-follow", "-group", "h"},
	} {
		t.Run(fmt.Sprintf("%q", args), func(t *testing.T) {
			c := startHead(t, dir, append([]string{"consume", "-from-beginning"}, args...)...)
			c.out.Close() // head -1 goes away
			if err := c.wait(t); err != nil || c.stderr.Len() > 0 {
				t.Errorf("consume: %v; stderr %q", err, c.stderr.String())
			}
		})
	}
	desc := must(t, dir, "", "groups", "describe", "g", "-format", "json")
	var g struct {
		Topics []struct{ Partitions []struct{ Committed *int64 } }
	}
	if err := json.Unmarshal([]byte(desc), &g); err != nil {
		t.Fatal(err)
	}
	if c := g.Topics[0].Partitions[0].Committed; c == nil || *c != 2 {
		t.Errorf("the group committed %v, want 2 (both records were written to the pipe)", c)
	}
}

// TestConsumeInterruptStuck: a consume that Ctrl-C cannot stop cleanly,
// as its write to a reader that stopped reading never returns, ends at a
// second Ctrl-C (or SIGTERM), as kcat does at its first: it is not left
// for kill -9.
func TestConsumeInterruptStuck(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "big")
	must(t, dir, "first\n"+strings.Repeat("more of it\n", 100_000), "produce", "big")
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			c := startHead(t, dir, "consume", "big", "-from-beginning", "-group", "g")
			// The output stays unread, so consume blocks in a write
			// once the pipe is full. The first signal cannot wake
			// that write; when it arrived is unknown, so signal until
			// it ends.
			ended := make(chan error, 1)
			go func() { ended <- c.wait(t) }()
			for {
				c.cmd.Process.Signal(sig)
				select {
				case err := <-ended:
					if err == nil {
						t.Errorf("consume exited 0, stopped cleanly while its output was stuck")
					}
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
}

// headRun is a runnel command whose standard output the test reads as
// head would.
type headRun struct {
	cmd    *exec.Cmd
	out    *os.File // the pipe's reading end
	stderr *strings.Builder
	done   chan error
}

// startHead starts runnel with standard output to a pipe and reads the
// first line of it, which must be "first".
func startHead(t *testing.T, dir string, args ...string) *headRun {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &headRun{cmd: runnelCmd(t.Context(), dir, args...), out: r, stderr: &strings.Builder{}, done: make(chan error, 1)}
	h.cmd.Stdout, h.cmd.Stderr = w, h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Close(); h.cmd.Process.Kill() })
	line := make([]byte, len("first\n"))
	if _, err := io.ReadFull(r, line); err != nil || string(line) != "first\n" {
		t.Fatalf("read %q: %v", line, err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	return h
}

// wait returns how the command ended, failing the test if it is still
// running a minute later.
func (h *headRun) wait(t *testing.T) error {
	select {
	case err := <-h.done:
		return err
	case <-time.After(time.Minute):
		h.cmd.Process.Kill()
		t.Errorf("runnel %v still running a minute on", h.cmd.Args[1:])
		return <-h.done
	}
}

// TestConsumeTopicInJSON: consume -format json names the topic, as kcat's
// JSON does, besides the fields it always had.
func TestConsumeTopicInJSON(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "orders")
	must(t, dir, "x\n", "produce", "orders")
	out := must(t, dir, "", "consume", "orders", "-from-beginning", "-format", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"headers", "key", "offset", "partition", "time", "topic", "value"}; !slices.Equal(keys, want) || m["topic"] != "orders" {
		t.Errorf("json record %v", m)
	}
}
