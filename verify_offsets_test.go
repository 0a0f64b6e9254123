package runnel

import (
	"context"
	"strings"
	"testing"
)

// TestVerifyCommitPastEndAllowed: a committed offset past a partition's
// end is one the API stores on purpose (ResetGroupOffsets with Unchecked,
// as a Kafka OffsetCommit makes; a member's CommitOffsets), not damage:
// Verify notes it, naming the file, the offset and the end, and finds the
// log OK.
func TestVerifyCommitPastEndAllowed(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	sendSeq(t, p, 0, seqRecords(0, 10))
	if _, err := l.ResetGroupOffsets(ctx, "reset", "t", AtOffset(100), &ResetOptions{Partitions: []int{0}, Unchecked: true}); err != nil {
		t.Fatal(err)
	}
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: "member", DisableAutoCommit: true})
	pollN(t, c, 10)
	if err := c.CommitOffsets(ctx, map[int]int64{1: 7}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	rep, err := l.Verify(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("Verify of commits past the end: problems %v, want none", rep.Problems)
	}
	for _, want := range []string{
		offsetsPath(l.dir, "reset", "t") + ": partition 0: committed offset 100 is past the end 10",
		offsetsPath(l.dir, "member", "t") + ": partition 1: committed offset 7 is past the end 0",
	} {
		if !strings.Contains(strings.Join(rep.Notes, "\n"), want) {
			t.Errorf("Verify's notes %q lack %q", rep.Notes, want)
		}
	}
}
