package tracefmt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteReadBack(t *testing.T) {
	want := Trace{PID: 42, Dropped: 7, Events: []Event{
		{Time: 1000, PID: 42, Step: SendBegin},
		{Time: 1500, PID: 42, Step: WriterLocked},
		{Time: 900, PID: 42, Step: PollReturn},
	}}
	var buf bytes.Buffer
	if err := Write(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf, "trace.42")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
}

func TestReadNamesTheBadLine(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no header", "", "trace.1: no header"},
		{"bad header", "# something else\n", "trace.1 line 1"},
		{"unknown step", header + " pid=1 dropped=0\n10 1 send\n11 1 nonsense\n", `trace.1 line 3: "11 1 nonsense"`},
		{"bad time", header + " pid=1 dropped=0\nten 1 send\n", "trace.1 line 2"},
		{"short line", header + " pid=1 dropped=0\n10 1\n", "trace.1 line 2"},
		{"line too long", header + " pid=1 dropped=0\n10 1 send\n" + strings.Repeat("x", 1<<17) + "\n", "trace.1 line 3"},
		{"header too long", header + strings.Repeat(" ", 1<<17) + "\n", "trace.1 line 1"},
		{"header with more after it", header + " pid=1 dropped=0 and more\n", "trace.1 line 1"},
		{"negative drops", header + " pid=1 dropped=-3\n", "trace.1 line 1"},
		{"another process's event", header + " pid=1 dropped=0\n10 1 send\n11 2 send\n", "trace.1 line 3"},
	} {
		if _, err := Read(strings.NewReader(tc.text), "trace.1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestBufferEvents: RUNNEL_TRACE_EVENTS is a positive count, capped, and
// anything else keeps the default with an error naming the variable.
func TestBufferEvents(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", DefaultEvents, false},
		{"1", 1, false},
		{" 1000 ", 1000, false},
		{"67108864", MaxEvents, false},
		{"67108865", MaxEvents, true},
		{"99999999999999999999999", MaxEvents, true},
		{"0", DefaultEvents, true},
		{"-5", DefaultEvents, true},
		{"-99999999999999999999999", DefaultEvents, true},
		{"4M", DefaultEvents, true},
		{"1e6", DefaultEvents, true},
	} {
		n, err := BufferEvents(tc.in)
		if n != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("BufferEvents(%q) = %d, %v; want %d, error %v", tc.in, n, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), EventsEnv) {
			t.Errorf("BufferEvents(%q)'s error %q does not name %s", tc.in, err, EventsEnv)
		}
	}
}
