package kafka

import (
	"bufio"
	"context"
	"fmt"
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
	childEnv    = "RUNNEL_KAFKA_TEST_CHILD"
	childDirEnv = "RUNNEL_KAFKA_TEST_DIR"
)

func TestMain(m *testing.M) {
	switch role := os.Getenv(childEnv); role {
	case "":
		os.Exit(m.Run())
	case "server":
		os.Exit(serverChildMain())
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes it
	srv.Shutdown(context.Background())
	l.Close()
	return 0
}

// serverChild is a server in a child process.
type serverChild struct {
	addr string
	cmd  *exec.Cmd
}

// startServerChild starts a server process on dir; the test's end stops it.
func startServerChild(t *testing.T, dir string) *serverChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=server", childDirEnv+"="+dir)
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
			t.Logf("child server's log:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatalf("the child server printed no address:\n%s", stderr.String())
		}
		return &serverChild{addr: addr, cmd: cmd}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the child server did not start:\n%s", stderr.String())
	}
	return nil
}

// kill ends the child with SIGKILL: no connection is closed cleanly, no
// group left; the kernel drops its locks.
func (sc *serverChild) kill() { sc.cmd.Process.Kill() }
