package runnel

import (
	"bytes"
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
// ones without waiting for a retention check, and a new consumer or
// DescribeTopic sees them at once.
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
// $RUNNEL_ADMIN_DIR to 4 partitions and is killed (SIGKILL, by itself) at
// admin hook $RUNNEL_GROW_HOOK, before topic.json names the partitions.
func topicGrowDieMain() int {
	l, err := Open(os.Getenv("RUNNEL_ADMIN_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("topic grow die", err)
	}
	testHookAdmin = func(point, name string) {
		if point == os.Getenv("RUNNEL_GROW_HOOK") {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	err = l.AlterTopic(os.Getenv("RUNNEL_ADMIN_TOPIC"), func(c *TopicConfig) { c.Partitions = 4 })
	return mpFail("topic grow die", fmt.Errorf("AlterTopic returned %v instead of dying", err))
}

// TestAlterTopicGrowthAfterCrash kills a process in the middle of a
// growth of a topic a group uses, once the new directories exist and once
// the group's offsets file is grown too, before topic.json names them:
// the topic keeps its partition count and records, the group its member
// and commits, Verify notes the directories and finds nothing wrong, and
// a retry grows the topic.
func TestAlterTopicGrowthAfterCrash(t *testing.T) {
	for _, hook := range []string{hookGrowDirs, hookGrowOffsets} {
		t.Run(strings.ReplaceAll(hook, " ", "-"), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, nil)
			mustCreate(t, l, "x", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "x", &ProducerOptions{Partitioner: ManualPartitioner})
			sendToPart(t, p, 0, "kept")
			c := mustConsumer(t, l, "x", &ConsumerOptions{Group: "g"})
			pollUntil(t, c, 1, patience)
			if err := c.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			cmd := mpChild("topic-grow-die", "RUNNEL_ADMIN_DIR="+dir, "RUNNEL_ADMIN_TOPIC=x", "RUNNEL_GROW_HOOK="+hook)
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
			sendToPart(t, p, 0, "after")
			if recs := pollUntil(t, c, 1, patience); string(recs[0].Value) != "after" {
				t.Errorf("the member read %+v", recs[0])
			}
			if err := c.Commit(context.Background()); err != nil {
				t.Errorf("commit after the dead growth: %v", err)
			}
			rep, err := l.Verify(context.Background(), "", nil)
			if err != nil || !rep.OK() {
				t.Fatalf("Verify: %+v, %v", rep.Problems, err)
			}
			if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "[1 2 3] past its 1 partitions") }) {
				t.Errorf("Verify's notes %q name no leftover directories", rep.Notes)
			}
			// A backup's copy of the group fits the topic's one partition.
			dest := filepath.Join(t.TempDir(), "copy")
			if _, err := l.Backup(context.Background(), dest, nil); err != nil {
				t.Fatal(err)
			}
			restored := openTest(t, dest, nil)
			if rep, err := restored.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
				t.Errorf("Verify of the backup: %+v, %v", rep.Problems, err)
			}
			if desc, err := restored.DescribeGroup("g"); err != nil || len(desc.Topics[0].Partitions) != 1 || desc.Topics[0].Partitions[0].Committed != 2 {
				t.Errorf("the backup's group: %+v, %v", desc, err)
			}

			growTo(t, l, "x", 3)
			sendToPart(t, p, 2, "new")
			if recs := pollUntil(t, c, 1, patience); recs[0].Partition != 2 || string(recs[0].Value) != "new" {
				t.Errorf("after the retry, the member read %+v", recs[0])
			}
			c2 := mustConsumer(t, l, "x", nil)
			got := map[int]string{}
			for _, r := range pollUntil(t, c2, 3, patience) {
				got[r.Partition] += string(r.Value)
			}
			if diff := cmp.Diff(map[int]string{0: "keptafter", 2: "new"}, got); diff != "" {
				t.Errorf("after the retry (-want +got):\n%s", diff)
			}
			desc, err := l.DescribeGroup("g")
			if err != nil || len(desc.Topics[0].Partitions) != 3 || desc.Topics[0].Partitions[0].Committed != 2 {
				t.Errorf("DescribeGroup after the retry: %+v, %v", desc, err)
			}
			checkNoAdminDebris(t, dir)
		})
	}
}

