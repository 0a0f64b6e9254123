package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestProduceKeysHeadersPartitions: -K and -key-sep split keys (escapes
// read), -k gives a fixed key, -H adds headers (repeatable, = allowed in
// the value), -p picks the partition.
func TestProduceKeysHeadersPartitions(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "3")
	must(t, dir, "a\t1\nb\t2\n", "produce", "t", "-K", `\t`, "-p", "2", "-H", "source=test", "-H", "expr=a=b")
	must(t, dir, "x\ny\n", "produce", "t", "-k", "fixed", "--partition=1")
	must(t, dir, "z\n", "produce", "t", "-key-sep=:", "-p1")
	type rec struct {
		Partition int
		Key       *string
		Value     string
		Headers   []struct{ Key, Value string }
	}
	var got []rec
	for _, r := range consumeJSON(t, dir, "t", "-from-beginning") {
		got = append(got, rec{r.Partition, r.Key, r.Value, r.Headers})
	}
	str := func(s string) *string { return &s }
	hdrs := []struct{ Key, Value string }{{"source", "test"}, {"expr", "a=b"}}
	none := []struct{ Key, Value string }{}
	want := []rec{
		{1, str("fixed"), "x", none}, {1, str("fixed"), "y", none}, {1, nil, "z", none},
		{2, str("a"), "1", hdrs}, {2, str("b"), "2", hdrs},
	}
	slices.SortStableFunc(got, func(a, b rec) int { return a.Partition - b.Partition })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "=v"}, "want KEY=VALUE or KEY"},
		{[]string{"-H", ""}, "want KEY=VALUE or KEY"},
		{[]string{"-D", ""}, "-record-sep is empty"},
		{[]string{"-D", `\z`}, "unknown escape"},
		{[]string{"-p", "-2"}, "want a partition number, 0 or more (or -1"},
		{[]string{"-file", "x", "-K", ":"}, "send each file whole"},
	} {
		failing(t, runIn(t, dir, "q\n", append([]string{"produce", "t"}, tc.args...)...), 2, tc.want)
	}
	failing(t, runIn(t, dir, "q\n", "produce", "t", "-p", "3"), 1, "topic t has 3 partitions (0 to 2), not 3")
}

// TestProduceHeaderWithoutValue: -H KEY without = sends a header without
// a value (null), as kcat -H KEY does; -H KEY= an empty one.
func TestProduceHeaderWithoutValue(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "v\n", "produce", "t", "-H", "none", "-H", "empty=", "-H", "x=y")
	got := must(t, dir, "", "consume", "t", "-f", "json")
	if want := `"headers":[{"key":"none","value":null},{"key":"empty","value":""},{"key":"x","value":"y"}]`; !strings.Contains(got, want) {
		t.Errorf("consume -f json: %s, want %s", got, want)
	}
}

// TestProducePartitionAny: -p -1 is kcat's "any partition"
// (librdkafka's RD_KAFKA_PARTITION_UA, kcat's default), which leaves the
// choice to the partitioner as no -p does: a keyed record goes where its
// key hashes to (kcat -P -p -1 -K: through runnel serve sent 40 records of
// one key to one partition of four).
func TestProducePartitionAny(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "4")
	must(t, dir, strings.Repeat("k:v\n", 20), "produce", "t", "-K:", "-p", "-1")
	must(t, dir, "k:w\n", "produce", "t", "-K:")
	parts := map[int]int{}
	for _, r := range consumeJSON(t, dir, "t") {
		parts[r.Partition]++
	}
	if len(parts) != 1 {
		t.Errorf("records of one key, with -p -1 and without, went to partitions %v, want one", parts)
	}
}

