package runnel

import (
	"context"
	"slices"
	"strings"
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

// TestVerifyDuringLiveGrowth runs Verify while an AlterTopic is adding
// partitions, its new directories made and topic.json not yet written:
// the directories past the count are noted as a growth under way, not as
// left by one that died (which an operator might clear by hand, under
// the AlterTopic about to name them).
func TestVerifyDuringLiveGrowth(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	mustCreate(t, l, "orders", TopicConfig{Partitions: 1})
	other := openTest(t, dir, &Options{RetentionInterval: -1})
	var notes []string
	testHookAdmin = func(point, name string) {
		if point != hookGrowDirs {
			return
		}
		rep, err := other.Verify(context.Background(), "", nil)
		if err != nil || !rep.OK() {
			t.Errorf("Verify: %v, %v", rep.Problems, err)
		}
		notes = rep.Notes
	}
	t.Cleanup(func() { testHookAdmin = nil })
	growTo(t, l, "orders", 3)
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "[1 2]") && strings.Contains(n, "under way") }) {
		t.Errorf("Verify's notes %q name no growth under way", notes)
	}
	if slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "died") }) {
		t.Errorf("Verify's notes %q call the growth under way dead", notes)
	}
}
