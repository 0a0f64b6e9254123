//go:build runneltrace

package runnel

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
	clock   monoClock
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
	n, err := tracefmt.BufferEvents(events)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runnel: %v\n", err)
	}
	return &traceBuffer{dir: dir, pid: os.Getpid(), clock: newMonoClock(), slots: make([]traceSlot, n)}
}

// monoClock reads CLOCK_MONOTONIC, in ns, at the cost of time.Now rather
// than of unix.ClockGettime: that is a system call, about 300 ns here
// against 50 for time.Now, whose vDSO reading a Send's dozen points
// would pay each. Go's monotonic clock is CLOCK_MONOTONIC on Linux, so a
// reading is a base, read once with the system call, plus the time
// since, as Go measures it. The base is off by at most half the
// narrowest of a few brackets of the system call (a few hundred ns), the
// same for every reading of the process.
type monoClock struct {
	at   time.Time // with its monotonic reading
	base int64     // CLOCK_MONOTONIC at at
}

func newMonoClock() monoClock {
	var best monoClock
	narrowest := time.Duration(1 << 62)
	for range 16 {
		before := time.Now()
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		if d := time.Since(before); d < narrowest {
			narrowest = d
			best = monoClock{at: before, base: ts.Nano() - int64(d/2)}
		}
	}
	return best
}

func (c *monoClock) now() int64 { return c.base + int64(time.Since(c.at)) }

// tracePoint records that this process passed step s now.
func tracePoint(s tracefmt.Step) {
	t := traces.Load()
	if t == nil {
		return
	}
	ns := t.clock.now()
	i := t.next.Add(1) - 1
	if i >= int64(len(t.slots)) {
		return // dropped: counted by next's excess
	}
	t.slots[i].ns.Store(ns)
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
