package kafka

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kafka clients in other languages (testdata/clients), run as child
// processes against the server. A machine without one skips its tests,
// unless RUNNEL_REQUIRE_CLIENTS is set (CI sets it, after installing them):
// then a missing client fails them.

// requireClient skips (or, under RUNNEL_REQUIRE_CLIENTS, fails) a test
// whose client is missing: why says what is missing and install how to
// get it.
func requireClient(t *testing.T, why, install string) {
	t.Helper()
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s, and RUNNEL_REQUIRE_CLIENTS is set (install: %s)", why, install)
	}
	t.Skipf("%s (install: %s); set RUNNEL_REQUIRE_CLIENTS to make this a failure", why, install)
}

// langClient is a client's compat script with the interpreter that runs
// it, the compression codecs it produces with, and whether its
// delete-group step resets the group's offsets to the earliest first.
type langClient struct {
	name   string
	argv   []string
	codecs []string
	resets bool
}

// kafkaJS is KafkaJS on Node.js, from testdata/clients/kafkajs/node_modules
// (npm install there).
func kafkaJS(t *testing.T) langClient {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "clients", "kafkajs"))
	if err != nil {
		t.Fatal(err)
	}
	install := "npm install --no-package-lock in " + dir
	node, err := exec.LookPath("node")
	if err != nil {
		requireClient(t, "node not found", "Debian's nodejs, then "+install)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		requireClient(t, "kafkajs not installed", install)
	}
	return langClient{name: "kafkajs", argv: []string{node, filepath.Join(dir, "compat.js")}, codecs: []string{"none", "gzip"}, resets: true}
}

// kafkaPython is kafka-python with every codec it has, on the first
// Python that imports them all (python).
func kafkaPython(t *testing.T) langClient {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "clients", "kafkapython", "compat.py"))
	if err != nil {
		t.Fatal(err)
	}
	py := python("import kafka, snappy, lz4.frame, zstandard")
	if py == "" {
		requireClient(t, "no python3 with kafka-python and its codecs",
			"Debian's python3-kafka python3-snappy python3-lz4 python3-zstandard")
	}
	return langClient{name: "kafka-python", argv: []string{py, script}, codecs: []string{"none", "gzip", "snappy", "lz4", "zstd"}}
}

// python is the first Python that runs imports: $RUNNEL_PYTHON, Debian's
// python3, then python3 on PATH; "" if none does.
func python(imports string) string {
	candidates := []string{os.Getenv("RUNNEL_PYTHON"), "/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if py != "" && exec.Command(py, "-c", imports).Run() == nil {
			return py
		}
	}
	return ""
}

// clientEvent is one line a compat script prints.
type clientEvent struct {
	Event      string      `json:"event"`
	Name       string      `json:"name"`
	Value      *string     `json:"value"` // base64 for records; nil is null
	Codec      string      `json:"codec"`
	Partition  int         `json:"partition"`
	Offset     int64       `json:"offset"`
	Error      int         `json:"error"`
	Key        *string     `json:"key"`
	Headers    [][]*string `json:"headers"`
	Timestamp  int64       `json:"timestamp"`
	Names      []string    `json:"names"`
	State      string      `json:"state"`
	Members    int         `json:"members"`
	Partitions []int       `json:"partitions"`
}

// clientProc is a running compat script.
type clientProc struct {
	t      *testing.T
	lc     langClient
	step   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	exited chan struct{}
	err    error // of the process, once exited is closed

	mu     sync.Mutex
	events []clientEvent
}

// start runs step of the client's script with env added to the test's
// environment. The process is killed, if still running, when the test
// ends.
func (lc langClient) start(t *testing.T, step string, env map[string]string) *clientProc {
	t.Helper()
	cmd := exec.Command(lc.argv[0], append(lc.argv[1:], step)...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cp := &clientProc{t: t, lc: lc, step: step, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &cp.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if cp.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev clientEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = clientEvent{Event: "unparsed", Name: sc.Text()}
			}
			cp.mu.Lock()
			cp.events = append(cp.events, ev)
			cp.mu.Unlock()
		}
		cp.err = cmd.Wait()
		close(cp.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-cp.exited
	})
	return cp
}

// run runs step to its end and returns what it printed.
func (lc langClient) run(t *testing.T, step string, env map[string]string) []clientEvent {
	t.Helper()
	cp := lc.start(t, step, env)
	cp.stdin.Close()
	return cp.wait()
}

// wait waits (within a generous bound) for the process to exit, fails the
// test unless it exited well and said "done", and returns its events.
func (cp *clientProc) wait() []clientEvent {
	cp.t.Helper()
	select {
	case <-cp.exited:
	case <-time.After(2 * time.Minute):
		cp.cmd.Process.Kill()
		<-cp.exited
		cp.t.Fatalf("%s %s did not finish in 2 minutes\n%s", cp.lc.name, cp.step, cp.transcript())
	}
	evs := cp.seen()
	if cp.err != nil || len(evs) == 0 || evs[len(evs)-1].Event != "done" {
		cp.t.Fatalf("%s %s: %v\n%s", cp.lc.name, cp.step, cp.err, cp.transcript())
	}
	return evs
}

func (cp *clientProc) seen() []clientEvent {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.events)
}

// last returns the latest event of a kind, if any.
func (cp *clientProc) last(kind string) (clientEvent, bool) {
	evs := cp.seen()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Event == kind {
			return evs[i], true
		}
	}
	return clientEvent{}, false
}

// transcript is what the process printed, for failure messages.
func (cp *clientProc) transcript() string {
	var b strings.Builder
	for _, ev := range cp.seen() {
		j, _ := json.Marshal(ev)
		fmt.Fprintf(&b, "stdout: %s\n", j)
	}
	fmt.Fprintf(&b, "stderr:\n%s", cp.stderr.String())
	return b.String()
}

// ofKind picks the events of one kind.
func ofKind(evs []clientEvent, kind string) []clientEvent {
	var out []clientEvent
	for _, ev := range evs {
		if ev.Event == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitForClient is waitFor, with the clients' transcripts in the failure.
func waitForClient(t *testing.T, what string, cond func() bool, procs ...*clientProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, cp := range procs {
				fmt.Fprintf(&b, "--- %s %s\n%s\n", cp.lc.name, cp.step, cp.transcript())
			}
			t.Fatalf("timed out waiting for %s\n%s", what, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
