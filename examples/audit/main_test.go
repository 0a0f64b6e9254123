package main

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
)

// The demo starts this program again with -role: in a test, the program is
// the test binary, so TestMain runs the role instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-role=") {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDemo(t *testing.T) {
	var out lockedBuffer
	const requests = 12
	code := run([]string{"-dir=" + t.TempDir(), "-requests=12", "-workers=2"}, &out, &out)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	text := out.String()
	if !strings.Contains(text, "events\n") || !strings.Contains(text, ": 12 events") {
		t.Fatalf("the report does not hold %d events", requests)
	}
	for _, want := range []string{"/admin/users   user=grace     status=403", "/admin/users   user=root      status=200", "DELETE /orders/7      user=linus", "user=anonymous"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(text, "assigned partitions"); n < 2 {
		t.Errorf("%d assignments reported, want one per worker at least", n)
	}
}
