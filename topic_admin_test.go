package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Concurrent topic admin: CreateTopic, DeleteTopic and AlterTopic of a few
// names from many goroutines, Logs and processes at once, among producers,
// consumers and DescribeTopic calls on the same names. Every call succeeds
// or says ErrTopicExists / ErrTopicNotFound; the successful creates and
// deletes of a name alternate (so the final state says how many of each
// there were); nothing is left behind but complete topics.

func init() {
	childMains["topic-admin-churn"] = topicAdminChurnMain
	childMains["topic-admin-die"] = topicAdminDieMain
}

var churnNames = []string{"a", "b", "c"}

// churnCounts is what one churn worker saw succeed, per name.
type churnCounts struct {
	creates, deletes map[string]int
	alters           int // AlterTopic calls on altTopic that succeeded
}

func newChurnCounts() *churnCounts {
	return &churnCounts{creates: map[string]int{}, deletes: map[string]int{}}
}

func (c *churnCounts) add(o *churnCounts) {
	for n, v := range o.creates {
		c.creates[n] += v
	}
	for n, v := range o.deletes {
		c.deletes[n] += v
	}
	c.alters += o.alters
}

// altTopic is the topic every churn worker alters, to check that no
// AlterTopic loses another's change: each adds one to RetentionBytes.
const altTopic = "alt"

// adminChurn makes ops random calls on churnNames through l, then alters
// altTopic alters times. It returns what succeeded, and a description of
// every call that failed with an error other than the two a racing admin
// call may cause.
func adminChurn(l *Log, seed uint64, ops, alters int) (*churnCounts, []string) {
	rng := rand.New(rand.NewPCG(seed, 11))
	counts := newChurnCounts()
	var bad []string
	check := func(op, name string, err error, allowed ...error) bool {
		if err == nil {
			return true
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return false
			}
		}
		bad = append(bad, fmt.Sprintf("%s(%s): %v", op, name, err))
		return false
	}
	ctx := context.Background()
	for range ops {
		name := churnNames[rng.IntN(len(churnNames))]
		switch rng.IntN(8) {
		case 0:
			parts := 1 + rng.IntN(3)
			if check("CreateTopic", name, l.CreateTopic(name, TopicConfig{Partitions: parts, SegmentBytes: minSegmentBytes}), ErrTopicExists) {
				counts.creates[name]++
			}
		case 1:
			if check("DeleteTopic", name, l.DeleteTopic(name), ErrTopicNotFound) {
				counts.deletes[name]++
			}
		case 2:
			err := l.AlterTopic(name, func(c *TopicConfig) { c.RetentionAge += 1 })
			check("AlterTopic", name, err, ErrTopicNotFound)
		case 3:
			info, err := l.DescribeTopic(name)
			if check("DescribeTopic", name, err, ErrTopicNotFound) && len(info.Partitions) != info.Config.Partitions {
				bad = append(bad, fmt.Sprintf("DescribeTopic(%s): %d partitions described, config says %d", name, len(info.Partitions), info.Config.Partitions))
			}
		case 4:
			_, err := l.Topics()
			check("Topics", "", err)
		case 5:
			p, err := l.Producer(name, nil)
			if !check("Producer", name, err, ErrTopicNotFound) {
				continue
			}
			for i := range 1 + rng.IntN(4) {
				_, err := p.Send(ctx, Record{Key: []byte{byte(i)}, Value: []byte("churn")})
				if !check("Send", name, err, ErrTopicNotFound) {
					break
				}
			}
			check("Producer.Close", name, p.Close())
		case 6:
			c, err := l.Consumer(name, nil)
			if !check("Consumer", name, err, ErrTopicNotFound) {
				continue
			}
			for range 1 + rng.IntN(3) {
				if _, err := c.TryPoll(); !check("TryPoll", name, err, ErrTopicNotFound) {
					break
				}
			}
			check("Consumer.Close", name, c.Close())
		case 7:
			c, err := l.Consumer(name, &ConsumerOptions{Group: "g"})
			if !check("Consumer(group)", name, err, ErrTopicNotFound) {
				continue
			}
			for range 1 + rng.IntN(3) {
				if _, err := c.TryPoll(); !check("TryPoll(group)", name, err, ErrTopicNotFound) {
					break
				}
			}
			check("Consumer(group).Close", name, c.Close(), ErrTopicNotFound)
		}
	}
	for range alters {
		if check("AlterTopic", altTopic, l.AlterTopic(altTopic, func(c *TopicConfig) { c.RetentionBytes++ })) {
			counts.alters++
		}
	}
	return counts, bad
}

