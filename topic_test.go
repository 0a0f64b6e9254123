package runnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopicNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a.b_c-D9", true},
		{strings.Repeat("n", 249), true},
		{"x", true},
		{"..x", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{`a\b`, false},
		{strings.Repeat("n", 250), false},
		{"tópico", false},
		{"有", false},
		{"with space", false},
		{"tab\t", false},
		{"nul\x00", false},
		{"a:b", false},
	}
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	var created []string
	for _, tt := range tests {
		err := l.CreateTopic(tt.name, TopicConfig{Partitions: 1})
		if tt.ok {
			if err != nil {
				t.Errorf("CreateTopic(%q): %v", tt.name, err)
			}
			created = append(created, tt.name)
			continue
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreateTopic(%q): %v, want ErrInvalidName", tt.name, err)
		}
		checks := map[string]error{"DeleteTopic": l.DeleteTopic(tt.name)}
		_, checks["Producer"] = l.Producer(tt.name, nil)
		_, checks["Consumer"] = l.Consumer(tt.name, nil)
		_, checks["DescribeTopic"] = l.DescribeTopic(tt.name)
		for call, err := range checks {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s(%q): %v, want ErrInvalidName", call, tt.name, err)
			}
		}
	}
	// Nothing escaped the topics directory.
	entries, _ := os.ReadDir(dir)
	var top []string
	for _, e := range entries {
		top = append(top, e.Name())
	}
	if diff := cmp.Diff([]string{"groups", "runnel.format", "topics"}, top); diff != "" {
		t.Errorf("log directory (-want +got):\n%s", diff)
	}
	got, err := l.Topics()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(created) {
		t.Errorf("Topics lists %d topics, created %d", len(got), len(created))
	}
}

func TestTopicConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  TopicConfig
		ok   bool
	}{
		{"defaults", TopicConfig{Partitions: 1}, true},
		{"smallest segment", TopicConfig{Partitions: 2, SegmentBytes: 64 << 10}, true},
		{"zero partitions", TopicConfig{}, false},
		{"negative partitions", TopicConfig{Partitions: -1}, false},
		{"too many partitions", TopicConfig{Partitions: 1<<16 + 1}, false},
		{"segment too small", TopicConfig{Partitions: 1, SegmentBytes: 64<<10 - 1}, false},
		{"negative segment", TopicConfig{Partitions: 1, SegmentBytes: -1}, false},
		{"segment too large", TopicConfig{Partitions: 1, SegmentBytes: 1<<31 + 1}, false},
		{"negative index interval", TopicConfig{Partitions: 1, IndexIntervalBytes: -1}, false},
		{"negative retention age", TopicConfig{Partitions: 1, RetentionAge: -1}, false},
		{"negative retention bytes", TopicConfig{Partitions: 1, RetentionBytes: -1}, false},
	}
	l := openTest(t, t.TempDir(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			err := l.CreateTopic(name, tt.cfg)
			if tt.ok {
				if err != nil {
					t.Fatalf("CreateTopic: %v", err)
				}
				info, err := l.DescribeTopic(name)
				if err != nil || len(info.Partitions) != tt.cfg.Partitions {
					t.Fatalf("DescribeTopic: %+v, %v", info, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("CreateTopic: %v, want ErrInvalidArgument", err)
			}
			if _, err := os.Stat(filepath.Join(l.Dir(), "topics", name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("rejected topic left a directory: %v", err)
			}
			if _, err := l.Producer(name, nil); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Producer of rejected topic: %v, want ErrTopicNotFound", err)
			}
		})
	}
}