// TestProduceDelimiter: -D splits records at any byte string instead of a
// newline, which then is data.
func TestProduceDelimiter(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "one\nline\x00two\x00\x00last", "produce", "t", "-D", `\0`)
	must(t, dir, "k1=v1||k2=v2||", "produce", "t", "-D", "||", "-K", "=")
	var got []string
	for _, r := range consumeJSON(t, dir, "t", "-from-beginning") {
		k := "-"
		if r.Key != nil {
			k = *r.Key
		}
		got = append(got, k+" "+r.Value)
	}
	if want := []string{"- one\nline", "- two", "- ", "- last", "k1 v1", "k2 v2"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// TestProduceFile: -file sends each file whole, byte for byte, as one
// record (binary data with newlines, NULs and invalid UTF-8 included);
// "-" is all of standard input. A file that cannot be sent stops the
// command before anything is sent.
func TestProduceFile(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 3<<20)
	for i := range bin {
		bin[i] = byte(rng.UintN(256))
	}
	copy(bin, "\n\r\n\x00\xff\xfe")
	files := t.TempDir()
	binPath := filepath.Join(files, "blob.bin")
	emptyPath := filepath.Join(files, "empty")
	os.WriteFile(binPath, bin, 0o644)
	os.WriteFile(emptyPath, nil, 0o644)
	must(t, dir, "stdin as\none record\n", "produce", "t", "-file", binPath, "-file", emptyPath, "-file", "-", "-H", "name=blob", "-k", "key")

	// The raw value, as -f %s prints it, is the file.
	out := must(t, dir, "", "consume", "t", "-from-beginning", "-n", "1", "-f", "%s")
	if !bytes.Equal([]byte(out), bin) {
		t.Errorf("the record is %d bytes, not the file's %d", len(out), len(bin))
	}
	outs := strings.Split(must(t, dir, "", "consume", "t", "-from-beginning", "-format", "json"), "\n")
	var first struct {
		Key     string
		Value   struct{ Base64 string }
		Headers []struct{ Key, Value string }
	}
	if err := json.Unmarshal([]byte(outs[0]), &first); err != nil {
		t.Fatal(err)
	}
	if dec, _ := base64.StdEncoding.DecodeString(first.Value.Base64); !bytes.Equal(dec, bin) || first.Key != "key" || len(first.Headers) != 1 {
		t.Errorf("json record: key %q, %d value bytes, headers %v", first.Key, len(dec), first.Headers)
	}
	recs := consumeJSON(t, dir, "t", "-o", "1")
	if len(recs) != 2 || recs[0].Value != "" || recs[1].Value != "stdin as\none record\n" {
		t.Errorf("empty file and stdin records: %+v", recs)
	}

	// A missing file, a directory, a file too large: nothing is sent.
	big := filepath.Join(files, "big")
	os.WriteFile(big, nil, 0o644)
	os.Truncate(big, maxRecord+1) // sparse
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(files, "missing"), "no such file"},
		{files, "is a directory"},
		{big, "the largest record"},
	} {
		failing(t, runIn(t, dir, "", "produce", "t", "-file", binPath, "-file", tc.file), 1, tc.want)
	}
	if got := must(t, dir, "", "consume", "t", "-from-beginning", "-f", `%o\n`); got != "0\n1\n2\n" {
		t.Errorf("offsets after the failed runs: %q, want the 3 from before", got)
	}
	failing(t, runIn(t, dir, strings.Repeat("x", maxRecord+1), "produce", "t", "-file", "-"), 1, "the largest record")
}

// TestProducePartitionPastTopic: -p N past the topic's partitions fails
// before standard input is read, as a wrong topic does, rather than once
// the first record has been typed.
func TestProducePartitionPastTopic(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	typing, w, err := os.Pipe() // a terminal where nothing was typed yet
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	failing(t, runFrom(t, dir, typing, "produce", "t", "-p", "2"), 1, "topic t has 2 partitions (0 to 1), not 2")
}

// TestProduceKeylessRunsSpread: keyless records of many short produce runs,
// as a shell loop makes, land in several partitions, as kcat's and Kafka's
// console producer's do, not all in partition 0. Each run picks where its
// spread starts at random: 16 runs over 4 partitions all land in one with
// a chance of 4^-15.
func TestProduceKeylessRunsSpread(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "4")
	for range 16 {
		must(t, dir, "event\n", "produce", "t")
	}
	used := map[int]bool{}
	for _, r := range consumeJSON(t, dir, "t", "-from-beginning") {
		used[r.Partition] = true
	}
	if len(used) < 2 {
		t.Errorf("16 runs of one keyless record each went to partitions %v", used)
	}
}