// topicAdminChurnMain is one churn process:
//
//	RUNNEL_ADMIN_DIR     log directory
//	RUNNEL_ADMIN_SEED    random seed
//	RUNNEL_ADMIN_OPS     random calls to make
//	RUNNEL_ADMIN_ALTERS  AlterTopic calls on altTopic after them
//
// It prints "create <name> <n>", "delete <name> <n>" and "alters <n>" for
// what succeeded, and "bad <call>" for each call that failed otherwise.
func topicAdminChurnMain() int {
	env := func(k string) int { n, _ := strconv.Atoi(os.Getenv("RUNNEL_ADMIN_" + k)); return n }
	l, err := Open(os.Getenv("RUNNEL_ADMIN_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("topic admin churn", err)
	}
	counts, bad := adminChurn(l, uint64(env("SEED")), env("OPS"), env("ALTERS"))
	if err := l.Close(); err != nil {
		bad = append(bad, fmt.Sprintf("Close: %v", err))
	}
	for _, name := range churnNames {
		fmt.Printf("create %s %d\ndelete %s %d\n", name, counts.creates[name], name, counts.deletes[name])
	}
	fmt.Printf("alters %d\n", counts.alters)
	for _, b := range bad {
		fmt.Printf("bad %s\n", strings.ReplaceAll(b, "\n", " "))
	}
	return 0
}

// checkAdminSettled checks a log directory after the churn has ended:
// each name exists exactly when its successful creates outnumber its
// deletes (by one: they alternate), every topic is complete and readable,
// altTopic carries every alteration, and no lock, temporary or trash file
// is left.
func checkAdminSettled(t *testing.T, dir string, counts *churnCounts) {
	t.Helper()
	l := openTest(t, dir, nil)
	listed, err := l.Topics()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range churnNames {
		c, d := counts.creates[name], counts.deletes[name]
		_, err := os.Stat(filepath.Join(dir, "topics", name, topicFileName))
		exists := err == nil
		t.Logf("topic %s: %d creates, %d deletes succeeded; exists: %v", name, c, d, exists)
		if diff := c - d; diff != 0 && diff != 1 || exists != (diff == 1) {
			t.Errorf("topic %s: %d creates and %d deletes succeeded, and it exists: %v; creates and deletes did not alternate", name, c, d, exists)
		}
		if !exists {
			if _, err := os.Stat(filepath.Join(dir, "topics", name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("deleted topic %s left its directory: %v", name, err)
			}
			continue
		}
		want = append(want, name)
		info, err := l.DescribeTopic(name)
		if err != nil {
			t.Errorf("DescribeTopic(%s): %v", name, err)
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, "topics", name))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		wantEntries := []string{topicFileName}
		for p := range info.Config.Partitions {
			wantEntries = append(wantEntries, strconv.Itoa(p))
		}
		slices.Sort(wantEntries)
		if diff := cmp.Diff(wantEntries, got); diff != "" {
			t.Errorf("topic %s with %d partitions holds (-want +got):\n%s", name, info.Config.Partitions, diff)
		}
		// Still usable: one more record goes in and comes back.
		var before int64
		for _, pi := range info.Partitions {
			before += pi.NextOffset
		}
		p := mustProducer(t, l, name, nil)
		if _, err := p.Send(context.Background(), Record{Value: []byte("after the churn")}); err != nil {
			t.Errorf("Send to %s after the churn: %v", name, err)
		}
		if recs := readAvailable(t, l, name); int64(len(recs)) != before+1 {
			t.Errorf("topic %s: %d records readable, want %d", name, len(recs), before+1)
		}
	}
	want = append(want, altTopic)
	slices.Sort(want)
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("Topics (-want +got):\n%s", diff)
	}
	if info, err := l.DescribeTopic(altTopic); err != nil || info.Config.RetentionBytes != int64(counts.alters) {
		t.Errorf("%s: RetentionBytes %d, %v; %d AlterTopic calls added one each", altTopic, info.Config.RetentionBytes, err, counts.alters)
	}
	checkNoAdminDebris(t, dir)
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify: %v", p)
	}
}

