package runnel

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestMissingPartitionDir: a partition directory removed by hand while
// its topic is there is damage, reported as the rest of runnel reports
// damage: a *CorruptError naming the directory, from DescribeTopic,
// DescribeGroup, a producer and a consumer of the partition alike, as
// Verify names it; the topic's other partitions work.
func TestMissingPartitionDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for part := range 2 {
		if _, err := p.Send(ctx, Record{Partition: part, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	gone := partDir(l, "t", 1)
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}

	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	damaged := func(who string, err error) {
		t.Helper()
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != gone || ce.Pos != -1 {
			t.Errorf("%s: %v, want a *CorruptError naming %s", who, err, gone)
		}
	}
	_, err := l.DescribeTopic("t")
	damaged("DescribeTopic", err)
	_, err = l.DescribeGroup("g")
	if errs := GroupTopicErrors(err); len(errs) != 1 {
		t.Errorf("DescribeGroup: %v, want one topic's error", err)
	} else {
		damaged("DescribeGroup", errs[0].Err)
	}

	p = mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	_, err = p.Send(ctx, Record{Partition: 1, Value: []byte("w")})
	damaged("Send to the partition", err)
	if _, err := p.Send(ctx, Record{Partition: 0, Value: []byte("w")}); err != nil {
		t.Errorf("Send to the other partition: %v", err)
	}
	_, err = l.Consumer("t", &ConsumerOptions{Partitions: []int{1}})
	damaged("Consumer of the partition", err)
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	_, err = c.TryPoll()
	damaged("group member's TryPoll", err)
	if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing directory after the calls: %v, want none made", err)
	}

	rep, err := l.Verify(ctx, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Path != gone || rep.Problems[0].Kind != ProblemCorrupt {
		t.Errorf("Verify: %v, want the missing directory", rep.Problems)
	}
}

// TestMissingPartitionDirMadeAnew: a missing partition directory made
// anew, empty, is an empty partition again, as Verify's doc says.
func TestMissingPartitionDirMadeAnew(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	gone := partDir(l, "t", 1)
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	if pos, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte("again")}); err != nil || pos.Offset != 0 {
		t.Fatalf("Send to the partition made anew: %+v, %v, want offset 0", pos, err)
	}
	if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %v", rep.Problems, err)
	}
}