// TestAlterTopicGrowsGroups: a group on a topic of 1 partition, whose
// member lives in another Log (as in another process), and a group that
// joins afterwards through a Log that loaded the topic before the growth:
// both cover every partition once the topic has 3, keep their commits,
// and their offsets files check out.
func TestAlterTopicGrowsGroups(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	other := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})
	sendToPart(t, p, 0, "old")
	c := mustConsumer(t, other, "q", &ConsumerOptions{Group: "g"})
	if recs := pollUntil(t, c, 1, patience); string(recs[0].Value) != "old" {
		t.Fatalf("read %+v", recs[0])
	}
	if err := c.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustProducer(t, other, "q", nil).Close() // other's handle is loaded

	growTo(t, l, "q", 3)
	sendToPart(t, p, 2, "new")
	if recs := pollUntil(t, c, 1, patience); recs[0].Partition != 2 || string(recs[0].Value) != "new" {
		t.Errorf("the member made before the growth read %+v", recs[0])
	}
	if ids := c.Partitions(); len(ids) != 3 {
		t.Errorf("the member owns %v, want all 3", ids)
	}
	c2 := mustConsumer(t, other, "q", &ConsumerOptions{Group: "h"})
	if recs := pollUntil(t, c2, 2, patience); len(recs) != 2 {
		t.Errorf("a group made after the growth read %+v", recs)
	}
	desc, err := l.DescribeGroup("g")
	if err != nil || len(desc.Topics) != 1 || len(desc.Topics[0].Partitions) != 3 || desc.Topics[0].Partitions[0].Committed != 1 {
		t.Errorf("DescribeGroup: %+v, %v", desc, err)
	}
	if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep.Problems, err)
	}
}

// TestGroupOffsetsGrowthTorn: whatever a crash leaves of a growth's writes
// to an offsets file (the growth slot torn to any prefix, garbage past
// the old end), every committed offset reads as before, the file fits the
// topic at its old count and is not corrupt, and the next growth works.
func TestGroupOffsetsGrowthTorn(t *testing.T) {
	dir := t.TempDir()
	off, err := openOffsets(dir, "g", "t", 2, "id1", true)
	if err != nil {
		t.Fatal(err)
	}
	st := commitState{offset: noCommit}
	if err := off.writeCommit(1, &st, 42, 1); err != nil {
		t.Fatal(err)
	}
	if err := off.grow(3, "id1"); err != nil {
		t.Fatal(err)
	}
	off.close()
	path := offsetsPath(dir, "g", "t")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second growth, to 5, torn: slot B (the one it writes) holds a
	// prefix of its new content over the old zeros, and the blocks past
	// the old end are garbage.
	off, err = openOffsets(dir, "g", "t", 3, "id1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.grow(5, "id1"); err != nil {
		t.Fatal(err)
	}
	off.close()
	grown, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	slotB := growSlotOff + growSlotSize
	for cut := 0; cut < growSlotSize; cut += 3 {
		torn := slices.Clone(good)
		copy(torn[slotB:slotB+cut], grown[slotB:])
		if bytes.Equal(torn[slotB:slotB+growSlotSize], grown[slotB:slotB+growSlotSize]) {
			// The bytes not written already held what the write would
			// have put there (the checksum's last byte is 0 one time in
			// 256, the slot holding the time): the write is whole, and
			// its blocks, synced before it, would be too.
			continue
		}
		torn = append(torn, bytes.Repeat([]byte{0xa5}, int(blockPos(5)-blockPos(3)))...)
		if err := os.WriteFile(path, torn, 0o644); err != nil {
			t.Fatal(err)
		}
		off, err := openOffsets(dir, "g", "t", 3, "id1", false)
		if err != nil {
			t.Fatalf("cut %d: open at the old count: %v", cut, err)
		}
		if covers, err := off.covers(); err != nil || covers != 3 {
			t.Errorf("cut %d: the file covers %d, %v; want 3", cut, covers, err)
		}
		// Partition 2, added by the whole growth to 3, starts at 0.
		for p, want := range []int64{noCommit, 42, 0} {
			if got, err := off.readCommit(p); err != nil || got.offset != want {
				t.Errorf("cut %d: partition %d's commit %+v, %v; want %d", cut, p, got, err, want)
			}
		}
		if err := off.grow(5, "id1"); err != nil {
			t.Errorf("cut %d: growing again: %v", cut, err)
		}
		off.close()
		if _, err := openOffsets(dir, "g", "t", 5, "id1", false); err != nil {
			t.Errorf("cut %d: open at the new count: %v", cut, err)
		}
	}
}

