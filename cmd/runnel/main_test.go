package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build the runnel binary once and run it as a user would:
// arguments, standard input, exit status, standard output and error.

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "runnel")
	// -trimpath, as TestVersionFromCommit builds a clone: the two builds
	// then share the build cache.
	args := []string{"build", "-trimpath", "-o", binPath}
	if raceEnabled {
		// No -trimpath: TestVersionFromCommit does not run under -race,
		// and without it every package runnel imports is in the build
		// cache already, compiled with -race for this test binary. With
		// it, a race pass on a cold cache compiled them all again (143
		// of the package's 249 s in a CI run).
		args = []string{"build", "-race", "-o", binPath}
		// The race runtime sleeps a second at exit, by default, to let
		// goroutines report; over hundreds of runs that is most of the
		// suite. A race found still fails the run (exit status 66).
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=10"))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// runnelCmd returns runnel with args on the log in dir.
func runnelCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "RUNNEL_DIR=") }), "RUNNEL_DIR="+dir)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runIn runs runnel to completion with stdin as its input.
func runIn(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return runFrom(t, dir, strings.NewReader(stdin), args...)
}

// runFrom runs runnel to completion with standard input read from stdin.
func runFrom(t *testing.T, dir string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := runnelCmd(ctx, dir, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("runnel %v: %v", args, err)
	}
	return r
}

