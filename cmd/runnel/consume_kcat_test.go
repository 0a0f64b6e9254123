package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runnel-log/runnel"
)

// TestConsumeKcatJSON: -J prints kcat -J's envelope, field for field and
// in its order, each object ended by -D's DELIM (a newline by default);
// where kcat is installed, the very lines kcat -J prints of the same
// records read through runnel serve.
func TestConsumeKcatJSON(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "k1:v1\nno key\n", "produce", "t", "-K", ":", "-H", "h1=x", "-H", "h2=y=z", "-H", "empty=")
	must(t, dir, "plain <&>\n\n", "produce", "t")
	recs := consumeJSON(t, dir, "t", "-from-beginning")
	if len(recs) != 4 {
		t.Fatalf("consumed %d records", len(recs))
	}
	got := must(t, dir, "", "consume", "t", "-from-beginning", "-J")
	headers := `"headers":["h1","x","h2","y=z","empty",""],`
	want := ""
	for i, rest := range []string{
		headers + `"key":"k1","payload":"v1"`,
		headers + `"key":null,"payload":"no key"`,
		`"key":null,"payload":"plain <&>"`,
		`"key":null,"payload":""`,
	} {
		want += fmt.Sprintf(`{"topic":"t","partition":0,"offset":%d,"tstype":"create","ts":%d,"broker":0,%s}`+"\n",
			i, recs[i].Time.UnixMilli(), rest)
	}
	if got != want {
		t.Errorf("-J:\n%s", cmp.Diff(want, got))
	}
	if got := must(t, dir, "", "consume", "t", "-from-beginning", "--kcat-json", "-n", "1"); got != strings.SplitAfter(want, "\n")[0] {
		t.Errorf("--kcat-json -n 1: %q", got)
	}

	// Bytes that are not UTF-8, which kcat writes as they are (not JSON),
	// are {"base64": ...}, as in -format json.
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte{0xff, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, dir, "", "topics", "create", "b")
	must(t, dir, "", "produce", "b", "-file", bin, "-k", "k")
	if got := must(t, dir, "", "consume", "b", "-from-beginning", "-J"); !strings.HasSuffix(got, `"key":"k","payload":{"base64":"/wA="}}`+"\n") {
		t.Errorf("-J of a binary value: %q", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-J", "-f", "json"}, "give one"},
		{[]string{"-J", "-K", ":"}, "not -J"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"consume", "t"}, tc.args...)...), 2, tc.want)
	}

	// -D ends each object instead of the newline, as kcat -J -D does.
	delimited := strings.ReplaceAll(want, "\n", "|\x1e")
	if got := must(t, dir, "", "consume", "t", "-J", "-D", `|\x1e`); got != delimited {
		t.Errorf("-J -D:\n%s", cmp.Diff(delimited, got))
	}

	kcat := kcatThroughServe(t, dir)
	if out := kcat("-C", "-t", "t", "-o", "beginning", "-e", "-q", "-J"); out != want {
		t.Errorf("kcat -J through runnel serve and runnel consume -J differ:\n%s", cmp.Diff(out, want))
	}
	if out := kcat("-C", "-t", "t", "-o", "beginning", "-e", "-q", "-J", "-D", `|\x1e`); out != delimited {
		t.Errorf("kcat -J -D through runnel serve and runnel consume -J -D differ:\n%s", cmp.Diff(out, delimited))
	}
}

// kcatThroughServe starts runnel serve on dir and returns a function that
// runs kcat against it with the arguments given (-b is added) and returns
// its standard output; it skips the test where kcat is not installed,
// unless RUNNEL_REQUIRE_CLIENTS is set. serve is stopped, and must exit 0,
// when the test ends.
func kcatThroughServe(t *testing.T, dir string) func(args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
			t.Fatal("kcat not found, and RUNNEL_REQUIRE_CLIENTS is set")
		}
		t.Skip("kcat not found: the output is not compared with kcat's own")
	}
	b, addr := startServe(t, dir)
	t.Cleanup(func() {
		if code := b.interrupt(t); code != 0 {
			t.Errorf("serve exited %d after Ctrl-C: %s", code, b.stderr.String())
		}
	})
	return func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var stderr strings.Builder
		cmd := exec.CommandContext(ctx, path, append([]string{"-b", addr}, args...)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %q: %v: %s", args, err, stderr.String())
		}
		return string(out)
	}
}

