package kafka

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
)

// The test binary is also the child process of tests that need a second
// server in a process of its own: childEnv names the role, and TestMain
// runs it instead of the tests.
const (
	childEnv      = "RUNNEL_KAFKA_TEST_CHILD"
	childDirEnv   = "RUNNEL_KAFKA_TEST_DIR"
	childGroupEnv = "RUNNEL_KAFKA_TEST_GROUP" // and topic, for a native member
	// With childMemberEnv set, a native member prints "member" as soon
	// as it joined, before it owns anything.
	childMemberEnv = "RUNNEL_KAFKA_TEST_MEMBER"
	// With childReportEnv set, a native member prints "assigned <ps>"
	// and "revoked <ps>" from its OnAssigned and OnRevoked, and "read
	// <value>" for each record it polls (nativeReport reads them).
	childReportEnv = "RUNNEL_KAFKA_TEST_REPORT"
	// A server child listens on childListenEnv's address (default: any
	// loopback port) and, with childHoldEnv set, never answers a Produce:
	// it creates the file childHoldEnv names once one's batches are
	// acknowledged, and holds the answer until it is killed.
	childListenEnv = "RUNNEL_KAFKA_TEST_LISTEN"
	childHoldEnv   = "RUNNEL_KAFKA_TEST_HOLD"
	// With childStallEnv set to "<point>:<file>", a server child stops
	// its first idempotent batch at that point of its store (a test
	// hook: "noted", "committed"), creates the file, and stays there
	// until it is killed.
	childStallEnv = "RUNNEL_KAFKA_TEST_STALL"
)

func TestMain(m *testing.M) {
	switch role := os.Getenv(childEnv); role {
	case "":
		os.Exit(m.Run())
	case "server":
		os.Exit(serverChildMain())
	case "native-member":
		os.Exit(nativeMemberChildMain())
	case "pid-reserver":
		os.Exit(pidReserverChildMain())
	default:
		fmt.Fprintf(os.Stderr, "unknown test child %q\n", role)
		os.Exit(2)
	}
}

// serverChildMain serves the directory childDirEnv names on a loopback
// port, prints the address, and serves until its standard input closes
// (or it is killed).
func serverChildMain() int {
	l, err := runnel.Open(os.Getenv(childDirEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := NewServer(l, &Options{MinSessionTimeout: fastGroups.MinSessionTimeout, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := os.Getenv(childListenEnv)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if hold := os.Getenv(childHoldEnv); hold != "" {
		testHookProduced = func() {
			os.WriteFile(hold, nil, 0o644)
			select {}
		}
	}
	if at, file, ok := strings.Cut(os.Getenv(childStallEnv), ":"); ok {
		stall := func() {
			os.WriteFile(file, nil, 0o644)
			select {}
		}
		switch at {
		case "noted":
			testHookNoted = stall
		case "committed":
			testHookCommitted = stall
		default:
			fmt.Fprintf(os.Stderr, "unknown stall point %q\n", at)
			return 2
		}
	}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes it
	srv.Shutdown(context.Background())
	l.Close()
	return 0
}

// nativeMemberChildMain is a native member of group childGroupEnv on the
// topic of the same name in directory childDirEnv: it prints "joined" once
// it owns a partition (first "member", with childMemberEnv) and polls
// until it is killed.
func nativeMemberChildMain() int {
	l, err := runnel.Open(os.Getenv(childDirEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	name := os.Getenv(childGroupEnv)
	opts := &runnel.ConsumerOptions{Group: name, MemberName: "native-child", Start: runnel.Earliest}
	report := os.Getenv(childReportEnv) != ""
	if report {
		// Printed inside Poll, while the member owns ps (OnRevoked) or
		// right after it took them (OnAssigned).
		opts.OnAssigned = func(_ *runnel.Consumer, ps []int) { fmt.Println("assigned", strings.Trim(fmt.Sprint(ps), "[]")) }
		opts.OnRevoked = func(_ *runnel.Consumer, ps []int) { fmt.Println("revoked", strings.Trim(fmt.Sprint(ps), "[]")) }
	}
	c, err := l.Consumer(name, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv(childMemberEnv) != "" {
		fmt.Println("member")
	}
	joined := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if report {
			for _, r := range recs {
				fmt.Println("read", string(r.Value))
			}
		}
		if !joined && len(c.Partitions()) > 0 {
			joined = true
			fmt.Println("joined")
		}
	}
}

// testChild is a child process: a server, whose address is addr, or
// a native member (addr is what it printed first).
type testChild struct {
	addr   string
	cmd    *exec.Cmd
	stdin  io.Closer     // closing it shuts a server child down
	stderr *syncBuffer   // a server child's log
	stdout *bufio.Reader // what it printed after addr, for a child that goes on printing
}

// startServerChild starts a server process on dir; the test's end stops it.
func startServerChild(t *testing.T, dir string) *testChild {
	t.Helper()
	return startChild(t, "server", dir)
}

// startChild starts the test binary as a child in role on dir, with env
// added, and returns once it printed its first line (a server's address).
// The test's end closes its standard input and waits for it.
func startChild(t *testing.T, role, dir string, env ...string) *testChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role, childDirEnv+"="+dir), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		if t.Failed() {
			t.Logf("child %s's log:\n%s", role, stderr.String())
		}
	})
	out := bufio.NewReader(stdout)
	line := make(chan string, 1)
	go func() {
		s, _ := out.ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatalf("the child %s printed nothing:\n%s", role, stderr.String())
		}
		return &testChild{addr: addr, cmd: cmd, stdin: stdin, stderr: &stderr, stdout: out}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the child %s did not start:\n%s", role, stderr.String())
	}
	return nil
}

// kill ends the child with SIGKILL: no connection is closed cleanly, no
// group left; the kernel drops its locks.
func (sc *testChild) kill() { sc.cmd.Process.Kill() }