// checkNoAdminDebris fails for every lock, temporary or trash file in a
// log directory: admin calls that returned leave none.
func checkNoAdminDebris(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasSuffix(name, topicLockSuffix), name == ".create.lock", name == ".alter.lock", strings.Contains(name, ".tmp-"),
			name == deleteIntentName && !d.IsDir():
			t.Errorf("left behind: %s", rel)
		case filepath.Dir(rel) == trashDirName && name != graveLockName:
			t.Errorf("left in the trash: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTopicAdminConcurrent churns topic admin from goroutines sharing two
// Logs of one directory. Run it with -race.
func TestTopicAdminConcurrent(t *testing.T) {
	dir := t.TempDir()
	logs := []*Log{openTest(t, dir, &Options{Durability: Buffered}), openTest(t, dir, &Options{Durability: Buffered})}
	mustCreate(t, logs[0], altTopic, TopicConfig{Partitions: 1})
	const workers = 8
	ops, alters := mpScale(300, 100, 60), mpScale(20, 10, 5)
	seed := uint64(rand.Int64())
	t.Logf("%d workers × %d calls, seed %d", workers, ops, seed)
	total := newChurnCounts()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			counts, bad := adminChurn(logs[w%len(logs)], seed+uint64(w), ops, alters)
			mu.Lock()
			defer mu.Unlock()
			total.add(counts)
			for _, b := range bad {
				t.Errorf("worker %d: %s", w, b)
			}
		})
	}
	wg.Wait()
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	checkAdminSettled(t, dir, total)
}

// TestTopicAdminMultiProcess is TestTopicAdminConcurrent with the churn in
// child processes, this one churning too.
func TestTopicAdminMultiProcess(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, altTopic, TopicConfig{Partitions: 1})
	const children = 3
	ops, alters := mpScale(200, 80, 40), mpScale(20, 10, 5)
	seed := uint64(rand.Int64())
	t.Logf("%d processes × %d calls, seed %d", children+1, ops, seed)
	total := newChurnCounts()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := range children {
		cmd := mpChild("topic-admin-churn", "RUNNEL_ADMIN_DIR="+dir,
			fmt.Sprint("RUNNEL_ADMIN_SEED=", seed+uint64(i)+1),
			fmt.Sprint("RUNNEL_ADMIN_OPS=", ops), fmt.Sprint("RUNNEL_ADMIN_ALTERS=", alters))
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	counts, bad := adminChurn(l, seed, ops, alters)
	total.add(counts)
	for _, b := range bad {
		t.Errorf("this process: %s", b)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(outs[i].String()), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && (f[0] == "create" || f[0] == "delete"):
				n, _ := strconv.Atoi(f[2])
				if f[0] == "create" {
					total.creates[f[1]] += n
				} else {
					total.deletes[f[1]] += n
				}
			case len(f) == 2 && f[0] == "alters":
				n, _ := strconv.Atoi(f[1])
				total.alters += n
			case len(f) > 0 && f[0] == "bad":
				t.Errorf("child %d: %s", i, strings.TrimPrefix(line, "bad "))
			default:
				t.Errorf("child %d said %q", i, line)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkAdminSettled(t, dir, total)
}

// pauseAdmin makes the admin calls on name stop at point until the
// returned release is called, and reports on reached when one got there
// and on busy when a call found the name's lock taken.
func pauseAdmin(t *testing.T, name, point string) (reached, busy <-chan struct{}, release func()) {
	r, b, gate := make(chan struct{}, 1), make(chan struct{}, 8), make(chan struct{})
	testHookAdmin = func(p, n string) {
		switch {
		case n != name:
		case p == point:
			r <- struct{}{}
			<-gate
		case p == hookLockBusy:
			b <- struct{}{}
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() {
		release()
		testHookAdmin = nil // the caller waited for every call it started
	})
	return r, b, release
}

// startWaiting runs call, an admin call on a name whose lock another call
// holds (stopped by pauseAdmin), and checks that it waits for the lock
// rather than return. The returned channel gets its result.
func startWaiting(t *testing.T, busy <-chan struct{}, what string, call func() error) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- call() }()
	select {
	case <-busy:
	case err := <-res:
		t.Fatalf("%s returned %v; it must wait for the call under way", what, err)
	}
	return res
}