// TestGroupOffsetsGrowthFits: the checks that tell a grown offsets file
// from one left by a topic deleted and created again.
func TestGroupOffsetsGrowthFits(t *testing.T) {
	dir := t.TempDir()
	off, err := openOffsets(dir, "g", "t", 2, "id1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.grow(4, "id1"); err != nil {
		t.Fatal(err)
	}
	off.close()
	cases := []struct {
		n   int
		id  string
		bad bool
	}{
		{2, "id1", false}, // grown, topic.json not yet written
		{3, "id1", false},
		{4, "id1", false},
		{5, "id1", true}, // more than the file covers
		{1, "id1", true}, // fewer than it was made for
		{4, "id2", true}, // another topic of the name
		{4, "", true},    // one without an ID
	}
	for _, tc := range cases {
		off, err := openOffsets(dir, "g", "t", tc.n, tc.id, false)
		if bad := errors.As(err, new(*CorruptError)); bad != tc.bad || !bad && err != nil {
			t.Errorf("%d partitions, ID %q: %v, want corrupt %v", tc.n, tc.id, err, tc.bad)
		}
		if err == nil {
			off.close()
		}
	}
	if _, err := openOffsets(dir, "h", "t", 2, "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := openOffsets(dir, "h", "t", 3, "", false); !errors.As(err, new(*CorruptError)) || !strings.Contains(err.Error(), "deleted and created again") {
		t.Errorf("a file never grown, for another count: %v", err)
	}
}

// TestGroupOffsetsGrownByOlderRunnel: a file an older runnel grew, its new
// blocks with no commit, stays as it is: it fits, a retried growth to the
// same count writes nothing, those partitions keep "none" (a member
// applies its Start there, as before), and a later growth starts only
// its own new partitions at 0.
func TestGroupOffsetsGrownByOlderRunnel(t *testing.T) {
	dir := t.TempDir()
	off, err := openOffsets(dir, "g", "t", 1, "id1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.grow(3, "id1"); err != nil {
		t.Fatal(err)
	}
	// What an older runnel wrote for partitions 1 and 2.
	old := make([]byte, blockPos(3)-blockPos(1))
	putInitialBlocks(old, 1, 3, commitState{offset: noCommit})
	if _, err := off.f.WriteAt(old, blockPos(1)); err != nil {
		t.Fatal(err)
	}
	if err := off.grow(3, "id1"); err != nil {
		t.Fatalf("growth retried: %v", err)
	}
	off.close()
	off, err = openOffsets(dir, "g", "t", 3, "id1", false)
	if err != nil {
		t.Fatalf("open at the grown count: %v", err)
	}
	if err := off.grow(5, "id1"); err != nil {
		t.Fatal(err)
	}
	for p, want := range []int64{noCommit, noCommit, noCommit, 0, 0} {
		if got, err := off.readCommit(p); err != nil || got.offset != want {
			t.Errorf("partition %d's commit %+v, %v; want %d", p, got, err, want)
		}
	}
	off.close()
}
