package runnel

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDescribeGroupFilesRemovedMeanwhile: an offsets file that another
// Log (as another process) removes between DescribeGroup's listing of the
// group's files and its reading of them is not damage: the topic is left
// out with no error, and a group whose every file went is not found.
// Each removed file was a *GroupTopicError.
func TestDescribeGroupFilesRemovedMeanwhile(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		remove     func(other *Log) error
		wantTopics []string
		wantErr    error
	}{
		{"DeleteTopic", func(other *Log) error { return other.DeleteTopic("a") }, []string{"t"}, nil},
		{"DeleteGroup", func(other *Log) error { return other.DeleteGroup(ctx, "g", nil) }, nil, ErrGroupNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered})
			other := openTest(t, dir, &Options{Durability: Buffered})
			for _, topic := range []string{"a", "t"} {
				mustCreate(t, l, topic, TopicConfig{Partitions: 1})
				if _, err := l.ResetGroupOffsets(ctx, "g", topic, AtOffset(0), nil); err != nil {
					t.Fatal(err)
				}
			}
			testHookGroupListed = func() {
				testHookGroupListed = nil
				if err := tc.remove(other); err != nil {
					t.Error(err)
				}
			}
			t.Cleanup(func() { testHookGroupListed = nil })

			info, err := l.DescribeGroup("g")
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("DescribeGroup: %v, want %v", err, tc.wantErr)
			}
			var topics []string
			for _, gt := range info.Topics {
				topics = append(topics, gt.Topic)
			}
			if diff := cmp.Diff(tc.wantTopics, topics); diff != "" {
				t.Errorf("DescribeGroup described (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDescribeGroupTopicDeletedWhileRead: a topic that another Log (as
// another process) deletes after DescribeGroup opened the group's offsets
// file for it, and before it read the partitions' end offsets, is left
// out with no error, as one whose file went before it was opened: the
// group no longer has the topic. Its partitions' directories, moved away
// by the delete, were reported as damage (a *GroupTopicError).
func TestDescribeGroupTopicDeletedWhileRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	other := openTest(t, dir, &Options{Durability: Buffered})
	for _, topic := range []string{"a", "t"} {
		mustCreate(t, l, topic, TopicConfig{Partitions: 2})
		produceSpread(t, l, topic, 2, 3)
		if _, err := l.ResetGroupOffsets(ctx, "g", topic, AtOffset(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	testHookGroupTopicOpened = func(topic string) {
		if topic != "a" {
			return
		}
		testHookGroupTopicOpened = nil
		if err := other.DeleteTopic("a"); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookGroupTopicOpened = nil })

	info, err := l.DescribeGroup("g")
	if err != nil {
		t.Errorf("DescribeGroup: %v, want no error", err)
	}
	var topics []string
	for _, gt := range info.Topics {
		topics = append(topics, gt.Topic)
		for _, gp := range gt.Partitions {
			if gp.End != 3 || gp.Lag != 2 {
				t.Errorf("topic %s partition %d: end %d lag %d, want 3 and 2", gt.Topic, gp.Partition, gp.End, gp.Lag)
			}
		}
	}
	if diff := cmp.Diff([]string{"t"}, topics); diff != "" {
		t.Errorf("DescribeGroup described (-want +got):\n%s", diff)
	}
}

// TestDescribeGroupLongMemberName: a member name longer than the 39 bytes
// kept is cut at a character, never inside one: cut inside "é", the name
// DescribeGroup returned was not UTF-8 (and JSON showed U+FFFD).
func TestDescribeGroupLongMemberName(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	long := strings.Repeat("w", maxMemberName-1) + "é-1"
	for _, tt := range []struct{ name, want string }{
		{long, long[:maxMemberName-1]},
		{"worker-é", "worker-é"},
	} {
		c, err := l.Consumer("t", &ConsumerOptions{Group: "g", MemberName: tt.name})
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.DescribeGroup("g")
		c.Close()
		if err != nil || len(info.Topics) != 1 || len(info.Topics[0].Members) != 1 {
			t.Fatalf("DescribeGroup: %+v, %v", info, err)
		}
		if got := info.Topics[0].Members[0].Name; got != tt.want {
			t.Errorf("member named %q is described as %q, want %q", tt.name, got, tt.want)
		}
	}
}