// TestTopicAdminWaitsForCreate stops a CreateTopic after it made the
// partition directories and before topic.json, and makes admin calls on
// the name through another Log meanwhile: each waits for the create, then
// acts on the complete topic. No call deletes or alters a topic it did
// not see complete, and no second create slips in.
func TestTopicAdminWaitsForCreate(t *testing.T) {
	tests := []struct {
		name string
		call func(l *Log) error
		want error // the waiting call's result
		// after checks the topic once both calls returned.
		after func(t *testing.T, l *Log)
	}{
		{"delete", func(l *Log) error { return l.DeleteTopic("x") }, nil, func(t *testing.T, l *Log) {
			if _, err := l.DescribeTopic("x"); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("DescribeTopic after the delete: %v, want ErrTopicNotFound", err)
			}
		}},
		{"create", func(l *Log) error { return l.CreateTopic("x", TopicConfig{Partitions: 5}) }, ErrTopicExists, func(t *testing.T, l *Log) {
			if info, err := l.DescribeTopic("x"); err != nil || len(info.Partitions) != 3 {
				t.Errorf("DescribeTopic: %d partitions, %v; want the first create's 3", len(info.Partitions), err)
			}
		}},
		{"alter", func(l *Log) error {
			return l.AlterTopic("x", func(c *TopicConfig) { c.RetentionBytes = 12345 })
		}, nil, func(t *testing.T, l *Log) {
			if info, err := l.DescribeTopic("x"); err != nil || info.Config.RetentionBytes != 12345 || len(info.Partitions) != 3 {
				t.Errorf("DescribeTopic: %+v, %v; want 3 partitions and the alter's retention", info, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			creator, other := openTest(t, dir, nil), openTest(t, dir, nil)
			reached, busy, release := pauseAdmin(t, "x", hookCreateDirs)
			created := make(chan error, 1)
			go func() { created <- creator.CreateTopic("x", TopicConfig{Partitions: 3}) }()
			<-reached

			// Half made: the partition directories are there, the topic
			// is not.
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", "2")); err != nil {
				t.Fatalf("partition directory: %v", err)
			}
			if names, err := other.Topics(); err != nil || slices.Contains(names, "x") {
				t.Errorf("Topics while the create is unfinished: %v, %v", names, err)
			}
			if _, err := other.Producer("x", nil); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Producer while the create is unfinished: %v, want ErrTopicNotFound", err)
			}

			res := startWaiting(t, busy, tt.name+" during an unfinished create", func() error { return tt.call(other) })
			release()
			if err := <-created; err != nil {
				t.Fatalf("CreateTopic: %v", err)
			}
			if err := <-res; !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
			}
			tt.after(t, other)
			checkNoAdminDebris(t, dir)
		})
	}
}

