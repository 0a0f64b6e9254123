package runnel

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestBackupDuringGrowth grows a topic, and a group joins it for the
// first time, after the backup read the topic's topic.json and before it
// read the groups' offsets files: the copy holds the topic as that
// topic.json says, its partitions and every group's offsets for them, and
// Verify finds nothing in it (no partition directory past the count, no
// offsets file covering more partitions than the copied topic).
func TestBackupDuringGrowth(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 20)
	other := openTest(t, src, &Options{RetentionInterval: -1})
	backupHook = func(stage, topic string, _ int, _ int64) {
		if stage != "topics read" {
			return
		}
		backupHook = nil
		if err := l.AlterTopic("orders", func(c *TopicConfig) { c.Partitions = 5 }); err != nil {
			t.Error(err)
		}
		// A group's first file, made for the 5 partitions the topic has now.
		if _, err := other.ResetGroupOffsets(context.Background(), "late", "orders", AtOffset(2), &ResetOptions{Partitions: []int{0}}); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { backupHook = nil })
	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := l.Backup(context.Background(), dest, nil); err != nil {
		t.Fatal(err)
	}
	if backupHook != nil {
		t.Fatal("the hook did not run")
	}
	data, err := os.ReadFile(filepath.Join(dest, "topics", "orders", topicFileName))
	if err != nil {
		t.Fatal(err)
	}
	var tf topicFile
	if err := json.Unmarshal(data, &tf); err != nil || tf.Partitions != 3 {
		t.Fatalf("the copy's topic.json: %d partitions, %v; want 3 (read before the growth)", tf.Partitions, err)
	}
	c := openCopy(t, dest) // Verify: no problems, no notes
	for _, group := range []string{"billing", "late"} {
		info, err := c.DescribeGroup(group)
		if err != nil {
			t.Fatalf("group %s in the copy: %v", group, err)
		}
		if n := len(info.Topics[0].Partitions); n != 3 {
			t.Errorf("group %s in the copy: %d partitions, want 3", group, n)
		}
	}
}
