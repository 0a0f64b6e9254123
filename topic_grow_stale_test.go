package runnel

import (
	"context"
	"testing"
)

// TestOffsetsOfStaleHandle: a Log whose handle on a topic still knows
// fewer partitions than topic.json, because another process grew the
// topic just after this one looked, opens a group's offsets file made at
// the new count (the group's first member joined after the growth) as
// the file it is, instead of reporting it as damage: DescribeGroup and a
// member joining the group.
func TestOffsetsOfStaleHandle(t *testing.T) {
	dir := t.TempDir()
	la := openTest(t, dir, nil)
	lb := openTest(t, dir, nil)
	mustCreate(t, la, "g", TopicConfig{Partitions: 2})
	if _, err := la.DescribeTopic("g"); err != nil { // la's handle: 2 partitions
		t.Fatal(err)
	}

	// join has a member of group join on lb and leave.
	join := func(group string) {
		c, err := lb.Consumer("g", &ConsumerOptions{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// growAndJoin has lb grow the topic to n and a member of group join
	// it there, its offsets file made for n partitions.
	growAndJoin := func(n int, group string) {
		if err := lb.AlterTopic("g", func(c *TopicConfig) { c.Partitions = n }); err != nil {
			t.Fatal(err)
		}
		join(group)
	}
	var next func()
	testHookOffsetsOfStale = func(l *Log, _ *topic) {
		if l == la && next != nil {
			f := next
			next = nil
			f()
		}
	}
	t.Cleanup(func() { testHookOffsetsOfStale = nil })

	// A group listed with the topic, whose file is made anew at the
	// new count between the listing and the open.
	join("fresh")
	next = func() {
		if err := lb.DeleteGroup(context.Background(), "fresh", nil); err != nil {
			t.Fatal(err)
		}
		growAndJoin(4, "fresh")
	}
	gi, err := la.DescribeGroup("fresh")
	if err != nil {
		t.Fatalf("DescribeGroup of a group made after a growth this Log had not seen: %v", err)
	}
	if len(gi.Topics) != 1 || len(gi.Topics[0].Partitions) != 4 {
		t.Fatalf("DescribeGroup: %+v; want topic g with 4 partitions", gi.Topics)
	}

	next = func() { growAndJoin(6, "later") }
	c, err := la.ConsumerContext(context.Background(), "g", &ConsumerOptions{Group: "later"})
	if err != nil {
		t.Fatalf("joining a group made after a growth this Log had not seen: %v", err)
	}
	defer c.Close()
	if _, err := c.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Partitions()); got != 6 {
		t.Errorf("the member owns %d partitions, want all 6", got)
	}
}
