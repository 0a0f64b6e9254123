package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-log/runnel"
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

// damageOffsets flips a bit of the header of the report group's offsets
// file for topic, as runnel's tests do, and returns its path.
func damageOffsets(t *testing.T, l *runnel.Log, topic string) string {
	t.Helper()
	path := filepath.Join(l.Dir(), "groups", group, topic+".offsets")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[12] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWaitsWithAnotherTopicDamaged: the demo's waits see the workers
// spread and caught up though the report group's offsets file for another
// topic is damaged, and fail at once, naming the file, when the audit
// topic's is; any error from DescribeGroup kept them waiting (a minute).
func TestWaitsWithAnotherTopicDamaged(t *testing.T) {
	ctx := context.Background()
	l, err := openLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("other", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(ctx, group, "other", runnel.Earliest, nil); err != nil {
		t.Fatal(err)
	}
	damageOffsets(t, l, "other")

	p, err := l.Producer(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, runnel.Record{Value: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	// A worker, owning every partition, that has committed every event.
	c, err := l.Consumer(topic, &runnel.ConsumerOptions{Group: group, Start: runnel.Latest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := spread(l, 1); !ok || err != nil {
		t.Errorf("spread: %v, %v; want true", ok, err)
	}
	if ok, err := caughtUp(l); !ok || err != nil {
		t.Errorf("caughtUp: %v, %v; want true", ok, err)
	}

	path := damageOffsets(t, l, topic)
	var ce *runnel.CorruptError
	if ok, err := caughtUp(l); ok || !errors.As(err, &ce) || ce.Path != path {
		t.Errorf("caughtUp with %s damaged: %v, %v; want its error", path, ok, err)
	}
}