// must runs runnel and fails the test unless it exits 0.
func must(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	r := runIn(t, dir, stdin, args...)
	if r.code != 0 {
		t.Fatalf("runnel %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// failing checks the contract of a failure: the exit status, one line on
// standard error, and that it says what it should.
func failing(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	if code == 1 && strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	if code == 2 && !strings.Contains(r.stderr, "usage: runnel") {
		t.Errorf("no usage on stderr: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
}

func TestUsageAndExitStatus(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: runnel"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"topics"}, 2, "missing subcommand"},
		{[]string{"topics", "rename"}, 2, `unknown subcommand "rename"`},
		{[]string{"topics", "create"}, 2, "missing argument"},
		{[]string{"topics", "create", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"topics", "create", "u", "-partitions", "x"}, 2, "invalid value"},
		{[]string{"topics", "create", "u", "-segment-bytes", "lots"}, 2, "invalid size"},
		{[]string{"topics", "create", "u", "-retention", "soon"}, 2, "invalid duration"},
		{[]string{"topics", "create", "u", "-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"topics", "alter", "t"}, 2, "nothing to change"},
		{[]string{"consume", "t", "-from-beginning", "-offset", "3"}, 2, "at most one"},
		{[]string{"consume", "t", "-format", "xml"}, 2, "want value, json or a format"},
		{[]string{"consume", "t", "-group", "g", "-partition", "0"}, 2, "-partition cannot go with -group"},
		{[]string{"produce", "t", "-durability", "maybe"}, 2, "want durable or buffered"},
		{[]string{"groups", "reset", "g", "t"}, 2, "exactly one"},
		{[]string{"groups", "reset", "g", "t", "-to-earliest", "-to-latest"}, 2, "exactly one"},
		{[]string{"topics", "create", "t"}, 1, "already exists"},
		{[]string{"topics", "create", "bad/name"}, 1, "invalid name"},
		{[]string{"topics", "create", "u", "-segment-bytes", "1KiB"}, 1, "segment bytes"},
		{[]string{"topics", "describe", "nope"}, 1, "topic not found"},
		{[]string{"consume", "nope"}, 1, "topic not found: nope (in " + dir + ": runnel topics list shows its topics, runnel topics create makes one)"},
		{[]string{"produce", "nope"}, 1, "runnel topics create makes one"},
		{[]string{"produce", "t", "-partition", "3"}, 1, "topic t has 1 partition (0 to 0), not 3"},
		{[]string{"groups", "describe", "nobody"}, 1, "group not found"},
		{[]string{"-dir", filepath.Join(dir, "missing"), "topics", "list"}, 1, "no log at"},
		{[]string{"-backend", "fast", "topics", "list"}, 2, "want auto, io_uring or pwrite"},
		// The library's own "backup:" is not said twice.
		{[]string{"backup", filepath.Join(dir, "missing", "copy")}, 1, "runnel backup: " + filepath.Join(dir, "missing", "copy") + ": the destination's parent directory must exist"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			failing(t, runIn(t, dir, "x\n", tc.args...), tc.code, tc.want)
		})
	}
	// Every command is listed in the usage.
	for _, c := range commands {
		if !slices.Contains(commandOrder, c.name) {
			t.Errorf("runnel %s is missing from commandOrder: the usage does not list it", c.name)
		}
	}
	// -help everywhere: usage on stdout, status 0.
	for _, name := range commandOrder {
		args := append(strings.Fields(name), "-help")
		r := runIn(t, dir, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: runnel "+name) || r.stderr != "" {
			t.Errorf("runnel %s -help: exit %d, stdout %.40q, stderr %q", name, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"-help"}, {"help"}, {"help", "consume"}, {"topics", "-help"}} {
		if r := runIn(t, dir, "", args...); r.code != 0 || !strings.Contains(r.stdout, "usage:") {
			t.Errorf("runnel %v: exit %d, stdout %.40q", args, r.code, r.stdout)
		}
	}
}

// TestOutputFails: a command whose output cannot all be written (a full
// disk, here /dev/full) exits 1 and says why, rather than 0 with the
// output lost.
func TestOutputFails(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\n", "produce", "t")
	must(t, dir, "", "groups", "reset", "g", "t", "-to-earliest")
	for _, args := range [][]string{
		{"topics", "list"}, {"topics", "describe", "t"}, {"groups", "list"}, {"groups", "describe", "g"},
		{"stat"}, {"verify"}, {"dump", "t"}, {"consume", "t", "-from-beginning"}, {"version"},
	} {
		cmd := runnelCmd(t.Context(), dir, args...)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = full, &stderr
		cmd.Run()
		failing(t, result{stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, 1, "no space left on device")
	}
}

// TestBackendFlag: the global -backend flag picks the append path; every
// choice writes the same log.
func TestBackendFlag(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	var want []string
	for _, b := range []string{"auto", "pwrite", "io_uring"} {
		r := runIn(t, dir, b+"\n", "-backend", b, "produce", "t")
		if b == "io_uring" && r.code == 1 && strings.Contains(r.stderr, "unavailable") {
			t.Logf("io_uring unavailable here: %s", r.stderr)
			continue
		}
		if r.code != 0 {
			t.Fatalf("runnel -backend %s produce: exit %d: %s", b, r.code, r.stderr)
		}
		want = append(want, b)
	}
	got := strings.Fields(must(t, dir, "", "-backend", "pwrite", "consume", "t", "-from-beginning", "-n", strconv.Itoa(len(want))))
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
}

func TestDirectory(t *testing.T) {
	base := t.TempDir()
	// -dir wins over $RUNNEL_DIR, before or after the command.
	other := filepath.Join(base, "other")
	must(t, base, "", "-dir", other, "topics", "create", "a")
	must(t, base, "", "topics", "create", "b", "-dir", other)
	if got := must(t, base, "", "topics", "list", "-dir", other); got != "a\nb\n" {
		t.Errorf("topics in -dir: %q", got)
	}
	if _, err := os.Stat(filepath.Join(base, "topics")); err == nil {
		t.Error("the $RUNNEL_DIR log was created too")
	}
	// A directory that is not a log stays as it was: only commands that
	// create things make a log.
	notLog := filepath.Join(base, "notes")
	os.Mkdir(notLog, 0o755)
	os.WriteFile(filepath.Join(notLog, "todo.txt"), []byte("x"), 0o644)
	for _, args := range [][]string{{"topics", "list"}, {"stat"}, {"verify"}, {"groups", "list"}, {"consume", "t"}} {
		failing(t, runIn(t, notLog, "", args...), 1, "no log at "+notLog+": it has no runnel.format")
	}
	failing(t, runIn(t, base, "", "-dir", filepath.Join(notLog, "todo.txt"), "topics", "list"), 1, "it is a file")
	if entries, _ := os.ReadDir(notLog); len(entries) != 1 {
		t.Errorf("%s holds %d entries after the reading commands, want its 1 file", notLog, len(entries))
	}
	// With neither, ./runnel-data.
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, binPath, "topics", "create", "c")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "RUNNEL_DIR=") })
	cmd.Dir = base
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(base, "runnel-data", "topics", "c", "topic.json")); err != nil {
		t.Errorf("default directory: %v", err)
	}
}

func TestTopics(t *testing.T) {
	dir := t.TempDir()
	out := must(t, dir, "", "topics", "create", "orders", "-partitions", "3", "-segment-bytes", "1MiB", "-retention", "7d", "-retention-bytes", "1GiB")
	if !strings.Contains(out, "orders") {
		t.Errorf("create said %q", out)
	}
	must(t, dir, "", "topics", "create", "audit")
	if got := must(t, dir, "", "topics", "list"); got != "audit\norders\n" {
		t.Errorf("list: %q", got)
	}
	must(t, dir, "a\nb\nc\n", "produce", "orders", "-partition", "1")
	desc := must(t, dir, "", "topics", "describe", "orders")
	for _, want := range []string{"partitions       3", "1048576", "retention        7d", "1073741824", "PARTITION"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
	if !regexp.MustCompile(`(?m)^1\s+0\s+3\s+3\s+1\s`).MatchString(desc) {
		t.Errorf("describe does not show partition 1 with offsets 0-3:\n%s", desc)
	}
	must(t, dir, "", "topics", "alter", "orders", "-retention", "36h")
	desc = must(t, dir, "", "topics", "describe", "orders")
	if !strings.Contains(desc, "retention        36h") || !strings.Contains(desc, "1073741824") {
		t.Errorf("after alter:\n%s", desc)
	}
	if out := must(t, dir, "", "topics", "alter", "orders", "-partitions", "5"); !strings.Contains(out, "added 2 partitions: 5 now") {
		t.Errorf("alter -partitions 5 said %q", out)
	}
	if desc = must(t, dir, "", "topics", "describe", "orders"); !regexp.MustCompile(`(?m)^4\s+0\s+0\s`).MatchString(desc) {
		t.Errorf("describe does not show the new partition 4, empty:\n%s", desc)
	}
	failing(t, runIn(t, dir, "", "topics", "alter", "orders", "-partitions", "2"), 1, "never shrink")
	must(t, dir, "", "topics", "delete", "audit")
	if got := must(t, dir, "", "topics", "list"); got != "orders\n" {
		t.Errorf("list after delete: %q", got)
	}
	failing(t, runIn(t, dir, "", "topics", "delete", "audit"), 1, "topic not found")
}

// lines makes n lines of test input: short, empty, long, with spaces,
// tabs, carriage returns and non-ASCII text.
func lines(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		switch {
		case i%1000 == 999:
			out[i] = ""
		case i%997 == 0:
			out[i] = prefix + strings.Repeat("long ", 2000) + strconv.Itoa(i)
		case i%101 == 0:
			out[i] = fmt.Sprintf("%s%d\tcarriage\rreturn ünïcödé ✓", prefix, i)
		default:
			out[i] = fmt.Sprintf("%s%d some value", prefix, i)
		}
	}
	return out
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	in := lines(100_000, "")
	input := strings.Join(in, "\n") + "\n"
	before := time.Now().Truncate(time.Millisecond) // records keep milliseconds
	if out := must(t, dir, input, "produce", "t"); out != "" {
		t.Errorf("produce printed %q", out)
	}
	got := must(t, dir, "", "consume", "t", "-from-beginning")
	if got != input {
		t.Fatalf("consumed %d bytes, produced %d; first difference at byte %d", len(got), len(input), firstDiff(got, input))
	}
	// -o end: only what comes after, nothing.
	if got := must(t, dir, "", "consume", "t", "-o", "end"); got != "" {
		t.Errorf("consume from the end printed %.50q", got)
	}
	// -n, -offset with -partition, json.
	if got := must(t, dir, "", "consume", "t", "-from-beginning", "-n", "3"); got != strings.Join(in[:3], "\n")+"\n" {
		t.Errorf("-n 3: %q", got)
	}
	if got := must(t, dir, "", "consume", "t", "-offset", "99998", "-partition", "0"); got != strings.Join(in[99998:], "\n")+"\n" {
		t.Errorf("-offset 99998: %q", got)
	}
	js := must(t, dir, "", "consume", "t", "-offset", "101", "-n", "1", "-format", "json")
	var rec struct {
		Partition int
		Offset    int64
		Time      time.Time
		Key       any
		Value     string
		Headers   []any
	}
	if err := json.Unmarshal([]byte(js), &rec); err != nil {
		t.Fatalf("json %q: %v", js, err)
	}
	if rec.Offset != 101 || rec.Value != in[101] || rec.Key != nil || rec.Headers == nil || rec.Time.Before(before) || rec.Time.After(time.Now()) {
		t.Errorf("json record %+v from %q", rec, js)
	}
	// -since a minute from now: nothing yet; an hour ago: everything.
	if got := must(t, dir, "", "consume", "t", "-since", time.Now().Add(time.Minute).Format(time.RFC3339)); got != "" {
		t.Errorf("-since the future: %.50q", got)
	}
	if got := must(t, dir, "", "consume", "t", "-since", "1h", "-n", "2"); got != strings.Join(in[:2], "\n")+"\n" {
		t.Errorf("-since 1h: %q", got)
	}
	// Keys, buffered durability, a last line without a newline.
	must(t, dir, "", "topics", "create", "k", "-partitions", "4")
	must(t, dir, "a:1\nb:2\nno separator\n:empty key\na:3", "produce", "k", "-key-sep", ":", "-durability", "buffered")
	var keyed []string
	for _, l := range strings.Split(strings.TrimSpace(must(t, dir, "", "consume", "k", "-from-beginning", "-format", "json")), "\n") {
		var r struct {
			Key   *string
			Value string
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		k := "<nil>"
		if r.Key != nil {
			k = *r.Key
		}
		keyed = append(keyed, k+"="+r.Value)
	}
	slices.Sort(keyed)
	if want := []string{"<nil>=no separator", "=empty key", "a=1", "a=3", "b=2"}; !slices.Equal(keyed, want) {
		t.Errorf("keyed records %q, want %q", keyed, want)
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestTwoProducers(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	const n = 30_000
	var wg sync.WaitGroup
	for _, who := range []string{"A", "B"} {
		wg.Go(func() {
			r := runIn(t, dir, strings.Join(lines(n, who+"-"), "\n")+"\n", "produce", "t")
			if r.code != 0 {
				t.Errorf("producer %s: exit %d: %s", who, r.code, r.stderr)
			}
		})
	}
	wg.Wait()
	out := must(t, dir, "", "consume", "t", "-from-beginning", "-format", "json")
	got := map[string]int{}
	last := map[string]int{} // per producer and partition: the last line number seen
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r struct {
			Partition int
			Value     string
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got[r.Value]++
		if r.Value == "" {
			continue
		}
		who := r.Value[:1]
		num, _ := strconv.Atoi(strings.FieldsFunc(r.Value[2:], func(c rune) bool { return c < '0' || c > '9' })[0])
		k := fmt.Sprintf("%s/%d", who, r.Partition)
		if prev, ok := last[k]; ok && num <= prev {
			t.Fatalf("partition %d: %s line %d after %d", r.Partition, who, num, prev)
		}
		last[k] = num
	}
	want := map[string]int{}
	for _, who := range []string{"A", "B"} {
		for _, l := range lines(n, who+"-") {
			want[l]++
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct lines, want %d", len(got), len(want))
	}
	for l, c := range want {
		if got[l] != c {
			t.Fatalf("line %.40q read %d times, want %d", l, got[l], c)
		}
	}
}

// background is a runnel process whose output lines the test reads as
// they come.
type background struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
	done   chan error
}

func startBackground(t *testing.T, dir string, args ...string) *background {
	t.Helper()
	b := &background{lines: make(chan string, 100_000), done: make(chan error, 1)}
	b.cmd = runnelCmd(context.Background(), dir, args...)
	b.cmd.Stderr = &b.stderr
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
		b.done <- b.cmd.Wait()
	}()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	return b
}

// interrupt sends Ctrl-C and returns the exit status.
func (b *background) interrupt(t *testing.T) int {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	for range b.lines {
	}
	select {
	case err := <-b.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20s after Ctrl-C")
	}
	return -1
}

func TestConsumeFollow(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	must(t, dir, "old\n", "produce", "t")
	// From now on, however long it takes to start: what is produced next
	// is what it must print, and only that.
	b := startBackground(t, dir, "consume", "t", "-follow", "-since", time.Now().Format(time.RFC3339Nano))
	must(t, dir, "one\ntwo\nthree\n", "produce", "t")
	var got []string
	timeout := time.After(20 * time.Second)
	for len(got) < 3 {
		select {
		case l, ok := <-b.lines:
			if !ok {
				t.Fatalf("consume -follow ended: %s", b.stderr.String())
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("consume -follow printed %q in 20s", got)
		}
	}
	if !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("follow printed %q", got)
	}
	if code := b.interrupt(t); code != 0 || b.stderr.Len() != 0 {
		t.Errorf("Ctrl-C: exit %d, stderr %q", code, b.stderr.String())
	}
}

// TestConsumeGroup: two consume -group processes split the partitions,
// print every record once between them, and commit what they printed,
// on Ctrl-C too.
func TestConsumeGroup(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "4")
	a := startBackground(t, dir, "consume", "t", "-group", "g", "-from-beginning", "-follow", "-format", "json")
	b := startBackground(t, dir, "consume", "t", "-group", "g", "-from-beginning", "-follow", "-format", "json")
	owners := regexp.MustCompile(`(?m)^\d+\s+\S+\s+\d+\s+\S+\s+member (\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := runIn(t, dir, "", "groups", "describe", "g").stdout
		m := owners.FindAllStringSubmatch(out, -1)
		count := map[string]int{}
		for _, x := range m {
			count[x[1]]++
		}
		if len(m) == 4 && len(count) == 2 && count[m[0][1]] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two members did not split the partitions:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	const n = 4000
	var input strings.Builder
	for i := range n {
		fmt.Fprintf(&input, "key%d:value %d\n", i%97, i)
	}
	must(t, dir, input.String(), "produce", "t", "-key-sep", ":")

	parts := map[string]map[int]bool{"a": {}, "b": {}}
	seen := map[string]int{}
	timeout := time.After(30 * time.Second)
	for len(seen) < n {
		var l string
		var who string
		var ok bool
		select {
		case l, ok = <-a.lines:
			who = "a"
		case l, ok = <-b.lines:
			who = "b"
		case <-timeout:
			t.Fatalf("read %d of %d records in 30s", len(seen), n)
		}
		if !ok {
			t.Fatalf("consumer %s ended: %s%s", who, a.stderr.String(), b.stderr.String())
		}
		var r struct {
			Partition int
			Value     string
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		parts[who][r.Partition] = true
		seen[r.Value]++
		if seen[r.Value] > 1 {
			t.Fatalf("%q printed twice", r.Value)
		}
	}
	for p := range parts["a"] {
		if parts["b"][p] {
			t.Errorf("partition %d read by both members", p)
		}
	}
	if len(parts["a"]) == 0 || len(parts["b"]) == 0 {
		t.Errorf("one member read nothing: %v", parts)
	}
	for _, c := range []*background{a, b} {
		if code := c.interrupt(t); code != 0 {
			t.Errorf("Ctrl-C: exit %d: %s", code, c.stderr.String())
		}
	}
	desc := must(t, dir, "", "groups", "describe", "g")
	lag := regexp.MustCompile(`(?m)^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s`)
	rows := lag.FindAllStringSubmatch(desc, -1)
	if len(rows) != 4 {
		t.Fatalf("describe:\n%s", desc)
	}
	for _, r := range rows {
		if r[4] != "0" || r[2] != r[3] {
			t.Errorf("partition %s: committed %s of %s, lag %s after Ctrl-C", r[1], r[2], r[3], r[4])
		}
	}
	// Nothing is left for the group; a reset makes it read everything again.
	if got := must(t, dir, "", "consume", "t", "-group", "g"); got != "" {
		t.Errorf("the group read again: %.60q", got)
	}
	if got := must(t, dir, "", "groups", "list"); got != "g\n" {
		t.Errorf("groups list: %q", got)
	}
	must(t, dir, "", "groups", "reset", "g", "t", "-to-earliest")
	if got := must(t, dir, "", "consume", "t", "-group", "g"); strings.Count(got, "\n") != n {
		t.Errorf("after reset the group read %d records", strings.Count(got, "\n"))
	}
	// groups delete with a topic: only the partitions named read again.
	if got := must(t, dir, "", "groups", "delete", "g", "t", "-p", "0"); got != "deleted group g's offsets for topic t, partitions [0]\n" {
		t.Errorf("groups delete g t -p 0: %q", got)
	}
	again := must(t, dir, "", "consume", "t", "-group", "g", "-from-beginning", "-f", `%p\n`)
	if again == "" || strings.Trim(again, "0\n") != "" {
		t.Errorf("after deleting partition 0's offset the group read partitions %q, want 0 alone", again)
	}
	failing(t, runIn(t, dir, "", "groups", "delete", "g", "-p", "0"), 2, "-partition needs a TOPIC")
	failing(t, runIn(t, dir, "", "groups", "delete", "g", "t", "-force"), 2, "-force deletes a whole group")
	failing(t, runIn(t, dir, "", "groups", "delete", "g", "t", "-p", "9"), 1, "partition")
	st := must(t, dir, "", "stat")
	for _, want := range []string{"TOPIC", "IN/s", "GROUP", "LAG"} {
		if !strings.Contains(st, want) {
			t.Errorf("stat lacks %q:\n%s", want, st)
		}
	}

	// groups delete refuses while a member lives, unless forced.
	live := startBackground(t, dir, "consume", "t", "-group", "g", "-follow")
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(runIn(t, dir, "", "groups", "describe", "g").stdout, "1 live member") {
		if time.Now().After(deadline) {
			t.Fatal("the member did not join")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failing(t, runIn(t, dir, "", "groups", "delete", "g"), 1, "active members")
	failing(t, runIn(t, dir, "", "groups", "delete", "g", "t"), 1, "live members for topic t")
	if got := must(t, dir, "", "groups", "list"); got != "g\n" {
		t.Errorf("groups list after a refused delete: %q", got)
	}
	live.interrupt(t)
	if got := must(t, dir, "", "groups", "delete", "g"); got != "deleted group g\n" {
		t.Errorf("groups delete: %q", got)
	}
	if got := must(t, dir, "", "groups", "list"); got != "" {
		t.Errorf("groups list after delete: %q", got)
	}
	failing(t, runIn(t, dir, "", "groups", "delete", "g"), 1, "group not found")
}

// frameLines runs dump and returns the positions of the frames of each
// segment file.
func framePositions(t *testing.T, dir, topic string, partition int) map[string][]int64 {
	t.Helper()
	out := must(t, dir, "", "dump", topic, "-partition", strconv.Itoa(partition))
	pos := map[string][]int64{}
	file := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasSuffix(l, ".log"):
			file = l
		case strings.HasPrefix(l, "  @"):
			p, _ := strconv.ParseInt(strings.Fields(l)[0][1:], 10, 64)
			pos[file] = append(pos[file], p)
		}
	}
	return pos
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRepair(t *testing.T) {
	clean := t.TempDir()
	must(t, clean, "", "topics", "create", "t", "-partitions", "2", "-segment-bytes", "64KiB")
	// Several produce runs, so that segments hold several frames.
	for i := range 12 {
		must(t, clean, strings.Join(lines(700, fmt.Sprintf("%d-", i)), "\n")+"\n", "produce", "t", "-partition", "0")
	}
	must(t, clean, "other\npartition\n", "produce", "t", "-partition", "1")
	if out := must(t, clean, "", "verify"); !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("verify of a clean log: %q", out)
	}
	frames := framePositions(t, clean, "t", 0)
	var files []string
	for f := range frames {
		files = append(files, f)
	}
	slices.Sort(files)
	if len(files) < 3 {
		t.Fatalf("partition 0 has segments %v", files)
	}

	t.Run("torn tail", func(t *testing.T) {
		dir := t.TempDir()
		copyTree(t, clean, dir)
		last := files[len(files)-1]
		// What a writer that died 20 bytes into a frame leaves: the start
		// of a header past the committed data.
		path := filepath.Join(dir, last)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pos := int64(len(data))
		head := data[frames[last][len(frames[last])-1]:][:20]
		if err := os.WriteFile(path, append(data, head...), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runIn(t, dir, "", "verify", "t")
		failing(t, r, 1, "found 1 problem")
		if want := fmt.Sprintf("%s at byte %d", last, pos); !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "torn tail") {
			t.Errorf("verify report does not name %q:\n%s", want, r.stdout)
		}
		out := must(t, dir, "", "repair")
		if want := fmt.Sprintf("%s: cut 20 bytes of torn tail at byte %d", last, pos); !strings.Contains(out, want) {
			t.Errorf("repair report lacks %q:\n%s", want, out)
		}
		if out := must(t, dir, "", "verify"); !strings.HasSuffix(out, ": ok\n") {
			t.Errorf("verify after repair: %q", out)
		}
		if out := must(t, dir, "", "repair"); out != "nothing to repair\n" {
			t.Errorf("second repair: %q", out)
		}
	})

	t.Run("damaged frame and index", func(t *testing.T) {
		dir := t.TempDir()
		copyTree(t, clean, dir)
		seg := files[0]
		pos := frames[seg][len(frames[seg])-2] // the last records frame before the seal
		f, err := os.OpenFile(filepath.Join(dir, seg), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("XX"), pos+60)
		f.Close()
		idx := strings.TrimSuffix(files[1], ".log") + ".index"
		if err := os.WriteFile(filepath.Join(dir, idx), []byte("garbage!garbage!"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runIn(t, dir, "", "verify")
		failing(t, r, 1, "found 2 problems")
		for _, want := range []string{fmt.Sprintf("%s at byte %d", seg, pos), "corrupt", idx, "1 repairable"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("verify report lacks %q:\n%s", want, r.stdout)
			}
		}
		r = runIn(t, dir, "", "repair", "t")
		failing(t, r, 1, "cannot be repaired")
		if !strings.Contains(r.stdout, idx+": rebuilt index") || !strings.Contains(r.stdout, "not repaired: "+seg) {
			t.Errorf("repair report:\n%s", r.stdout)
		}
		r = runIn(t, dir, "", "verify")
		failing(t, r, 1, "found 1 problem")
		// dump shows the damaged frame.
		if out := must(t, dir, "", "dump", "t", "-partition", "0"); !strings.Contains(out, fmt.Sprintf("@%d records committed", pos)) || !strings.Contains(out, "BAD: ") {
			t.Errorf("dump does not show the damage at %d", pos)
		}
		// A consumer stops at the damage with an error naming it: exit 1,
		// never a wait.
		r = runIn(t, dir, "", "consume", "t", "-partition", "0", "-from-beginning")
		failing(t, r, 1, "corrupt data in")
		if !strings.Contains(r.stderr, fmt.Sprintf("%s at byte %d", seg, pos)) {
			t.Errorf("consume error does not name the damage: %s", r.stderr)
		}
		before := strings.Count(r.stdout, "\n")

		// Salvage: the damaged frame's offsets become a gap, printed;
		// everything else reads again, and verify lists the gap.
		out := must(t, dir, "", "repair", "-salvage", "t")
		m := regexp.MustCompile(`lost: t/0: offsets (\d+)(?:-(\d+))?\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("repair -salvage does not print the lost offsets:\n%s", out)
		}
		from, _ := strconv.Atoi(m[1])
		to := from
		if m[2] != "" {
			to, _ = strconv.Atoi(m[2])
		}
		if from != before {
			t.Errorf("salvage lost offsets %d-%d; the consumer read %d records before the damage", from, to, before)
		}
		r = runIn(t, dir, "", "verify")
		if r.code != 0 || !strings.Contains(r.stdout, "known loss: t/0: offsets "+m[0][len("lost: t/0: offsets "):len(m[0])-1]) {
			t.Errorf("verify after salvage: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		all := must(t, dir, "", "consume", "t", "-partition", "0", "-from-beginning")
		if got, want := strings.Count(all, "\n"), 12*700-(to-from+1); got != want {
			t.Errorf("consume after salvage: %d records, want %d", got, want)
		}
		if out := must(t, dir, "", "repair"); out != "nothing to repair\n" {
			t.Errorf("repair after salvage: %q", out)
		}
	})
}

func TestRetentionAlter(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-segment-bytes", "64KiB")
	// Several produce runs, so that frames stay well below a segment.
	for run := range 10 {
		var in strings.Builder
		for i := run * 500; i < (run+1)*500; i++ {
			fmt.Fprintf(&in, "%06d %s\n", i, strings.Repeat("x", 200))
		}
		must(t, dir, in.String(), "produce", "t")
	}
	out := must(t, dir, "", "topics", "alter", "t", "-retention-bytes", "200KiB")
	if !regexp.MustCompile(`retention removed \d+ segments? `).MatchString(out) {
		t.Errorf("alter said %q", out)
	}
	got := must(t, dir, "", "consume", "t", "-from-beginning")
	first, _ := strconv.Atoi(got[:6])
	if first == 0 || !strings.HasSuffix(got, fmt.Sprintf("004999 %s\n", strings.Repeat("x", 200))) || strings.Count(got, "\n") != 5000-first {
		t.Errorf("after retention: first record %d, %d records", first, strings.Count(got, "\n"))
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-offset", "0"), 1, "out of range")
}

func TestStatFollow(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	b := startBackground(t, dir, "stat", "-follow")
	var got []string
	timeout := time.After(20 * time.Second)
	for !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "IN/s") }) {
		select {
		case l := <-b.lines:
			got = append(got, l)
		case <-timeout:
			t.Fatalf("stat -follow printed %q", got)
		}
	}
	if code := b.interrupt(t); code != 0 {
		t.Errorf("Ctrl-C: exit %d: %s", code, b.stderr.String())
	}
}

// TestReadOnlyLog runs the reading commands on a log this process may only
// read (a read-only bind mount when running as root, whom file modes do
// not stop; the files' modes otherwise): they work, and a command that
// must write says "permission denied" or "read-only file system".
func TestReadOnlyLog(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a\nb\nc\n", "produce", "t")
	must(t, dir, "", "consume", "t", "-group", "g", "-from-beginning")
	ro := dir
	if os.Geteuid() == 0 {
		ro = t.TempDir()
		if out, err := exec.Command("mount", "--bind", dir, ro).CombinedOutput(); err != nil {
			t.Skipf("mount --bind: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", ro).Run() })
		if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
			t.Fatalf("remount read-only: %v: %s", err, out)
		}
	} else {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if d.IsDir() {
				return os.Chmod(path, 0o555)
			}
			return os.Chmod(path, 0o444)
		})
		t.Cleanup(func() {
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error { return os.Chmod(path, 0o755) })
		})
	}
	if out := must(t, ro, "", "consume", "t", "-from-beginning"); out != "a\nb\nc\n" {
		t.Errorf("consume: %q", out)
	}
	if out := must(t, ro, "", "verify"); !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("verify: %q", out)
	}
	if out := must(t, ro, "", "dump", "t"); !strings.Contains(out, `value "c"`) {
		t.Errorf("dump: %q", out)
	}
	r := runIn(t, ro, "", "consume", "t", "-group", "g2", "-from-beginning")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") && !strings.Contains(r.stderr, "read-only file system") {
		t.Errorf("consume -group on a read-only log: exit %d: %s", r.code, r.stderr)
	}
}
