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

// TestGrowthSeenUnderFileBudget is TestGrowthSeenByOtherProcess with a
// budget of open files that holds two partitions, twelve topics in use,
// and partition 0 of the grown topic, whose partition.meta holds the
// published count, released: its consumer, asleep in Poll, reads the
// record another process sent to a new partition, a Send of this
// process to that partition succeeds once the other's AlterTopic returned,
// and keyed Sends racing the growth each land once, in a partition the
// topic has, and in xxhash(key) mod 4 once it returned.
func TestGrowthSeenUnderFileBudget(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: -1, MaxOpenFiles: minMaxOpenFiles})
	mustCreate(t, l, "q", TopicConfig{Partitions: 2})
	ctx := context.Background()
	manual := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})
	for id := range 2 {
		if _, err := manual.Send(ctx, Record{Partition: id, Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		name := fmt.Sprintf("other%d", i)
		mustCreate(t, l, name, TopicConfig{Partitions: 1})
		if _, err := mustProducer(t, l, name, nil).Send(ctx, Record{Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	c := mustConsumer(t, l, "q", &ConsumerOptions{Start: Latest})
	if recs, err := c.TryPoll(); err != nil || len(recs) != 0 {
		t.Fatalf("TryPoll at the end: %v, %v", recs, err)
	}
	releaseNow(t, l.topics["q"].parts()[0])
	meta, err := openMeta(filepath.Join(dir, "topics", "q", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()

	pctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	done := pollAsync(pctx, c)
	waitFor(t, patience, "Poll to fall asleep", func() bool { return meta.sleeping.count().Load() > 0 })
	keyed := mustProducer(t, l, "q", nil)
	grown := make(chan struct{})
	type raced struct {
		total int
		err   error
	}
	racing := make(chan raced, 1)
	go func() {
		// Until the growth returned, then 16 more, which must go to
		// xxhash(key) mod 4.
		after := -1
		for i := 0; ; i++ {
			select {
			case <-grown:
				after++
			default:
			}
			key := fmt.Appendf(nil, "race-%d", i)
			pos, err := keyed.Send(ctx, Record{Key: key})
			if err == nil && after >= 0 && pos.Partition != int(xxhash.Sum64(key)%4) {
				err = fmt.Errorf("key %s, sent once the growth returned, went to partition %d of 4", key, pos.Partition)
			}
			if err != nil {
				racing <- raced{err: err}
				return
			}
			if after == 15 {
				racing <- raced{total: i + 1}
				return
			}
		}
	}()
	if err := mpChild("growhint", "RUNNEL_GROW_DIR="+dir).Run(); err != nil {
		t.Fatalf("growing child: %v", err)
	}
	close(grown)
	race := <-racing
	if race.err != nil {
		t.Fatalf("keyed Send racing another process's growth: %v", race.err)
	}
	if _, err := manual.Send(ctx, Record{Partition: 3, Value: []byte("mine")}); err != nil {
		t.Errorf("Send to partition 3 after another process's AlterTopic returned: %v", err)
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("Poll of a consumer asleep while another process grew the topic: %v", got.err)
	}
	// The consumer reads every record sent since it began, once each, the
	// other process's in partition 3.
	want := race.total + 2
	var recs []Record
	for _, r := range got.recs {
		recs = append(recs, cloneRecord(r)) // valid until the next Poll
	}
	recs = append(recs, pollUntil(t, c, want-len(recs), patience)...)
	seen := map[string]int{}
	for _, r := range recs {
		id := string(r.Key)
		if r.Key == nil {
			id = string(r.Value)
		}
		seen[id]++
		if r.Partition >= 4 || id == "new" && r.Partition != 3 {
			t.Errorf("%s read from partition %d", id, r.Partition)
		}
	}
	if len(recs) != want || len(seen) != want || seen["new"] != 1 || seen["mine"] != 1 {
		t.Errorf("read %d records, %d different, want %d once each (\"new\" %d times, \"mine\" %d)", len(recs), len(seen), want, seen["new"], seen["mine"])
	}
}