// TestTopicAdminDeleteWhileCreating is the other order: a DeleteTopic stops
// after it marked the partitions deleted, and a CreateTopic of the same
// name through another Log waits for it, then creates the topic afresh.
func TestTopicAdminDeleteWhileCreating(t *testing.T) {
	dir := t.TempDir()
	deleter, creator := openTest(t, dir, nil), openTest(t, dir, nil)
	mustCreate(t, deleter, "x", TopicConfig{Partitions: 2})
	p := mustProducer(t, creator, "x", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	reached, busy, release := pauseAdmin(t, "x", hookDeleteMarked)
	deleted := make(chan error, 1)
	go func() { deleted <- deleter.DeleteTopic("x") }()
	<-reached
	if _, err := p.Send(context.Background(), Record{Value: []byte("too late")}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Send while the delete is under way: %v, want ErrTopicNotFound", err)
	}
	res := startWaiting(t, busy, "CreateTopic during a delete", func() error { return creator.CreateTopic("x", TopicConfig{Partitions: 1}) })
	release()
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if err := <-res; err != nil {
		t.Fatalf("CreateTopic after the delete: %v", err)
	}
	if info, err := creator.DescribeTopic("x"); err != nil || len(info.Partitions) != 1 || info.Partitions[0].NextOffset != 0 {
		t.Errorf("the new topic: %+v, %v; want one empty partition", info, err)
	}
	// The old producer's handle stays dead: the new topic is not its topic.
	if _, err := p.Send(context.Background(), Record{Value: []byte("stale")}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Send through the old topic's producer: %v, want ErrTopicNotFound", err)
	}
	checkNoAdminDebris(t, dir)
}

// TestTopicAlterSerialized stops an AlterTopic between reading the config
// and writing it back, and alters the topic through another Log
// meanwhile: the second waits, and neither change is lost.
func TestTopicAlterSerialized(t *testing.T) {
	dir := t.TempDir()
	l1, l2 := openTest(t, dir, nil), openTest(t, dir, nil)
	mustCreate(t, l1, "x", TopicConfig{Partitions: 1})
	for _, l := range []*Log{l1, l2} { // both hold a handle on the topic
		if _, err := l.DescribeTopic("x"); err != nil {
			t.Fatal(err)
		}
	}
	reached, busy, release := pauseAdmin(t, "x", hookAlterRead)
	first := make(chan error, 1)
	go func() { first <- l1.AlterTopic("x", func(c *TopicConfig) { c.RetentionBytes += 1 << 20 }) }()
	<-reached
	second := startWaiting(t, busy, "AlterTopic during another", func() error {
		return l2.AlterTopic("x", func(c *TopicConfig) { c.RetentionAge += time.Hour })
	})
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Log{l1, l2} {
		info, err := l.DescribeTopic("x")
		if err != nil || info.Config.RetentionBytes != 1<<20 || info.Config.RetentionAge != time.Hour {
			t.Errorf("DescribeTopic: %+v, %v; want both changes", info.Config, err)
		}
	}
	checkNoAdminDebris(t, dir)
}

// TestTopicDeleteDropsGroupOffsets: deleting a topic drops every group's
// offsets for it, as Kafka does, so that a topic created again under the
// name, with another partition count, starts afresh for the same group. A
// member that joins while the delete is under way gets ErrTopicNotFound
// and leaves no offsets file behind for the new topic to trip over.
func TestTopicDeleteDropsGroupOffsets(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "x", TopicConfig{Partitions: 3})
	p := mustProducer(t, l, "x", nil)
	for i := range 6 {
		if _, err := p.Send(context.Background(), Record{Key: []byte{byte(i)}, Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	c := mustConsumer(t, l, "x", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if recs := pollUntil(t, c, 6, patience); len(recs) != 6 {
		t.Fatalf("read %d records", len(recs))
	}
	if err := c.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if groups, err := l.ListGroups(); err != nil || !slices.Equal(groups, []string{"g"}) {
		t.Fatalf("ListGroups: %v, %v", groups, err)
	}

	// A member joins while the delete is under way, through a Log that
	// loaded the topic before (one that loads it now finds it marked
	// deleted).
	joiner := openTest(t, dir, nil)
	if _, err := joiner.DescribeTopic("x"); err != nil {
		t.Fatal(err)
	}
	reached, busy, release := pauseAdmin(t, "x", hookDeleteMarked)
	os.Remove(offsetsPath(dir, "g", "x")) // so that the joiner must create it
	deleted := make(chan error, 1)
	go func() { deleted <- l.DeleteTopic("x") }()
	<-reached
	joined := startWaiting(t, busy, "a group member's first join during a delete", func() error {
		c, err := joiner.Consumer("x", &ConsumerOptions{Group: "g"})
		if err == nil {
			c.Close()
		}
		return err
	})
	release()
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if err := <-joined; !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("joining the group during the delete: %v, want ErrTopicNotFound", err)
	}
	if _, err := os.Stat(offsetsPath(dir, "g", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("offsets file of the deleted topic: %v, want none", err)
	}
	if _, err := l.DescribeGroup("g"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("DescribeGroup after the delete: %v, want ErrGroupNotFound", err)
	}

	// The same name again, one partition: the group starts from nothing.
	mustCreate(t, l, "x", TopicConfig{Partitions: 1})
	p = mustProducer(t, l, "x", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	c = mustConsumer(t, l, "x", &ConsumerOptions{Group: "g"})
	recs := pollUntil(t, c, 1, patience)
	if len(recs) != 1 || recs[0].Offset != 0 || string(recs[0].Value) != "new" {
		t.Errorf("the group on the new topic read %+v, want its one record", recs)
	}
}

// topicAdminDieMain creates topic $RUNNEL_ADMIN_TOPIC with 4 partitions in
// the log at $RUNNEL_ADMIN_DIR and is killed (SIGKILL, by itself) once the
// partition directories exist, before topic.json does.
func topicAdminDieMain() int {
	l, err := Open(os.Getenv("RUNNEL_ADMIN_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("topic admin die", err)
	}
	testHookAdmin = func(point, name string) {
		if point == hookCreateDirs {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	err = l.CreateTopic(os.Getenv("RUNNEL_ADMIN_TOPIC"), TopicConfig{Partitions: 4})
	return mpFail("topic admin die", fmt.Errorf("CreateTopic returned %v instead of dying", err))
}

// TestTopicCreateAfterCrash kills a process in the middle of CreateTopic,
// holding the name's lock: the name is not blocked, the half-made topic
// does not exist for anyone, and the next CreateTopic replaces it.
func TestTopicCreateAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	cmd := mpChild("topic-admin-die", "RUNNEL_ADMIN_DIR="+dir, "RUNNEL_ADMIN_TOPIC=x")
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "x"+topicLockSuffix)); err != nil {
		t.Fatalf("the dead creator's lock file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "x", "3")); err != nil {
		t.Fatalf("the dead creator's partition directory: %v", err)
	}
	if names, err := l.Topics(); err != nil || len(names) != 0 {
		t.Errorf("Topics: %v, %v; want none", names, err)
	}
	if _, err := l.Consumer("x", nil); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Consumer: %v, want ErrTopicNotFound", err)
	}
	if err := l.DeleteTopic("x"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DeleteTopic: %v, want ErrTopicNotFound", err)
	}
	mustCreate(t, l, "x", TopicConfig{Partitions: 2})
	entries, err := os.ReadDir(filepath.Join(dir, "topics", "x"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff([]string{"0", "1", topicFileName}, got); diff != "" {
		t.Errorf("the new topic's directory (-want +got):\n%s", diff)
	}
	checkNoAdminDebris(t, dir)
}

// TestTopicCreateKeepsOrphanedData: a topic directory whose topic.json is
// gone but which holds segments is data, not a dead creator's leftovers;
// CreateTopic refuses the name instead of removing it.
func TestTopicCreateKeepsOrphanedData(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "x", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "x", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("keep me")}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "topics", "x", topicFileName)); err != nil {
		t.Fatal(err)
	}
	err := l.CreateTopic("x", TopicConfig{Partitions: 1})
	if !errors.Is(err, ErrTopicExists) || !strings.Contains(err.Error(), "segment files") {
		t.Fatalf("CreateTopic over orphaned data: %v, want ErrTopicExists naming the segment files", err)
	}
	if bases, err := listSegments(filepath.Join(dir, "topics", "x", "0")); err != nil || len(bases) != 1 {
		t.Fatalf("segments after the refused create: %v, %v", bases, err)
	}
	checkNoAdminDebris(t, dir)
}

// TestTopicStaleHandle: a Log that loaded a topic before another Log
// deleted it and created it anew, with fewer partitions, never writes into
// the new topic through the old handle, and loads the new one for new
// producers and consumers.
func TestTopicStaleHandle(t *testing.T) {
	dir := t.TempDir()
	l1, l2 := openTest(t, dir, nil), openTest(t, dir, nil)
	mustCreate(t, l1, "s", TopicConfig{Partitions: 3})
	old := mustProducer(t, l1, "s", &ProducerOptions{Partitioner: ManualPartitioner})
	oldC := mustConsumer(t, l1, "s", nil)
	if err := l2.DeleteTopic("s"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l2, "s", TopicConfig{Partitions: 1})
	for part := range 3 {
		if _, err := old.Send(context.Background(), Record{Partition: part, Value: []byte("stale")}); !errors.Is(err, ErrTopicNotFound) {
			t.Errorf("Send to partition %d through the old handle: %v, want ErrTopicNotFound", part, err)
		}
	}
	if _, err := oldC.TryPoll(); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("TryPoll through the old handle: %v, want ErrTopicNotFound", err)
	}
	info, err := l1.DescribeTopic("s")
	if err != nil || len(info.Partitions) != 1 || info.Partitions[0].NextOffset != 0 {
		t.Fatalf("DescribeTopic through the first Log: %+v, %v; want the new topic, empty", info, err)
	}
	p := mustProducer(t, l1, "s", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("new")}); err != nil {
		t.Fatalf("Send to the new topic: %v", err)
	}
	if recs := readAvailable(t, l2, "s"); len(recs) != 1 || string(recs[0].Value) != "new" {
		t.Errorf("the new topic holds %d records, want only the new one", len(recs))
	}
}

// TestTopicConfigValidate: Validate refuses what CreateTopic refuses, with
// ErrInvalidArgument, and accepts zero fields as their defaults.
func TestTopicConfigValidate(t *testing.T) {
	if err := (TopicConfig{Partitions: 1}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	dir := t.TempDir()
	l, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []TopicConfig{{}, {Partitions: 1, SegmentBytes: 100}, {Partitions: 1, RetentionAge: -1}} {
		verr := c.Validate()
		cerr := l.CreateTopic("v", c)
		if !errors.Is(verr, ErrInvalidArgument) || !errors.Is(cerr, ErrInvalidArgument) {
			t.Errorf("%+v: Validate says %v, CreateTopic %v; want both ErrInvalidArgument", c, verr, cerr)
		}
	}
}
