package runnel

import (
	"context"
	"testing"
)

// TestVerifyDuringGrowth grows a topic, and a group joins it for the first
// time (its offsets file made for the grown count), after Verify checked
// the topic's partitions and before it checks the offsets files: what a
// correct AlterTopic and member did meanwhile is no problem.
func TestVerifyDuringGrowth(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	mustCreate(t, l, "orders", TopicConfig{Partitions: 2})
	other := openTest(t, dir, &Options{RetentionInterval: -1})
	verifyBeforeOffsets = func() {
		verifyBeforeOffsets = nil
		if err := other.AlterTopic("orders", func(c *TopicConfig) { c.Partitions = 4 }); err != nil {
			t.Error(err)
		}
		if _, err := other.ResetGroupOffsets(context.Background(), "late", "orders", Earliest, nil); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { verifyBeforeOffsets = nil })
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if verifyBeforeOffsets != nil {
		t.Fatal("the hook did not run")
	}
	if !rep.OK() {
		t.Errorf("problems %v", rep.Problems)
	}
}
