package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// Every measured cell runs in a child process (this binary re-executed
// with -child): its peak RSS is its own, the heap of one system does not
// slow the next, and the multi-process workloads need processes anyway.
// The parent passes a task as JSON in an environment variable; the child
// prints "READY <info>" when it needs a go-ahead (then reads one line from
// stdin), and ends with "RESULT <json>".

const taskEnv = "RUNNEL_BENCH_TASK"

type task struct {
	Role    string  `json:"role"`
	System  string  `json:"system"`
	Cfg     config  `json:"cfg"`
	Warmup  float64 `json:"warmup"`  // seconds
	Seconds float64 `json:"seconds"` // timed seconds
	Records int64   `json:"records"` // load / latency: how many
	Rate    float64 `json:"rate"`    // latency: records per second
	Writer0 int     `json:"writer0"` // first writer id (multi-process)
	Async   bool    `json:"async"`   // append through asyncStore where there is one
	Profile string  `json:"profile"` // write a CPU profile of the timed phase here
	Counts  []int64 `json:"counts"`  // verify: acknowledged appends per writer id
}

type result struct {
	Records   int64   `json:"records"` // in the timed phase
	Seconds   float64 `json:"seconds"`
	Counts    []int64 `json:"counts,omitempty"` // every acknowledged append, per writer
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
	P999      float64 `json:"p999"`
	HasLat    bool    `json:"has_lat"`
	RSS       int64   `json:"rss"`
	DiskBytes int64   `json:"disk_bytes"`
	Info      string  `json:"info,omitempty"`
	CPU       int64   `json:"cpu_ns"`        // every process of the cell, timed phase
	ServerCPU int64   `json:"server_cpu_ns"` // of that, a server process's
}

// childTimeout bounds any one child; a stuck system fails its cell.
const childTimeout = 5 * time.Minute

type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr strings.Builder
	timer  *time.Timer
}

func spawn(t task) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	name, args := pinnedCommand(t.Role, exe, "-child")
	p := &proc{cmd: exec.Command(name, args...)}
	p.cmd.Env = append(os.Environ(), taskEnv+"="+string(js))
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(nil, 1<<20)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.timer = time.AfterFunc(childTimeout, func() { p.cmd.Process.Kill() })
	return p, nil
}

// line reads the child's next protocol line with the given prefix (the
// first word), and returns the rest.
func (p *proc) line(prefix string) (string, error) {
	for p.out.Scan() {
		if p.out.Text() == prefix {
			return "", nil
		}
		if rest, ok := strings.CutPrefix(p.out.Text(), prefix+" "); ok {
			return rest, nil
		}
	}
	err := p.cmd.Wait()
	return "", fmt.Errorf("child exited before %s (%v): %s", prefix, err, lastLines(p.stderr.String(), 8))
}

func (p *proc) ready() (string, error) { return p.line("READY") }

func (p *proc) tell(msg string) error {
	_, err := io.WriteString(p.stdin, msg+"\n")
	return err
}

// finish reads the child's result and waits for it to exit.
func (p *proc) finish() (result, error) {
	defer p.timer.Stop()
	var r result
	js, err := p.line("RESULT")
	if err != nil {
		return r, err
	}
	p.stdin.Close()
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		return r, err
	}
	if err := p.cmd.Wait(); err != nil {
		return r, fmt.Errorf("child: %v: %s", err, lastLines(p.stderr.String(), 8))
	}
	return r, nil
}

func (p *proc) kill() {
	p.timer.Stop()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func runChild(t task) (result, error) {
	p, err := spawn(t)
	if err != nil {
		return result{}, err
	}
	return p.finish()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// childMain runs the task in the environment and reports on stdout.
func childMain() error {
	var t task
	if err := json.Unmarshal([]byte(os.Getenv(taskEnv)), &t); err != nil {
		return fmt.Errorf("bad task: %w", err)
	}
	sys, err := findSystem(t.System)
	if err != nil {
		return err
	}
	roles := map[string]func(*system, task) (result, error){
		"append":   childAppend,
		"verify":   childVerify,
		"load":     childLoad,
		"read":     childRead,
		"create":   childCreate,
		"mp-write": childAppend,
		"lat-host": childLatencyHost,
		"lat-read": childLatencyRead,
		"serve":    childServe,
	}
	run, ok := roles[t.Role]
	if !ok {
		return fmt.Errorf("unknown role %q", t.Role)
	}
	r, err := run(sys, t)
	if err != nil {
		return err
	}
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", js)
	return nil
}

var stdin = bufio.NewScanner(os.Stdin)

// handshake announces readiness with info and waits for the parent's line.
func handshake(info string) error {
	fmt.Printf("READY %s\n", info)
	return waitParent()
}

// waitParent waits for the parent's next line on stdin.
func waitParent() error {
	if !stdin.Scan() {
		return errors.New("parent closed stdin before its go-ahead")
	}
	return nil
}

// startProfile starts a CPU profile of the timed phase if the task asks
// for one, of this process and of st's helper process if it has one (in
// a file named like the task's, ending in -server.pprof), and returns its
// stop function.
func startProfile(t task, st any) func() {
	if t.Profile == "" {
		return func() {}
	}
	stopHelper := func() {}
	if h, ok := st.(helperProc); ok {
		stopHelper = h.HelperProfile(strings.TrimSuffix(t.Profile, ".pprof") + "-server.pprof")
	}
	stop := profileTo(t.Profile)
	return func() { stop(); stopHelper() }
}

// profileTo starts a CPU profile of this process into path and returns
// its stop function; a profile that cannot start is reported, not fatal.
func profileTo(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// peakRSS is this process's peak resident set so far, in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
