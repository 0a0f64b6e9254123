package runnel

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestGroupStartLatestReadsGrownPartition: a group whose member starts
// at Latest existed before the topic grew, so every record of a new
// partition is new to it: records sent there before the member takes the
// partition are read, not skipped. The group's commit there is 0 from the
// growth on (DescribeGroup, lag, a backup's copy), and Verify finds it
// sound.
func TestGroupStartLatestReadsGrownPartition(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})
	sendToPart(t, p, 0, "before the member")
	c := mustConsumer(t, l, "q", &ConsumerOptions{Group: "g", Start: Latest})
	if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("first poll at Latest: %d records, %v", len(recs), err)
	}

	growTo(t, l, "q", 2)
	// The member takes partition 1 at its next Poll, after these.
	sendToPart(t, p, 1, "early 1")
	sendToPart(t, p, 1, "early 2")
	desc, err := l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	if gp := desc.Topics[0].Partitions[1]; gp.Committed != 0 || gp.Lag != 2 || gp.CommittedAt.Before(time.Now().Add(-time.Hour)) {
		t.Errorf("DescribeGroup, partition 1 before the member took it: %+v; want committed 0 at the growth, lag 2", gp)
	}

	if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep.Problems, err)
	}
	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 || len(rep.Groups[0].Committed) != 2 || rep.Groups[0].Committed[1] != 0 {
		t.Errorf("Backup's groups: %+v; want partition 1 committed at 0", rep.Groups)
	}
	restored := openTest(t, dest, nil)
	if d, err := restored.DescribeGroup("g"); err != nil || d.Topics[0].Partitions[1].Committed != 0 {
		t.Errorf("the copy's group: %+v, %v", d, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var got []string
	for len(got) < 2 {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("a Start: Latest member, after reading %q of the 2 records sent to the new partition before it took it: %v", got, err)
		}
		for _, r := range recs {
			if r.Partition != 1 {
				t.Fatalf("read %+v, want partition 1's records", r)
			}
			got = append(got, string(r.Value))
		}
	}
	if got[0] != "early 1" || got[1] != "early 2" {
		t.Errorf("read %q", got)
	}
}
