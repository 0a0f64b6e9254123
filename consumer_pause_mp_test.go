package runnel

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A group member that paused its partitions keeps them: polling, it
// commits automatically and gives up its excess to a member that joins
// (another process), which never gets what it kept; a partition it gave
// up and takes back again is read, not paused; and resumed, the paused
// ones go on where they stopped.
func TestPausedMemberKeepsPartitions(t *testing.T) {
	slowAlone(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 4})
	p := mustProducer(t, l, "jobs", &ProducerOptions{Partitioner: ManualPartitioner})
	for part := range 4 {
		sendTo(t, p, part, 5)
	}
	a := mustConsumer(t, l, "jobs", &ConsumerOptions{Group: "g", MemberName: "a", Start: Earliest, AutoCommitInterval: 10 * time.Millisecond})
	var got []offsetKey
	pollWhile(t, a, &got, "every record", func() bool { return len(got) == 20 })
	if err := a.Pause(0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	committed := func(part int) int64 {
		info, err := l.DescribeGroup("g")
		if err != nil || len(info.Topics) != 1 {
			t.Fatalf("DescribeGroup: %+v, %v", info, err)
		}
		return info.Topics[0].Partitions[part].Committed
	}
	pollWhile(t, a, &got, "auto-commit of every partition while paused", func() bool {
		for part := range 4 {
			if committed(part) != 5 {
				return false
			}
		}
		return true
	})

	b := startMPMember(t, dir, "jobs", "g", "b")
	pollWhile(t, a, &got, "b to take its share", func() bool {
		return slices.Equal(a.Partitions(), []int{0, 1}) && slices.Equal(b.ownedNow(), []int{2, 3})
	})
	if diff := cmp.Diff([]int{0, 1}, a.Paused()); diff != "" {
		t.Errorf("Paused after giving up 2 and 3 (-want +got):\n%s", diff)
	}
	for part := range 4 {
		sendTo(t, p, part, 5)
	}
	pollWhile(t, a, &got, "b to read 2 and 3", func() bool { return len(b.records()) == 10 })
	if diff := cmp.Diff(append(offsetRun(2, 5, 10), offsetRun(3, 5, 10)...), sortedKeys(b.records())); diff != "" {
		t.Errorf("b's records (-want +got):\n%s", diff)
	}
	if len(got) != 20 {
		t.Errorf("a read %v while its partitions were paused", got[20:])
	}

	b.leave(t)
	pollWhile(t, a, &got, "a to take 2 and 3 back", func() bool { return len(a.Partitions()) == 4 })
	if diff := cmp.Diff([]int{0, 1}, a.Paused()); diff != "" {
		t.Errorf("Paused after taking 2 and 3 back (-want +got):\n%s", diff)
	}
	sendTo(t, p, 2, 1)
	sendTo(t, p, 3, 1)
	pollWhile(t, a, &got, "a to read 2 and 3 again", func() bool { return len(got) == 22 })
	if err := a.Resume(0, 1); err != nil {
		t.Fatal(err)
	}
	pollWhile(t, a, &got, "a to read 0 and 1 again", func() bool { return len(got) == 32 })
	for part, end := range []int64{10, 10, 11, 11} {
		want := offsetRun(part, 0, end)
		if part >= 2 {
			want = append(offsetRun(part, 0, 5), offsetKey{part, 10})
		}
		if diff := cmp.Diff(want, sortedKeys(ofPartitions(got, part))); diff != "" {
			t.Errorf("a's records of partition %d (-want +got):\n%s", part, diff)
		}
	}
}

// sortedKeys is ks in partition and offset order.
func sortedKeys(ks []offsetKey) []offsetKey {
	ks = slices.Clone(ks)
	slices.SortFunc(ks, func(x, y offsetKey) int {
		if x.Partition != y.Partition {
			return x.Partition - y.Partition
		}
		return int(x.Offset - y.Offset)
	})
	return ks
}