// TestConsumeKcatLetters: kcat's %R (the value's length as a 32-bit
// big-endian integer, -1 for none), -o stored (a group's committed
// offset; without a group a usage mistake), -u (each record written out
// at once) and -q (no progress bar), each of which was a usage mistake.
func TestConsumeKcatLetters(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "ab\n\nc\n", "produce", "t", "-Z")
	if got, want := must(t, dir, "", "consume", "t", "-from-beginning", "-f", "%R%s"), "\x00\x00\x00\x02ab\xff\xff\xff\xff\x00\x00\x00\x01c"; got != want {
		t.Errorf("%%R: %q, want %q", got, want)
	}

	if got := must(t, dir, "", "consume", "t", "-group", "g", "-from-beginning", "-n", "1"); got != "ab\n" {
		t.Fatalf("group's first record: %q", got)
	}
	if got := must(t, dir, "", "consume", "t", "-group", "g", "-o", "stored", "-Z"); got != "NULL\nc\n" {
		t.Errorf("-o stored: %q, want the records after the group's commit", got)
	}
	if got := must(t, dir, "", "consume", "t", "-group", "h", "-o", "stored"); got != "" {
		t.Errorf("-o stored of a group that committed nothing: %q, want none (it starts at the end)", got)
	}
	failing(t, runIn(t, dir, "", "consume", "t", "-o", "stored"), 2, "-offset stored is a group's committed offset: it goes with -group")

	// -u and -q change how, not what: the output is the same as without.
	for _, tc := range []struct{ args, same []string }{
		{[]string{"-u"}, nil},
		{[]string{"-q"}, nil},
		{[]string{"--unbuffered", "--quiet"}, nil},
		{[]string{"-u", "-J"}, []string{"-J"}},
		{[]string{"-u", "-follow"}, nil},
	} {
		run := func(args []string) string {
			return must(t, dir, "", append([]string{"consume", "t", "-from-beginning", "-n", "2"}, args...)...)
		}
		if got, want := run(tc.args), run(tc.same); got != want {
			t.Errorf("%q: %q, want %q", tc.args, got, want)
		}
	}
}

// TestConsumeNullHeaderValue: a header without a value (null, which a
// Kafka client, the library or -H KEY sends; -H KEY= sends an empty one)
// prints as KEY=NULL in %h, with -Z or without, as kcat prints it; where
// kcat is installed, the very lines kcat -f prints through runnel serve.
func TestConsumeNullHeaderValue(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := runnel.Record{Value: []byte("v"), Headers: []runnel.Header{{Key: "none"}, {Key: "empty", Value: []byte{}}, {Key: "x", Value: []byte("y")}}}
	if _, err := p.Send(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	must(t, dir, "w\n", "produce", "t", "-H", "none", "-H", "empty=", "-H", "x=y")
	format := `%h|%k|%s\n`
	for _, tc := range []struct{ null, want string }{
		{"", "none=NULL,empty=,x=y||v\nnone=NULL,empty=,x=y||w\n"},
		{"-Z", "none=NULL,empty=,x=y|NULL|v\nnone=NULL,empty=,x=y|NULL|w\n"},
	} {
		args := []string{"consume", "t", "-f", format}
		if tc.null != "" {
			args = append(args, tc.null)
		}
		if got := must(t, dir, "", args...); got != tc.want {
			t.Errorf("%q: %q, want %q", args, got, tc.want)
		}
	}

	kcat := kcatThroughServe(t, dir)
	for _, null := range []string{"", "-Z"} {
		args := []string{"-C", "-t", "t", "-e", "-q", "-f", format}
		if null != "" {
			args = append(args, null)
		}
		want := kcat(args...)
		if got := must(t, dir, "", append([]string{"consume", "t"}, args[5:]...)...); got != want {
			t.Errorf("kcat %q prints %q, runnel consume %q", args, want, got)
		}
	}
}