func TestTopicAdmin(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	for _, name := range []string{"zeta", "alpha", "Mid", "beta.1", "beta-2"} {
		mustCreate(t, l, name, TopicConfig{Partitions: 2})
	}
	if err := l.CreateTopic("alpha", TopicConfig{Partitions: 3}); !errors.Is(err, ErrTopicExists) {
		t.Errorf("duplicate CreateTopic: %v, want ErrTopicExists", err)
	}
	if info, _ := l.DescribeTopic("alpha"); len(info.Partitions) != 2 {
		t.Errorf("duplicate CreateTopic changed the topic: %+v", info)
	}
	got, err := l.Topics()
	if diff := cmp.Diff([]string{"Mid", "alpha", "beta-2", "beta.1", "zeta"}, got); err != nil || diff != "" {
		t.Errorf("Topics: %v (-want +got):\n%s", err, diff)
	}

	// A second Log on the same directory sees the topics and their data.
	l2 := openTest(t, dir, nil)
	mustCreate(t, l2, "from-l2", TopicConfig{Partitions: 1})
	p2 := mustProducer(t, l2, "alpha", nil)
	if _, err := p2.Send(context.Background(), Record{Key: []byte("k"), Value: []byte("written by l2")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Topics(); !slices.Contains(got, "from-l2") {
		t.Errorf("topic created by another Log missing from Topics: %v", got)
	}
	if recs := readAll(t, l, "alpha", 1, nil); string(recs[0].Value) != "written by l2" {
		t.Errorf("read %q from another Log's append", recs[0].Value)
	}
	if err := l.CreateTopic("from-l2", TopicConfig{Partitions: 1}); !errors.Is(err, ErrTopicExists) {
		t.Errorf("CreateTopic of another Log's topic: %v, want ErrTopicExists", err)
	}

	// DeleteTopic removes everything; the name is free again.
	zinfo, err := l.DescribeTopic("zeta")
	if err != nil {
		t.Fatal(err)
	}
	zetaID := zinfo.ID
	p := mustProducer(t, l, "zeta", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("gone soon")}); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic("zeta"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "topics"))
	for _, e := range entries {
		if strings.Contains(e.Name(), "zeta") {
			t.Errorf("DeleteTopic left %s", e.Name())
		}
	}
	if _, err := l.Producer("zeta", nil); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Producer after DeleteTopic: %v, want ErrTopicNotFound", err)
	}
	if _, err := l.Consumer("zeta", nil); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Consumer after DeleteTopic: %v, want ErrTopicNotFound", err)
	}
	if _, err := l.DescribeTopic("zeta"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DescribeTopic after DeleteTopic: %v, want ErrTopicNotFound", err)
	}
	if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Send on a deleted topic's producer: %v, want ErrTopicNotFound", err)
	}
	if err := l.DeleteTopic("zeta"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("second DeleteTopic: %v, want ErrTopicNotFound", err)
	}
	if err := l.DeleteTopic("never"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DeleteTopic of unknown topic: %v, want ErrTopicNotFound", err)
	}
	got, _ = l.Topics()
	if diff := cmp.Diff([]string{"Mid", "alpha", "beta-2", "beta.1", "from-l2"}, got); diff != "" {
		t.Errorf("Topics after DeleteTopic (-want +got):\n%s", diff)
	}
	mustCreate(t, l, "zeta", TopicConfig{Partitions: 1})
	info, err := l.DescribeTopic("zeta")
	if err != nil || info.Partitions[0].NextOffset != 0 {
		t.Errorf("recreated topic: %+v, %v; want empty", info, err)
	}
	if len(info.ID) != 32 || info.ID == zetaID {
		t.Errorf("recreated topic has ID %q, the deleted one had %q; want a new one", info.ID, zetaID)
	}
}

// TestTopicDeletedByOtherLog deletes a topic through one Log while another
// Log (as another process would) has producers and consumers of it open:
// they must fail with ErrTopicNotFound, not write into the void, not read
// the re-created topic, and not report ErrClosed — whether or not the
// other Log noticed the deletion first (a new Producer there closes the old
// handle's partitions), and whether or not the topic was created again.
func TestTopicDeletedByOtherLog(t *testing.T) {
	for _, tt := range []struct {
		name             string
		recreate, notice bool
	}{
		{"deleted", false, false},
		{"deleted, noticed", false, true},
		{"re-created", true, false},
		{"re-created, noticed", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l1 := openTest(t, dir, nil)
			l2 := openTest(t, dir, nil)
			mustCreate(t, l1, "shared", TopicConfig{Partitions: 2})
			ctx := context.Background()
			p2 := mustProducer(t, l2, "shared", nil)
			if _, err := p2.Send(ctx, Record{Value: []byte("before")}); err != nil {
				t.Fatal(err)
			}
			c2 := mustConsumer(t, l2, "shared", nil)
			g2 := mustConsumer(t, l2, "shared", &ConsumerOptions{Group: "g"})
			for _, c := range []*Consumer{c2, g2} {
				if recs, err := c.Poll(ctx); err != nil || len(recs) != 1 {
					t.Fatalf("Poll before the delete: %d records, %v", len(recs), err)
				}
			}
			if err := l1.DeleteTopic("shared"); err != nil {
				t.Fatal(err)
			}
			if tt.recreate {
				mustCreate(t, l1, "shared", TopicConfig{Partitions: 2})
			}
			if tt.notice {
				_, err := l2.Producer("shared", nil)
				if want := !tt.recreate; errors.Is(err, ErrTopicNotFound) != want {
					t.Fatalf("Producer through l2 after the delete: %v", err)
				}
			}
			if pos, err := p2.Send(ctx, Record{Value: []byte("after")}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Send after the delete: %+v, %v; want ErrTopicNotFound", pos, err)
			}
			if _, err := p2.SendBatch(ctx, 0, []Record{{Value: []byte("after")}}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("SendBatch after the delete: %v, want ErrTopicNotFound", err)
			}
			for name, c := range map[string]*Consumer{"plain": c2, "group member": g2} {
				if _, err := c.Poll(ctx); !errors.Is(err, ErrTopicNotFound) {
					t.Errorf("%s consumer's Poll after the delete: %v, want ErrTopicNotFound", name, err)
				}
			}
			if tt.recreate {
				info, err := l1.DescribeTopic("shared")
				if err != nil || info.Partitions[0].NextOffset+info.Partitions[1].NextOffset != 0 {
					t.Errorf("the re-created topic: %+v, %v; want it empty", info, err)
				}
			}
		})
	}
}

// TestTopicFileInvalidConfig: a topic.json that parses but holds a config
// out of range is damage to the whole file, which the error names without
// a byte (it said "at byte -1"). Found by FuzzTopicFile (topic_fuzz_test.go).
func TestTopicFileInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	l.Close()
	path := filepath.Join(dir, "topics", "t", topicFileName)
	if err := os.WriteFile(path, []byte(`{"partitions": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := openTest(t, dir, nil).DescribeTopic("t")
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path || ce.Pos != -1 || !strings.Contains(err.Error(), path+": ") || strings.Contains(err.Error(), "byte") {
		t.Errorf("DescribeTopic: %v; want a *CorruptError naming %s, the whole file", err, path)
	}
}