// TestNullKeysAndValues: produce -Z sends an empty value, or an empty key
// before -K's SEP, as none (null), and consume -Z prints none as NULL,
// as kcat's -Z does both; without -Z an empty key or value stays empty,
// and none prints as nothing. %K and %S tell them apart (-1 for none).
func TestNullKeysAndValues(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "k:\n:v\n\nplain\n", "produce", "t", "-K", ":", "-Z")
	must(t, dir, "k:\n:\n", "produce", "t", "-K", ":")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, dir, "", "produce", "t", "-file", empty, "-k", "f", "-Z")
	must(t, dir, "", "produce", "t", "-file", empty, "-k", "g")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", `%K %S %k|%s\n`, "-Z"}, "1 -1 k|NULL\n-1 1 NULL|v\n-1 -1 NULL|NULL\n-1 5 NULL|plain\n1 0 k|\n0 0 |\n1 -1 f|NULL\n1 0 g|\n"},
		{[]string{"-f", `%K %S %k|%s\n`}, "1 -1 k|\n-1 1 |v\n-1 -1 |\n-1 5 |plain\n1 0 k|\n0 0 |\n1 -1 f|\n1 0 g|\n"},
		{[]string{"-K", "=", "-Z"}, "k=NULL\nNULL=v\nNULL=NULL\nNULL=plain\nk=\n=\nf=NULL\ng=\n"},
		{[]string{"-Z", "-n", "2"}, "NULL\nv\n"},
	} {
		if got := must(t, dir, "", append([]string{"consume", "t", "-from-beginning"}, tc.args...)...); got != tc.want {
			t.Errorf("%q:\n%s", tc.args, cmp.Diff(tc.want, got))
		}
	}
	// In JSON, none is null, with -Z or without, as kcat's -J has it.
	for _, args := range [][]string{{"-J"}, {"-J", "-Z"}} {
		got := must(t, dir, "", append([]string{"consume", "t", "-from-beginning", "-n", "2"}, args...)...)
		if !strings.Contains(got, `"key":"k","payload":null}`) || !strings.Contains(got, `"key":null,"payload":"v"}`) {
			t.Errorf("%q: %s", args, got)
		}
	}
}

// TestProduceCount: -n COUNT (kcat's -c) sends the first COUNT records,
// of lines or files, and returns without waiting for more input: from a
// pipe its writer keeps open, as at a terminal, it returns once COUNT
// lines have come.
func TestProduceCount(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	files := t.TempDir()
	for _, name := range []string{"f1", "f2"} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "2"}, "a\nb\n"},
		{[]string{"-c", "1"}, "a\n"},
		{[]string{"-count=3", "-q"}, "a\nb\nc\n"},
		{[]string{"-n", "0"}, ""},
		{[]string{"-n", "9"}, "a\nb\nc\n"},
		{[]string{"-n", "1", "-file", filepath.Join(files, "f1"), "-file", filepath.Join(files, "f2")}, "f1\n"},
	} {
		must(t, dir, "", "topics", "delete", "t")
		must(t, dir, "", "topics", "create", "t")
		if r := runIn(t, dir, "a\nb\nc\n", append([]string{"produce", "t"}, tc.args...)...); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
		if got := must(t, dir, "", "consume", "t", "-from-beginning"); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}

	typing, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("x\ny\n")); err != nil {
		t.Fatal(err)
	}
	if r := runFrom(t, dir, typing, "produce", "t", "-n", "2"); r.code != 0 {
		t.Fatalf("-n 2 from an open pipe: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := must(t, dir, "", "consume", "t", "-o", "-2"); got != "x\ny\n" {
		t.Errorf("-n 2 from an open pipe: %q", got)
	}
	failing(t, runIn(t, dir, "", "produce", "t", "-n", "-1"), 2, "-n -1: want a count, 0 or more")
}

// TestProduceLinesFromFiles: -l FILE (kcat's -l) reads records from FILE
// as from standard input, which it leaves unread: split at -D, keys at -K,
// -Z and -n as for standard input; repeatable, one file after the other,
// "-" for standard input. A file that is missing or a directory fails
// before anything is sent.
func TestProduceLinesFromFiles(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	files := t.TempDir()
	one, two := filepath.Join(files, "one"), filepath.Join(files, "two")
	os.WriteFile(one, []byte("k1:a,k2:,b"), 0o644)
	os.WriteFile(two, []byte("k3:c,"), 0o644)
	must(t, dir, "not read\n", "produce", "t", "-l", one, "-lines", two, "-K", ":", "-D", ",", "-Z")
	if got, want := must(t, dir, "", "consume", "t", "-from-beginning", "-f", `%k=%s\n`, "-Z"), "k1=a\nk2=NULL\nNULL=b\nk3=c\n"; got != want {
		t.Errorf("-l one -l two:\n%s", cmp.Diff(want, got))
	}
	must(t, dir, "from\nstdin\n", "produce", "t", "-l", "-", "-l", two, "-n", "2")
	if got := must(t, dir, "", "consume", "t", "-o", "-2"); got != "from\nstdin\n" {
		t.Errorf("-l - -n 2: %q", got)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-l", filepath.Join(files, "missing")}, 1, "no such file"},
		{[]string{"-l", files}, 1, "is a directory"},
		{[]string{"-l", one, "-file", two}, 2, "give FILE or -file (each file one record) or -l FILE (records from the file), not both"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"produce", "t", "-l", two}, tc.args...)...), tc.code, tc.want)
	}
	if got := must(t, dir, "", "consume", "t", "-f", `%o\n`, "-o", "6", "-p", "0"); got != "" {
		t.Errorf("the failed runs sent %q", got)
	}
}

