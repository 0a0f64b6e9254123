//go:build runneltrace

package runnel

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel/internal/tracefmt"
)

// The steps one Send passes, alone in its Log (nobody else holds the
// writer or the sync lock): buffered, and durable, where it runs the
// partition's sync itself.
var (
	bufferedSendSteps = []tracefmt.Step{tracefmt.SendBegin, tracefmt.WriterLocked, tracefmt.TailFound,
		tracefmt.FrameCommitted, tracefmt.Published, tracefmt.AppendDone, tracefmt.SendReturn}
	durableSendSteps = []tracefmt.Step{tracefmt.SendBegin, tracefmt.WriterLocked, tracefmt.TailFound,
		tracefmt.FrameCommitted, tracefmt.Published, tracefmt.AppendDone,
		tracefmt.LocalRegroupBegin, tracefmt.LocalRegroupEnd, tracefmt.SyncLockTried, tracefmt.RegroupBegin, tracefmt.RegroupEnd,
		tracefmt.FdatasyncBegin, tracefmt.FdatasyncEnd, tracefmt.SyncWake, tracefmt.SyncWaitEnd,
		tracefmt.SendReturn}
)

// TestTracePointsInOrder: the tracing build writes each process's trace
// when its Log closes, with the steps in the order a Send and a Poll pass
// them, at CLOCK_MONOTONIC times: buffered Sends in this process and in a
// child, a Poll asleep until the child's Sends wake it, and durable
// Sends.
func TestTracePointsInOrder(t *testing.T) {
	dir := t.TempDir()
	traceDir := filepath.Join(dir, "traces")
	old := traces.Swap(newTraceBuffer(traceDir, ""))
	defer traces.Store(old)
	start := monoNow()
	ctx := context.Background()
	const sends = 3

	l := openTest(t, filepath.Join(dir, "buffered"), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	send(t, l, sends)
	c, err := l.Consumer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := c.Poll(ctx); err != nil || len(recs) != sends {
		t.Fatalf("Poll: %d records, %v; want %d", len(recs), err, sends)
	}
	// The child sends once this process's Poll is asleep.
	cmd := mpChild("bench-paced", "RUNNEL_BENCH_DIR="+filepath.Join(dir, "buffered"), "RUNNEL_BENCH_TOPIC=t",
		"RUNNEL_BENCH_N=3", "RUNNEL_BENCH_EVERY=1ms", tracefmt.DirEnv+"="+traceDir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // on failure; a finished process ignores it
	lines := mpLines(out)
	if s := mpExpectLine(t, lines, patience); s != "ready" {
		t.Fatalf("child said %q", s)
	}
	polled := make(chan int)
	go func() {
		n := 0
		for n < sends {
			recs, err := c.Poll(ctx)
			if err != nil {
				t.Errorf("Poll: %v", err)
				break
			}
			n += len(recs)
		}
		polled <- n
	}()
	waitFor(t, patience, "Poll to fall asleep", func() bool { return c.metas[0].sleeping.count().Load() > 0 })
	io.WriteString(in, "go\n")
	if n := <-polled; n != sends {
		t.Fatalf("Poll: %d records of the child's %d", n, sends)
	}
	mpExpectLine(t, lines, patience) // its Send times
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	l.Close()

	l = openTest(t, filepath.Join(dir, "durable"), &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	send(t, l, sends)
	l.Close()
	end := monoNow()

	traces, err := tracefmt.ReadDir(traceDir)
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int][]tracefmt.Step{}
	for _, tr := range traces {
		if tr.Dropped != 0 {
			t.Errorf("process %d dropped %d events", tr.PID, tr.Dropped)
		}
		slices.SortStableFunc(tr.Events, func(a, b tracefmt.Event) int { return int(a.Time - b.Time) })
		for _, e := range tr.Events {
			if e.PID != tr.PID {
				t.Errorf("process %d's trace has an event of process %d", tr.PID, e.PID)
			}
			// Times of the one clock every process reads.
			if e.Time < start || e.Time > end {
				t.Errorf("process %d's %v at %d ns, not within the test's %d-%d (CLOCK_MONOTONIC)", tr.PID, e.Step, e.Time, start, end)
			}
			byPID[tr.PID] = append(byPID[tr.PID], e.Step)
		}
	}
	var want [][]tracefmt.Step
	for range sends {
		want = append(want, bufferedSendSteps)
	}
	if diff := cmp.Diff(want, sendRuns(byPID[cmd.Process.Pid])); diff != "" {
		t.Errorf("the child's Sends (-want +got):\n%s", diff)
	}
	for range sends {
		want = append(want, durableSendSteps)
	}
	if diff := cmp.Diff(want, sendRuns(byPID[os.Getpid()])); diff != "" {
		t.Errorf("this process's Sends, buffered then durable (-want +got):\n%s", diff)
	}
	polls := pollRuns(byPID[os.Getpid()])
	if len(polls) < 2 {
		t.Fatalf("%d Polls traced, want 2 or more: %v", len(polls), polls)
	}
	lookReturn := []tracefmt.Step{tracefmt.LookDone, tracefmt.PollReturn}
	if diff := cmp.Diff(lookReturn, polls[0]); diff != "" {
		t.Errorf("a Poll with records there (-want +got):\n%s", diff)
	}
	if woken := slices.Index(polls[1], tracefmt.PollWoken); woken < 0 || !slices.Contains(polls[1][woken:], tracefmt.LookDone) {
		t.Errorf("a Poll asleep until the child sent: %v, want a wake-up, then a look", polls[1])
	}
	for _, p := range polls {
		if !slices.Equal(p[len(p)-2:], lookReturn) {
			t.Errorf("a Poll's steps %v, want them to end with %v", p, lookReturn)
		}
	}
}

// send sends n records to topic t of l, one at a time.
func send(t *testing.T, l *Log, n int) {
	t.Helper()
	p, err := l.Producer("t", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
}

// sendRuns returns the steps of each Send in a trace, from its SendBegin
// to its SendReturn, those of Poll left out. (Steps outside a Send, such
// as a Close's sync, are left out too.)
func sendRuns(steps []tracefmt.Step) [][]tracefmt.Step {
	var runs [][]tracefmt.Step
	in := false
	for _, s := range steps {
		switch {
		case isPollStep(s):
		case s == tracefmt.SendBegin:
			runs, in = append(runs, []tracefmt.Step{s}), true
		case in:
			runs[len(runs)-1] = append(runs[len(runs)-1], s)
			in = s != tracefmt.SendReturn
		}
	}
	return runs
}

// pollRuns splits the Poll steps of a trace into one run per Poll, each
// ending with its PollReturn.
func pollRuns(steps []tracefmt.Step) [][]tracefmt.Step {
	var runs [][]tracefmt.Step
	var run []tracefmt.Step
	for _, s := range steps {
		if !isPollStep(s) {
			continue
		}
		run = append(run, s)
		if s == tracefmt.PollReturn {
			runs, run = append(runs, run), nil
		}
	}
	return runs
}

func isPollStep(s tracefmt.Step) bool {
	return s == tracefmt.PollWoken || s == tracefmt.LookDone || s == tracefmt.PollReturn
}
