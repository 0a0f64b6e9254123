package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func init() {
	childMains["topic-grow-die"] = topicGrowDieMain
}

// growTopic is AlterTopic adding partitions up to n, failing the test on
// an error.
func growTo(t testing.TB, l *Log, name string, n int) {
	t.Helper()
	if err := l.AlterTopic(name, func(c *TopicConfig) { c.Partitions = n }); err != nil {
		t.Fatalf("AlterTopic to %d partitions: %v", n, err)
	}
}

// sendToPart sends value to partition p of the producer's topic.
func sendToPart(t testing.TB, p *Producer, part int, value string) Position {
	t.Helper()
	pos, err := p.Send(context.Background(), Record{Partition: part, Value: []byte(value)})
	if err != nil {
		t.Fatalf("send to partition %d: %v", part, err)
	}
	return pos
}

// TestAlterTopicAddsPartitions: a topic grows from 1 to 4 partitions;
// the producer and the consumer of every partition made before see the
// new ones at once, the old records stay, and a shrink is refused.
func TestAlterTopicAddsPartitions(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})
	c := mustConsumer(t, l, "q", &ConsumerOptions{Start: Latest})
	sendToPart(t, p, 0, "before")
	if _, err := p.Send(context.Background(), Record{Partition: 3, Value: []byte("x")}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("send to partition 3 of 1: %v, want ErrInvalidArgument", err)
	}

	growTo(t, l, "q", 4)
	if got := sendToPart(t, p, 3, "new"); got != (Position{Partition: 3, Offset: 0}) {
		t.Errorf("the first record of partition 3 at %+v", got)
	}
	recs := pollUntil(t, c, 2, patience)
	got := map[int]string{}
	for _, r := range recs {
		got[r.Partition] = string(r.Value)
	}
	if diff := cmp.Diff(map[int]string{0: "before", 3: "new"}, got); diff != "" {
		t.Errorf("the consumer made before the growth read (-want +got):\n%s", diff)
	}
	info, err := l.DescribeTopic("q")
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Partitions != 4 || len(info.Partitions) != 4 || info.Partitions[0].NextOffset != 1 {
		t.Errorf("DescribeTopic after the growth: %+v", info)
	}

	err = l.AlterTopic("q", func(c *TopicConfig) { c.Partitions = 2 })
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "never shrink") {
		t.Errorf("shrinking to 2: %v, want ErrInvalidArgument saying it never shrinks", err)
	}
	if cfg, err := l.TopicConfig("q"); err != nil || cfg.Partitions != 4 {
		t.Errorf("after the refused shrink: %+v, %v", cfg, err)
	}
}