// TestProduceKeyAndKeySep: -k KEY with -K SEP gives KEY to the records
// without SEP, and to those whose key -Z makes none, as kcat's -k with
// -K does; it was a usage mistake.
func TestProduceKeyAndKeySep(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "a:1\nno sep\n:2\n", "produce", "t", "-K", ":", "-k", "dflt")
	must(t, dir, "b:3\nno sep\n:4\n", "produce", "t", "-K", ":", "-k", "dflt", "-Z")
	if got, want := must(t, dir, "", "consume", "t", "-from-beginning", "-f", `%K %k=%s\n`), "1 a=1\n4 dflt=no sep\n0 =2\n1 b=3\n4 dflt=no sep\n4 dflt=4\n"; got != want {
		t.Errorf("-k with -K:\n%s", cmp.Diff(want, got))
	}
}

// TestProduceFileArguments: FILE arguments after the topic are sent as
// -file sends its files, each whole as one record, as kcat -P sends its
// file arguments (after any -file ones); the shell completes them as
// files. They were a usage mistake ("unexpected argument").
func TestProduceFileArguments(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	files := t.TempDir()
	one, two, three := filepath.Join(files, "one"), filepath.Join(files, "two"), filepath.Join(files, "three")
	os.WriteFile(one, []byte("first\nfile"), 0o644)
	os.WriteFile(two, []byte("second"), 0o644)
	os.WriteFile(three, []byte("third"), 0o644)
	must(t, dir, "", "produce", "t", one, two, "-k", "key")
	must(t, dir, "from stdin\n", "produce", "t", "-file", three, "-", "-n", "5")
	if got, want := must(t, dir, "", "consume", "t", "-from-beginning", "-f", `%k|%s;`), "key|first\nfile;key|second;|third;|from stdin\n;"; got != want {
		t.Errorf("file arguments: %q, want %q", got, want)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{one, filepath.Join(files, "missing")}, 1, "no such file"},
		{[]string{one, "-K", ":"}, 2, "send each file whole"},
		{[]string{one, "-l", two}, 2, "not both"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"produce", "t"}, tc.args...)...), tc.code, tc.want)
	}
	if got := must(t, dir, "", "consume", "t", "-o", "4", "-f", `%s;`); got != "" {
		t.Errorf("the failed runs sent %q", got)
	}
	// The shell completes the topic, then files (directive 0, cobra's
	// default), where consume, which takes no more, completes nothing (4).
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"produce", "t", ""}, ":0\n"},
		{[]string{"produce", "t", one, ""}, ":0\n"},
		{[]string{"consume", "t", ""}, ":4\n"},
	} {
		if got := must(t, dir, "", append([]string{"__completeNoDesc"}, tc.words...)...); !strings.HasSuffix(got, tc.want) {
			t.Errorf("completing %q: %q, want it to end %q", tc.words, got, tc.want)
		}
	}
}

// TestProduceLongDelimiterLargestRecord: a record as large as any runnel
// takes, ended by a -D delimiter longer than a byte, is read: the
// scanner had room for the record and one byte of the delimiter, and
// said the record was longer than the largest.
func TestProduceLongDelimiterLargestRecord(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	const delim = "--end-of-record--"
	value := strings.Repeat("x", maxRecord-12) // with its encoding, runnel's largest
	must(t, dir, value+delim+"next"+delim, "produce", "t", "-D", delim)
	got := consumeJSON(t, dir, "t", "-from-beginning")
	if len(got) != 2 || got[0].Value != value || got[1].Value != "next" {
		t.Errorf("%d records, want the large one and \"next\"", len(got))
	}
}
