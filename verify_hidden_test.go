package runnel

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestVerifyHiddenTopic: a topic directory holding segment files but no
// topic.json that can be read is a problem, naming the file: no listing
// shows the topic and no reader reads its records, and Verify said ok. A
// directory a CreateTopic that died left (no segment) is none.
func TestVerifyHiddenTopic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"missing", func(t *testing.T, path string) {}},
		{"dangling link", func(t *testing.T, path string) {
			if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			mustCreate(t, l, "u", TopicConfig{Partitions: 2})
			p := mustProducer(t, l, "t", nil)
			if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, topic := range []string{"t", "u"} { // u has no segment yet: a dead CreateTopic's leftover
				path := filepath.Join(dir, "topics", topic, topicFileName)
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				tc.damage(t, path)
			}
			l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
			rep, err := l.Verify(context.Background(), "", nil)
			want := filepath.Join(dir, "topics", "t", topicFileName)
			if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Path != want || rep.Problems[0].Kind != ProblemCorrupt {
				t.Errorf("Verify: %v, %v; want one problem naming %s", rep.Problems, err, want)
			}
		})
	}
}

// TestVerifyHiddenTopicMadeMeanwhile: a topic made and written to
// between hiddenTopics' listing and its look at the directory is no
// problem (it holds segments and a topic.json the listing did not see).
func TestVerifyHiddenTopicMadeMeanwhile(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	verifyHiddenListed = func() {
		verifyHiddenListed = nil
		mustCreate(t, l, "late", TopicConfig{Partitions: 1})
		p := mustProducer(t, l, "late", nil)
		if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { verifyHiddenListed = nil }()
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %v; want no problem", rep.Problems, err)
	}
}
