package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStaleHandleForgotten: once another Log (as another process) deletes
// a topic, or deletes it and creates it anew, this Log drops its handle
// and closes the handle's files wherever it learns so, while the producer
// and the consumer that hold the handle keep failing with
// ErrTopicNotFound. The handle (and its partitions' descriptors) stayed
// until this Log looked the name up again; the retention pass, a Topics
// listing, a failed Send or Poll left it.
func TestStaleHandleForgotten(t *testing.T) {
	ctx := context.Background()
	retentionPass := func(l *Log, _ *Producer, _ *Consumer) error {
		l.retentionPass(ctx)
		return nil
	}
	cases := []struct {
		name     string
		recreate bool // the other Log creates the topic anew after deleting it
		learn    func(l *Log, p *Producer, c *Consumer) error
	}{
		{"retention pass", false, retentionPass},
		{"retention pass, created anew", true, retentionPass},
		{"EnforceRetention", false, func(l *Log, _ *Producer, _ *Consumer) error {
			return l.EnforceRetention(ctx)
		}},
		{"Topics", false, func(l *Log, _ *Producer, _ *Consumer) error {
			_, err := l.Topics()
			return err
		}},
		{"DescribeTopic", false, func(l *Log, _ *Producer, _ *Consumer) error {
			return wantNotFound("DescribeTopic", second(l.DescribeTopic("a")))
		}},
		{"Send", false, func(_ *Log, p *Producer, _ *Consumer) error {
			return wantNotFound("Send", second(p.Send(ctx, Record{Partition: 1})))
		}},
		{"Poll", false, func(_ *Log, _ *Producer, c *Consumer) error {
			return wantNotFound("TryPoll", second(c.TryPoll()))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{Durability: Buffered, RetentionInterval: -1}
			l := openTest(t, dir, opts)
			other := openTest(t, dir, opts) // as another process
			before := filesUnder(t, dir)
			mustCreate(t, l, "a", TopicConfig{Partitions: 2})
			p, err := l.Producer("a", &ProducerOptions{Partitioner: ManualPartitioner})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for part := range 2 {
				if _, err := p.Send(ctx, Record{Partition: part, Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
			c, err := l.Consumer("a", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pollUntil(t, c, 2, 20*time.Second)
			stale := handleOf(l, "a")
			if stale == nil || l.Stats().OpenPartitions != 2 {
				t.Fatalf("test setup: handle %v, %d partitions with files open", stale, l.Stats().OpenPartitions)
			}

			if err := other.DeleteTopic("a"); err != nil {
				t.Fatal(err)
			}
			if tc.recreate {
				mustCreate(t, other, "a", TopicConfig{Partitions: 2})
			}
			if err := tc.learn(l, p, c); err != nil {
				t.Fatal(err)
			}
			waitForgotten(l)

			if h := handleOf(l, "a"); h == stale {
				t.Errorf("the Log keeps its handle on the deleted topic")
			}
			if n := l.Stats().OpenPartitions; n != 0 {
				t.Errorf("%d partitions of the deleted topic keep their files open, want 0", n)
			}
			if err := wantNotFound("Send through the old handle", second(p.Send(ctx, Record{}))); err != nil {
				t.Error(err)
			}
			if err := wantNotFound("TryPoll through the old handle", second(c.TryPoll())); err != nil {
				t.Error(err)
			}
			// The consumer's own descriptors (segments it read) go with
			// it; what is left open would be the Log's.
			c.Close()
			if open := filesUnder(t, dir); len(open) > len(before) {
				t.Errorf("files open under the log directory: %v, before the topic was made: %v", open, before)
			}
		})
	}
}

// second is the error of a call that returns a value and one.
func second[T any](_ T, err error) error { return err }

// wantNotFound is nil if err is ErrTopicNotFound, an error naming what
// returned it otherwise.
func wantNotFound(what string, err error) error {
	if errors.Is(err, ErrTopicNotFound) {
		return nil
	}
	return fmt.Errorf("%s: %v, want ErrTopicNotFound", what, err)
}

// handleOf is l's handle on topic name, nil if it has none.
func handleOf(l *Log, name string) *topic {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.topics[name]
}

// waitForgotten waits for the closes of handles that l forgot in the
// background (forgetTopicLater).
func waitForgotten(l *Log) {
	l.mu.Lock()
	_, done := l.forgettingNow()
	l.mu.Unlock()
	for _, d := range done {
		<-d
	}
}

// filesUnder lists the process's descriptors open on files under dir, as
// /proc/self/fd names them (moved files where they went, removed ones
// marked so); nil where there is no /proc.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var files []string
	for _, e := range ents {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(p, dir+string(filepath.Separator)) {
			files = append(files, strings.TrimPrefix(p, dir))
		}
	}
	return files
}
