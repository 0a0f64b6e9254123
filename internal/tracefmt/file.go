package tracefmt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The trace file of process <pid> is <dir>/trace.<pid>, text: a header
// line, then one line per event in the order they were recorded (not
// always by time: goroutines record concurrently), each
// "<CLOCK_MONOTONIC ns> <pid> <step name>":
//
//	# runnel trace v1 pid=4242 dropped=0
//	8123456789012 4242 send
//	8123456790714 4242 writer-locked
//
// dropped counts the events the process recorded past its buffer's
// capacity, which are not in the file.

// DirEnv names the directory a tracing build writes its trace files to;
// unset, it records nothing.
const DirEnv = "RUNNEL_TRACE_DIR"

// EventsEnv, if set, is how many events a tracing build keeps in memory
// (DefaultEvents if unset, at most MaxEvents); those past it are dropped
// and counted.
const EventsEnv = "RUNNEL_TRACE_EVENTS"

// DefaultEvents is 2^22 events, 64 MiB, enough for a few hundred
// thousand Sends; the memory is touched only as it fills. MaxEvents, 2^26
// events (1 GiB), is the most EventsEnv may ask for: a mistyped size
// would otherwise fail the process's start with an allocation it cannot
// make.
const (
	DefaultEvents = 1 << 22
	MaxEvents     = 1 << 26
)

// BufferEvents is the number of events a tracing build keeps for the
// value s of EventsEnv: DefaultEvents for an empty s, and for a value
// that is not a positive count, with an error; MaxEvents for a count above
// it, with an error. The build prints the error and traces on.
func BufferEvents(s string) (int, error) {
	if s == "" {
		return DefaultEvents, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		err = nil // past int64: as much too many as any count above MaxEvents
	}
	if err != nil || n <= 0 {
		return DefaultEvents, fmt.Errorf("%s=%q is not a count of events from 1 to %d: keeping %d", EventsEnv, s, MaxEvents, DefaultEvents)
	}
	if n > MaxEvents {
		return MaxEvents, fmt.Errorf("%s=%s is more than %d: keeping %d events", EventsEnv, s, MaxEvents, MaxEvents)
	}
	return int(n), nil
}

const header = "# runnel trace v1"

// Event is one trace point passed.
type Event struct {
	Time int64 // CLOCK_MONOTONIC, ns
	PID  int
	Step Step
}

// Trace is one process's trace file.
type Trace struct {
	PID     int
	Dropped int64
	Events  []Event
}

// FileName is the name of process pid's trace file.
func FileName(pid int) string { return "trace." + strconv.Itoa(pid) }

// Write writes t in the trace file format.
func Write(w io.Writer, t Trace) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s pid=%d dropped=%d\n", header, t.PID, t.Dropped)
	var line []byte
	for _, e := range t.Events {
		line = strconv.AppendInt(line[:0], e.Time, 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(e.PID), 10)
		line = append(line, ' ')
		line = append(line, e.Step.String()...)
		line = append(line, '\n')
		bw.Write(line)
	}
	return bw.Flush()
}

// Read reads a trace file; name is for its errors.
func Read(r io.Reader, name string) (Trace, error) {
	var t Trace
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return t, fmt.Errorf("%s line 1: %w", name, err)
		}
		return t, fmt.Errorf("%s: no header: %w", name, io.ErrUnexpectedEOF)
	}
	if err := t.readHeader(sc.Text()); err != nil {
		return t, fmt.Errorf("%s line 1: header %q: %w", name, sc.Text(), err)
	}
	// n is the line being read, so that a read error (a line past the
	// scanner's 64 KiB) names it too.
	n := 2
	for ; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return t, fmt.Errorf("%s line %d: %q is not <ns> <pid> <step>", name, n, sc.Text())
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		pid, err2 := strconv.Atoi(f[1])
		step, ok := ParseStep(f[2])
		if err := errors.Join(err1, err2); err != nil || !ok {
			return t, fmt.Errorf("%s line %d: %q is not <ns> <pid> <step>: %w", name, n, sc.Text(), errors.Join(err, stepErr(ok, f[2])))
		}
		if pid != t.PID {
			return t, fmt.Errorf("%s line %d: %q is an event of process %d in the trace of process %d", name, n, sc.Text(), pid, t.PID)
		}
		t.Events = append(t.Events, Event{Time: ns, PID: pid, Step: step})
	}
	if err := sc.Err(); err != nil {
		return t, fmt.Errorf("%s line %d: %w", name, n, err)
	}
	return t, nil
}

// readHeader reads the header line into t: exactly as Write writes it,
// nothing after it, no drops below zero.
func (t *Trace) readHeader(line string) error {
	if _, err := fmt.Sscanf(line, header+" pid=%d dropped=%d", &t.PID, &t.Dropped); err != nil {
		return err
	}
	if want := fmt.Sprintf("%s pid=%d dropped=%d", header, t.PID, t.Dropped); line != want || t.Dropped < 0 {
		return fmt.Errorf("not %q with a count of drops", header+" pid=<pid> dropped=<n>")
	}
	return nil
}

func stepErr(ok bool, name string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("unknown step %q", name)
}

// ReadDir reads every trace file in dir.
func ReadDir(dir string) ([]Trace, error) {
	names, err := filepath.Glob(filepath.Join(dir, "trace.*"))
	if err != nil {
		return nil, err
	}
	var traces []Trace
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		t, err := Read(f, name)
		f.Close()
		if err != nil {
			return nil, err
		}
		traces = append(traces, t)
	}
	return traces, nil
}
