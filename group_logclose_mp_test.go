package runnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// A process that closes its Log but not its group Consumer (a worker
// loop that returned on an error, its deferred Log.Close run, the process
// going on) must not keep the group's partitions: no call of that
// consumer can read or commit them any more.

func init() {
	childMains["logcloser"] = logCloserMain
}

// logCloserMain joins group "workers" on topic "jobs" of $RUNNEL_LC_DIR,
// polls it on a goroutine, says "joined" once it owns a partition, closes
// the Log (not the consumer) at a line on stdin and says "log closed" once
// Poll returned ErrClosed, and at the end of stdin closes the consumer and
// says "consumer closed".
func logCloserMain() int {
	fail := func(err error) int { return mpFail("logcloser", err) }
	l, err := Open(os.Getenv("RUNNEL_LC_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return fail(err)
	}
	c, err := l.Consumer("jobs", &ConsumerOptions{Group: "workers", MemberName: "logcloser"})
	if err != nil {
		return fail(err)
	}
	polled := make(chan error, 1)
	go func() { // the worker's loop, until Poll fails
		for {
			if _, err := c.Poll(context.Background()); err != nil {
				polled <- err
				return
			}
		}
	}()
	for len(c.Partitions()) == 0 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("joined")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fail(err)
	}
	if err := l.Close(); err != nil {
		return fail(err)
	}
	// Close may land while Poll opens a segment, which wraps ErrClosed
	// ("open segment: runnel: closed"); errors.Is is the contract.
	if err := <-polled; !errors.Is(err, ErrClosed) {
		return fail(fmt.Errorf("Poll after the Log closed: %v, want ErrClosed", err))
	}
	fmt.Println("log closed")
	io.Copy(io.Discard, in)
	if err := c.Close(); err != nil {
		return fail(err)
	}
	fmt.Println("consumer closed")
	return 0
}

func TestLogCloseLeavesGroup(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 4
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	child := mpChild("logcloser", "RUNNEL_LC_DIR="+dir)
	in, out := startPiped(t, child)
	lines := mpLines(out)
	t.Cleanup(func() {
		in.Close()
		child.Process.Kill()
		child.Wait()
	})
	if got := mpExpectLine(t, lines, patience); got != "joined" {
		t.Fatalf("child: %q", got)
	}
	m := startMember(t, l, "jobs", "workers", "survivor", nil)
	waitFor(t, patience, "the partitions shared", func() bool { return len(m.owned()) == nparts/2 })

	fmt.Fprintln(in)
	if got := mpExpectLine(t, lines, patience); got != "log closed" {
		t.Fatalf("child: %q", got)
	}
	// The child lives on: its Log's Close alone must hand its partitions
	// over. (Before, they stayed its consumer's until the process ended.)
	waitFor(t, 30*time.Second, "the survivor to own every partition", func() bool { return len(m.owned()) == nparts })
	info, err := l.DescribeGroup("workers")
	if err != nil {
		t.Fatal(err)
	}
	if members := info.Topics[0].Members; len(members) != 1 || members[0].Name != "survivor" {
		t.Errorf("members after the child's Log closed: %+v, want the survivor alone", members)
	}

	in.Close()
	if got := mpExpectLine(t, lines, patience); got != "consumer closed" {
		t.Fatalf("child: %q", got)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
