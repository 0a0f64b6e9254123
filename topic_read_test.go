package runnel

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTopicReads: TopicConfig and PartitionOffsets report what
// DescribeTopic does, as another Log changes the topic: appends, retention
// moving the start, AlterTopic, deletion and creation anew.
func TestTopicReads(t *testing.T) {
	dir := t.TempDir()
	l1 := openTest(t, dir, nil)
	l2 := openTest(t, dir, &Options{Durability: Buffered, MaxBatchBytes: retBatch})
	mustCreate(t, l1, "r", TopicConfig{Partitions: 3, SegmentBytes: minSegmentBytes, RetentionBytes: 5 * minSegmentBytes / 2})
	const n = 1000
	retProduce(t, l2, "r", 0, n, 1000, nil) // partition 0: about 15 segments
	p := mustProducer(t, l2, "r", &ProducerOptions{Partitioner: ManualPartitioner})
	for range 3 {
		if _, err := p.Send(context.Background(), Record{Partition: 2, Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l2.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}

	info, err := l1.DescribeTopic("r")
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions[0].StartOffset == 0 || info.Partitions[0].NextOffset != n || info.Partitions[2].NextOffset != 3 {
		t.Fatalf("DescribeTopic: %+v; want partition 0 cut by retention and ending at %d, partition 2 ending at 3", info.Partitions, n)
	}
	for _, pi := range info.Partitions {
		start, next, err := l1.PartitionOffsets("r", pi.Partition)
		if err != nil || start != pi.StartOffset || next != pi.NextOffset {
			t.Errorf("PartitionOffsets(%d) = %d, %d, %v; DescribeTopic says %d, %d", pi.Partition, start, next, err, pi.StartOffset, pi.NextOffset)
		}
	}
	if cfg, err := l1.TopicConfig("r"); err != nil || cfg != info.Config {
		t.Errorf("TopicConfig = %+v, %v; DescribeTopic says %+v", cfg, err, info.Config)
	}
	if id, err := l1.TopicID("r"); err != nil || id == "" || id != info.ID {
		t.Errorf("TopicID = %q, %v; DescribeTopic says %q", id, err, info.ID)
	}
	if cfg, id, err := l1.TopicConfigAndID("r"); err != nil || cfg != info.Config || id != info.ID {
		t.Errorf("TopicConfigAndID = %+v, %q, %v; DescribeTopic says %+v, %q", cfg, id, err, info.Config, info.ID)
	}

	if err := l2.AlterTopic("r", func(c *TopicConfig) { c.RetentionAge = time.Hour }); err != nil {
		t.Fatal(err)
	}
	if cfg, err := l1.TopicConfig("r"); err != nil || cfg.RetentionAge != time.Hour {
		t.Errorf("TopicConfig after another Log's AlterTopic: %+v, %v", cfg, err)
	}

	for _, part := range []int{-1, 3} {
		if _, _, err := l1.PartitionOffsets("r", part); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("PartitionOffsets(%d) of 3 partitions: %v, want ErrInvalidArgument", part, err)
		}
	}
	if _, err := l1.TopicConfig("nope"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("TopicConfig of no topic: %v, want ErrTopicNotFound", err)
	}
	if _, _, err := l1.TopicConfigAndID("nope"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("TopicConfigAndID of no topic: %v, want ErrTopicNotFound", err)
	}
	if _, _, err := l1.PartitionOffsets("nope", 0); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("PartitionOffsets of no topic: %v, want ErrTopicNotFound", err)
	}
	if _, err := l1.TopicConfig("../r"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("TopicConfig(../r): %v, want ErrInvalidName", err)
	}

	// Deleted and created anew with fewer partitions by the other Log:
	// the first Log's handle, with 3, is stale, and the new topic is read.
	if err := l2.DeleteTopic("r"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l2, "r", TopicConfig{Partitions: 1})
	if cfg, id, err := l1.TopicConfigAndID("r"); err != nil || cfg.Partitions != 1 || id == "" || id == info.ID {
		t.Errorf("TopicConfigAndID of the topic made anew: %+v, %q, %v; want 1 partition and an ID other than %q", cfg, id, err, info.ID)
	}
	if _, _, err := l1.PartitionOffsets("r", 2); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("PartitionOffsets(2) of the topic made anew with 1 partition: %v, want ErrInvalidArgument", err)
	}
	if start, next, err := l1.PartitionOffsets("r", 0); err != nil || start != 0 || next != 0 {
		t.Errorf("PartitionOffsets of the topic made anew: %d, %d, %v; want 0, 0", start, next, err)
	}
	if cfg, err := l1.TopicConfig("r"); err != nil || cfg.Partitions != 1 {
		t.Errorf("TopicConfig of the topic made anew: %+v, %v", cfg, err)
	}
	if id, err := l1.TopicID("r"); err != nil || id == info.ID {
		t.Errorf("TopicID of the topic made anew: %q, %v; the first one's was %q", id, err, info.ID)
	}
	if err := l2.DeleteTopic("r"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l1.PartitionOffsets("r", 0); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("PartitionOffsets of a deleted topic: %v, want ErrTopicNotFound", err)
	}
	if _, err := l1.TopicConfig("r"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("TopicConfig of a deleted topic: %v, want ErrTopicNotFound", err)
	}
	if _, err := l1.TopicID("r"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("TopicID of a deleted topic: %v, want ErrTopicNotFound", err)
	}

	l1.Close()
	if _, err := l1.TopicConfig("r"); !errors.Is(err, ErrClosed) {
		t.Errorf("TopicConfig after Close: %v, want ErrClosed", err)
	}
	if _, _, err := l1.PartitionOffsets("r", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("PartitionOffsets after Close: %v, want ErrClosed", err)
	}
}
