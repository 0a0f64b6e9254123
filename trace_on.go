//go:build runneltrace

package runnel

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/runnel-log/runnel/internal/tracefmt"
	"golang.org/x/sys/unix"
)

// Trace points, in a build with -tags runneltrace only (trace_off.go has
// the default build's, which compile to nothing): each tracePoint records
// a CLOCK_MONOTONIC reading and its step into a buffer of the process,
// allocated once, and every Log's Close writes the buffer out to
// $RUNNEL_TRACE_DIR/trace.<pid> (internal/tracefmt describes the file;
// go run ./internal/tracesteps reads a directory of them). With
// RUNNEL_TRACE_DIR unset, the points record nothing. docs/PERFORMANCE.md
// has the traces this reproduces.

// traces is the process's trace buffer, nil when not tracing. (A
// pointer to swap: the tracing build's test traces into a directory of
// its own.)
var traces atomic.Pointer[traceBuffer]

func init() {
	traces.Store(newTraceBuffer(os.Getenv(tracefmt.DirEnv), os.Getenv(tracefmt.EventsEnv)))
}

// traceBuffer is a bounded buffer of events that goroutines fill
// concurrently: each takes the next slot with an atomic add, so a slot
// is written by one goroutine only; once the slots are taken, events are
// counted as dropped, never kept by growing the buffer.
type traceBuffer struct {
	dir     string
	pid     int
	slots   []traceSlot
	next    atomic.Int64 // the next slot to take; past len(slots), drops
	writeMu sync.Mutex   // one write of the file at a time
}

// traceSlot is one event. Its step is stored last, so a slot whose step
// is still zero is being written and is left out of the file.
type traceSlot struct {
	ns   atomic.Int64
	step atomic.Uint32
}

func newTraceBuffer(dir, events string) *traceBuffer {
	if dir == "" {
		return nil
	}
	n, err := strconv.Atoi(events)
	if err != nil || n <= 0 {
		n = tracefmt.DefaultEvents
	}
	return &traceBuffer{dir: dir, pid: os.Getpid(), slots: make([]traceSlot, n)}
}

// tracePoint records that this process passed step s now.
func tracePoint(s tracefmt.Step) {
	t := traces.Load()
	if t == nil {
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	i := t.next.Add(1) - 1
	if i >= int64(len(t.slots)) {
		return // dropped: counted by next's excess
	}
	t.slots[i].ns.Store(ts.Nano())
	t.slots[i].step.Store(uint32(s))
}

// traceWrite writes every event recorded so far to the process's trace
// file, replacing what an earlier Close of a Log wrote there. A failure
// is not the Close's: the trace is for the developer, who finds the file
// missing.
func traceWrite() {
	t := traces.Load()
	if t == nil {
		return
	}
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	taken := t.next.Load()
	tr := tracefmt.Trace{PID: t.pid, Dropped: max(taken-int64(len(t.slots)), 0)}
	for i := range min(taken, int64(len(t.slots))) {
		if s := tracefmt.Step(t.slots[i].step.Load()); s != 0 {
			tr.Events = append(tr.Events, tracefmt.Event{Time: t.slots[i].ns.Load(), PID: t.pid, Step: s})
		}
	}
	os.MkdirAll(t.dir, 0o755)
	f, err := os.Create(filepath.Join(t.dir, tracefmt.FileName(t.pid)))
	if err != nil {
		return
	}
	tracefmt.Write(f, tr)
	f.Close()
}
