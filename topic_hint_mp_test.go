package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func init() {
	childMains["growhint"] = growHintMain
}

// growHintMain grows topic "q" of $RUNNEL_GROW_DIR to 4 partitions and
// sends "new" to partition 3.
func growHintMain() int {
	fail := func(err error) int { return mpFail("growhint", err) }
	l, err := Open(os.Getenv("RUNNEL_GROW_DIR"), mpOptions(Options{RetentionInterval: -1}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	if err := l.AlterTopic("q", func(c *TopicConfig) { c.Partitions = 4 }); err != nil {
		return fail(err)
	}
	p, err := l.Producer("q", &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		return fail(err)
	}
	if _, err := p.Send(context.Background(), Record{Partition: 3, Value: []byte("new")}); err != nil {
		return fail(err)
	}
	return 0
}

// TestGrowthSeenByOtherProcess: another process grows the topic from 2
// partitions to 4 while this one has a Consumer of every partition asleep
// in Poll and a key-hash Producer, and no retention check that would read
// topic.json: the consumer reads the record the other process sent to a
// new partition, and the producer's keys go to partition xxhash(key) mod
// 4 at once.
func TestGrowthSeenByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	mustCreate(t, l, "q", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "q", nil)
	c := mustConsumer(t, l, "q", &ConsumerOptions{Start: Earliest})
	meta, err := openMeta(filepath.Join(dir, "topics", "q", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	done := pollAsync(ctx, c)
	waitFor(t, patience, "Poll to fall asleep", func() bool { return meta.sleeping.count().Load() > 0 })
	if err := mpChild("growhint", "RUNNEL_GROW_DIR="+dir).Run(); err != nil {
		t.Fatalf("growing child: %v", err)
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("Poll of a consumer of every partition, asleep while another process grew the topic and sent to a new partition: %v (no record in %v)", got.err, patience)
	}
	if len(got.recs) != 1 || got.recs[0].Partition != 3 || string(got.recs[0].Value) != "new" {
		t.Errorf("Poll: %+v, want \"new\" in partition 3", got.recs)
	}

	spread := map[int]int{}
	for i := range 64 {
		key := fmt.Appendf(nil, "key-%d", i)
		pos, err := p.Send(context.Background(), Record{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if want := int(xxhash.Sum64(key) % 4); pos.Partition != want {
			t.Fatalf("key %s went to partition %d, want %d of the 4 another process made", key, pos.Partition, want)
		}
		spread[pos.Partition]++
	}
	if len(spread) != 4 {
		t.Errorf("64 keys went to partitions %v, want all 4", spread)
	}
}