// TestAlterTopicAddsPartitionsElsewhere: another Log (as another process
// would) grows the topic. This Log's producer finds a partition past the
// ones it knew at once, its consumer of every partition reads the new
// ones once the retention check has looked at the topic, and a new
// consumer or DescribeTopic sees them at once.
func TestAlterTopicAddsPartitionsElsewhere(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	other := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})
	c := mustConsumer(t, l, "q", nil)
	sendToPart(t, p, 1, "old")
	if recs := pollUntil(t, c, 1, patience); string(recs[0].Value) != "old" {
		t.Fatalf("read %q", recs[0].Value)
	}

	growTo(t, other, "q", 3)
	sendToPart(t, p, 2, "new") // past what l knew: looked up, not refused
	if _, err := p.SendBatch(context.Background(), 2, []Record{{Value: []byte("batch")}}); err != nil {
		t.Fatalf("SendBatch to the new partition: %v", err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := pollUntil(t, c, 2, patience)
	for _, r := range recs {
		if r.Partition != 2 {
			t.Errorf("read %+v, want partition 2's records", r)
		}
	}
	info, err := l.DescribeTopic("q")
	if err != nil || len(info.Partitions) != 3 || info.Partitions[2].NextOffset != 2 {
		t.Errorf("DescribeTopic: %+v, %v", info, err)
	}
	if start, next, err := other.PartitionOffsets("q", 2); err != nil || start != 0 || next != 2 {
		t.Errorf("PartitionOffsets of the new partition: %d, %d, %v", start, next, err)
	}
	growTo(t, other, "q", 5)
	if _, next, err := l.PartitionOffsets("q", 4); err != nil || next != 0 {
		t.Errorf("PartitionOffsets of a partition added elsewhere: %d, %v", next, err)
	}
	c2 := mustConsumer(t, l, "q", &ConsumerOptions{Partitions: []int{3}})
	c2.Close()
}

// TestAlterTopicGrowthUnderLoad grows a topic while producers send to
// every partition they know, with keys and without, and a consumer of
// every partition reads: nothing is lost, each record is read once (and
// under -race, the handles' partitions are read and grown without a race).
func TestAlterTopicGrowthUnderLoad(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 1})
	c := mustConsumer(t, l, "q", nil)
	const senders, each = 4, 200
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := mustProducer(t, l, "q", nil)
			for i := range each {
				rec := Record{Value: fmt.Appendf(nil, "%d/%d", s, i)}
				if s%2 == 0 {
					rec.Key = rec.Value
				}
				if _, err := p.Send(context.Background(), rec); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	for n := 2; n <= 6; n++ {
		growTo(t, l, "q", n)
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range pollUntil(t, c, senders*each, patience) {
		seen[string(r.Value)]++
	}
	for s := range senders {
		for i := range each {
			if k := fmt.Sprintf("%d/%d", s, i); seen[k] != 1 {
				t.Errorf("record %s read %d times", k, seen[k])
			}
		}
	}
}

// topicGrowDieMain grows topic $RUNNEL_ADMIN_TOPIC of the log at
// $RUNNEL_ADMIN_DIR to 4 partitions and is killed (SIGKILL, by itself)
// once the new partition directories exist, before topic.json names them.
func topicGrowDieMain() int {
	l, err := Open(os.Getenv("RUNNEL_ADMIN_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("topic grow die", err)
	}
	testHookAdmin = func(point, name string) {
		if point == hookGrowDirs {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	err = l.AlterTopic(os.Getenv("RUNNEL_ADMIN_TOPIC"), func(c *TopicConfig) { c.Partitions = 4 })
	return mpFail("topic grow die", fmt.Errorf("AlterTopic returned %v instead of dying", err))
}

// TestAlterTopicGrowthAfterCrash kills a process in the middle of a
// growth, after the new directories and before topic.json: the topic keeps
// its partition count and records, Verify notes the directories, and a
// retry grows the topic.
func TestAlterTopicGrowthAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "x", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "x", &ProducerOptions{Partitioner: ManualPartitioner})
	sendToPart(t, p, 0, "kept")
	cmd := mpChild("topic-grow-die", "RUNNEL_ADMIN_DIR="+dir, "RUNNEL_ADMIN_TOPIC=x")
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "x", "3")); err != nil {
		t.Fatalf("the dead growth's partition directory: %v", err)
	}
	if cfg, err := l.TopicConfig("x"); err != nil || cfg.Partitions != 1 {
		t.Fatalf("after the dead growth: %+v, %v; want 1 partition", cfg, err)
	}
	if _, err := p.Send(context.Background(), Record{Partition: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("send to partition 1 after the dead growth: %v, want ErrInvalidArgument", err)
	}
	rep, err := l.Verify(context.Background(), "x", nil)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "[1 2 3] past its 1 partitions") }) {
		t.Errorf("Verify's notes %q name no leftover directories", rep.Notes)
	}

	growTo(t, l, "x", 3)
	sendToPart(t, p, 2, "new")
	c := mustConsumer(t, l, "x", nil)
	got := map[int]string{}
	for _, r := range pollUntil(t, c, 2, patience) {
		got[r.Partition] = string(r.Value)
	}
	if diff := cmp.Diff(map[int]string{0: "kept", 2: "new"}, got); diff != "" {
		t.Errorf("after the retry (-want +got):\n%s", diff)
	}
	checkNoAdminDebris(t, dir)
}

// TestAlterTopicGrowthRefusedWithGroups: a topic a group has offsets for
// does not grow (this version's groups keep the partition count their
// offsets file was made for); one without grows, and a group that joins
// afterwards, through a Log that loaded the topic before, covers every
// partition.
func TestAlterTopicGrowthRefusedWithGroups(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	other := openTest(t, dir, nil)
	mustCreate(t, l, "used", TopicConfig{Partitions: 1})
	mustConsumer(t, l, "used", &ConsumerOptions{Group: "g"}).Close()
	err := l.AlterTopic("used", func(c *TopicConfig) { c.Partitions = 2 })
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "group g") {
		t.Errorf("growing a topic with group offsets: %v, want ErrInvalidArgument naming the group", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "topics", "used")); len(entries) != 2 {
		t.Errorf("the refused growth left %d entries in the topic's directory", len(entries))
	}

	mustCreate(t, l, "free", TopicConfig{Partitions: 1})
	mustProducer(t, other, "free", nil).Close() // other loads the topic at 1 partition
	growTo(t, l, "free", 3)
	c := mustConsumer(t, other, "free", &ConsumerOptions{Group: "g"})
	p := mustProducer(t, l, "free", &ProducerOptions{Partitioner: ManualPartitioner})
	sendToPart(t, p, 2, "new")
	if recs := pollUntil(t, c, 1, patience); recs[0].Partition != 2 {
		t.Errorf("the group read %+v", recs[0])
	}
	if ids := c.Partitions(); len(ids) != 3 {
		t.Errorf("the member owns %v, want all 3", ids)
	}
}
