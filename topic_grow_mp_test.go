package runnel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

func init() {
	childMains["growworker"] = growWorkerMain
}

// growWorkerMain is a member of group "w" on topic "q" of $RUNNEL_GROW_DIR
// that prints "ready" once it joined, then "r <partition> <offset>" for
// each record it reads, committing after each poll; it leaves the group
// cleanly once its stdin closes.
func growWorkerMain() int {
	fail := func(err error) int { return mpFail("growworker", err) }
	l, err := Open(os.Getenv("RUNNEL_GROW_DIR"), mpOptions(Options{}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	c, err := l.Consumer("q", &ConsumerOptions{Group: "w"})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println("ready")
	for ctx.Err() == nil {
		recs, err := c.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			return fail(err)
		}
		var out []byte
		for _, r := range recs {
			out = fmt.Appendf(out, "r %d %d\n", r.Partition, r.Offset)
		}
		os.Stdout.Write(out)
		if err := c.Commit(context.Background()); err != nil {
			return fail(err)
		}
	}
	if err := c.Close(); err != nil {
		return fail(err)
	}
	return 0
}

// TestAlterTopicGrowsGroupOfProcesses: two worker processes share a topic
// of one partition in a group; the topic grows to 4 while they consume.
// Both keep consuming, each ends up with two partitions, and every record,
// of the old partition and of the new ones, is read exactly once by the
// group.
func TestAlterTopicGrowsGroupOfProcesses(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "q", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "q", &ProducerOptions{Partitioner: ManualPartitioner})

	type read struct{ part, offset int }
	var mu sync.Mutex
	seen := map[read]int{}
	byWorker := [2]map[read]bool{{}, {}}
	var stdins []io.WriteCloser
	var waits []func() error
	for w := range 2 {
		cmd := mpChild("growworker", "RUNNEL_GROW_DIR="+dir)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stdins, waits = append(stdins, in), append(waits, cmd.Wait)
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("worker %d: %q, want ready", w, sc.Text())
		}
		go func() {
			for sc.Scan() {
				var r read
				if _, err := fmt.Sscanf(sc.Text(), "r %d %d", &r.part, &r.offset); err != nil {
					t.Errorf("worker %d: %q", w, sc.Text())
					continue
				}
				mu.Lock()
				seen[r]++
				byWorker[w][r] = true
				mu.Unlock()
			}
		}()
	}
	defer func() {
		for _, in := range stdins {
			in.Close()
		}
		for w, wait := range waits {
			if err := wait(); err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
	}()

	sent := map[read]bool{}
	send := func(part, n int) {
		for range n {
			pos := sendToPart(t, p, part, "job")
			sent[read{pos.Partition, int(pos.Offset)}] = true
		}
	}
	waitRead := func(what string) {
		deadline := time.Now().Add(patience)
		for {
			mu.Lock()
			done := len(seen) == len(sent)
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the workers read %d of %d records", what, len(seen), len(sent))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	send(0, 50)
	waitRead("before the growth")

	growTo(t, l, "q", 4)
	for round := range 5 {
		for part := range 4 {
			send(part, 20+round)
		}
	}
	waitRead("after the growth")
	// Both workers take a share of the new partitions.
	deadline := time.Now().Add(patience)
	for {
		desc, err := l.DescribeGroup("w")
		if err != nil {
			t.Fatal(err)
		}
		owners := map[int]int{}
		for _, gp := range desc.Topics[0].Partitions {
			owners[gp.Owner]++
		}
		if len(desc.Topics[0].Partitions) == 4 && len(owners) == 2 && owners[-1] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group's partitions after the growth: %+v", desc.Topics[0].Partitions)
		}
		time.Sleep(10 * time.Millisecond)
	}
	late := map[read]bool{}
	for part := range 4 {
		for range 10 {
			pos := sendToPart(t, p, part, "job")
			r := read{pos.Partition, int(pos.Offset)}
			sent[r], late[r] = true, true
		}
	}
	waitRead("once balanced")

	mu.Lock()
	defer mu.Unlock()
	for r, n := range seen {
		if n != 1 || !sent[r] {
			t.Errorf("partition %d offset %d read %d times (sent: %v)", r.part, r.offset, n, sent[r])
		}
	}
	// Each owns two partitions by then, so each reads some of the last.
	for w, reads := range byWorker {
		n := 0
		for r := range late {
			if reads[r] {
				n++
			}
		}
		if n == 0 {
			t.Errorf("worker %d read none of the records sent once the group was balanced", w)
		}
	}
}
