package runnel

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDeleteTopicStraggler deletes a topic while a straggler, a call that
// resolved a path into a partition's directory before the delete moved it
// (createMeta's, in TestTopicAdminMultiProcess's churn), creates its file
// there after the removal's pass listed the directory: the pass fails
// with the directory not empty. The delete has committed; it must finish,
// straggler and all, and say so.
func TestDeleteTopicStraggler(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "s", TopicConfig{Partitions: 2})
	// The directory as the straggler resolved it: it follows the move.
	part, err := os.OpenRoot(filepath.Join(l.topicDir("s"), "1"))
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	saved := removeTree
	t.Cleanup(func() { removeTree = saved })
	passes := 0
	removeTree = func(grave string) error {
		passes++
		if passes > 1 {
			return saved(grave)
		}
		// The straggler's file lands, then the pass ends as os.RemoveAll's
		// does, with the removal of the directory it emptied.
		f, err := part.Create(".partition.meta.tmp-straggler")
		if err != nil {
			t.Errorf("straggler: %v", err)
			return saved(grave)
		}
		f.Close()
		return os.Remove(filepath.Join(grave, "s", "1"))
	}
	if err := l.DeleteTopic("s"); err != nil {
		t.Errorf("DeleteTopic: %v", err)
	}
	if passes != 2 {
		t.Errorf("%d passes over the grave, want 2", passes)
	}
	checkNoAdminDebris(t, dir)
	if _, err := l.DescribeTopic("s"); err == nil {
		t.Error("the topic is still there")
	}
}
