package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// Poll never returns records together with an error: an application that
// drops the batch at an error, as Go code does (if err != nil { return
// err }), would have those records committed unprocessed by auto-commit at
// Close. The error comes at the next Poll, as Kafka's Java consumer
// defers a partition's error behind records already fetched.
func TestPollErrorComesAlone(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "jobs", &ProducerOptions{Partitioner: ManualPartitioner})
	const n = 10
	for part := range 2 {
		for range n {
			if _, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("job")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Partition 1 starts with a gap: its first record damaged, and
	// salvaged as lost. A consumer that stops at gaps gets a *GapError
	// there, after partition 0's records in the same look.
	flipByte(t, segmentPath(filepath.Join(dir, "topics", "jobs", "1"), 0, logExt), 20)
	if _, err := l.Repair(context.Background(), "jobs", &RepairOptions{Salvage: true}); err != nil {
		t.Fatal(err)
	}

	for _, poll := range []struct {
		name string
		poll func(*Consumer) ([]Record, error)
	}{
		{"Poll", func(c *Consumer) ([]Record, error) { return c.Poll(context.Background()) }},
		{"TryPoll", (*Consumer).TryPoll},
	} {
		t.Run(poll.name, func(t *testing.T) {
			group := "workers-" + poll.name
			c := mustConsumer(t, l, "jobs", &ConsumerOptions{Group: group, Start: Earliest, StopAtGaps: true})
			processed := map[int]int64{}
			var err error
			for err == nil {
				var recs []Record
				recs, err = poll.poll(c)
				if err != nil && len(recs) > 0 {
					t.Errorf("%d records returned with %v", len(recs), err)
				}
				if err != nil {
					break // the batch with it is dropped
				}
				for _, r := range recs {
					processed[r.Partition] = r.Offset + 1
				}
			}
			if ge := (*GapError)(nil); !errors.As(err, &ge) || ge.Partition != 1 {
				t.Fatalf("the loop ended with %v, want the *GapError of partition 1", err)
			}
			if err := c.Close(); err != nil { // commits what was handed over
				t.Fatal(err)
			}
			info, err := l.DescribeGroup(group)
			if err != nil {
				t.Fatal(err)
			}
			for _, gp := range info.Topics[0].Partitions {
				if gp.Committed > processed[gp.Partition] {
					t.Errorf("partition %d: committed %d, but only %d records were processed", gp.Partition, gp.Committed, processed[gp.Partition])
				}
			}
			if processed[0] != n {
				t.Errorf("partition 0: %d records processed, want %d", processed[0], n)
			}
		})
	}
}
