package runnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// A DeleteTopic that dies after it marked the partitions deleted and
// before it moved the topic's directory away is finished by whoever meets
// the mark next; one that is alive is left to finish on its own.

func init() {
	childMains["topic-delete-paused"] = topicDeletePausedMain
}

// topicDeletePausedMain deletes topic $RUNNEL_ADMIN_TOPIC of the log at
// $RUNNEL_ADMIN_DIR and stops once every partition is marked deleted,
// before the directory is moved: it says "marked" and waits, holding the
// name's admin lock, until its parent kills it.
func topicDeletePausedMain() int {
	l, err := Open(os.Getenv("RUNNEL_ADMIN_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("topic delete paused", err)
	}
	testHookAdmin = func(point, name string) {
		if point == hookDeleteMarked {
			fmt.Println("marked")
			io.Copy(io.Discard, os.Stdin) // until the parent kills us
		}
	}
	err = l.DeleteTopic(os.Getenv("RUNNEL_ADMIN_TOPIC"))
	return mpFail("topic delete paused", fmt.Errorf("DeleteTopic returned %v instead of being killed", err))
}

// TestTopicDeleteKilled stops a DeleteTopic in a child process once it has
// marked the partitions deleted. While it is alive, producers and
// consumers get ErrTopicNotFound and leave the delete to it. Then the
// parent SIGKILLs it: Verify reports the unfinished delete, naming the
// file, and whoever meets the topic next (a producer, a consumer, an admin
// call, Topics, Repair) finishes the delete, so that the topic is gone as
// the DeleteTopic meant: no data, no group offsets, the name free for a
// new topic that starts empty.
func TestTopicDeleteKilled(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// meet runs right after the kill, in the Log whose producer p and
		// group member c used the topic before, or in a Log opened
		// afresh (a process started after the crash), which has not
		// loaded the topic.
		meet func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer)
	}{
		{"send", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if _, err := p.Send(ctx, Record{Value: []byte("after")}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Send: %v, want ErrTopicNotFound", err)
			}
		}},
		{"poll", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if _, err := c.TryPoll(); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("TryPoll: %v, want ErrTopicNotFound", err)
			}
		}},
		{"fresh producer", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if _, err := fresh.Producer("x", nil); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Producer of a fresh Log: %v, want ErrTopicNotFound", err)
			}
		}},
		{"fresh consumer", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if _, err := fresh.Consumer("x", &ConsumerOptions{Group: "g"}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Consumer of a fresh Log: %v, want ErrTopicNotFound", err)
			}
		}},
		{"describe", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if _, err := fresh.DescribeTopic("x"); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("DescribeTopic: %v, want ErrTopicNotFound", err)
			}
		}},
		{"topics", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if names, err := fresh.Topics(); err != nil || slices.Contains(names, "x") {
				t.Errorf("Topics: %v, %v; want no x", names, err)
			}
		}},
		{"create", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if err := fresh.CreateTopic("x", TopicConfig{Partitions: 1}); err != nil {
				t.Errorf("CreateTopic: %v", err)
			}
		}},
		{"alter", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if err := fresh.AlterTopic("x", func(c *TopicConfig) { c.RetentionBytes = 1 << 20 }); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("AlterTopic: %v, want ErrTopicNotFound", err)
			}
		}},
		{"delete", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			if err := fresh.DeleteTopic("x"); err != nil {
				t.Errorf("DeleteTopic: %v", err)
			}
		}},
		{"repair", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer) {
			rep, err := fresh.Repair(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Actions) != 1 || rep.Actions[0].Kind != RepairFinishedDelete || rep.Actions[0].Topic != "x" || len(rep.Remaining) != 0 {
				t.Errorf("Repair: actions %v, remaining %v; want the delete of x finished", rep.Actions, rep.Remaining)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, p, c := topicWithCommits(t, dir, nil, func(i int) Record {
				return Record{Key: []byte{byte(i)}, Value: []byte("old")}
			})

			cmd := mpChild("topic-delete-paused", "RUNNEL_ADMIN_DIR="+dir, "RUNNEL_ADMIN_TOPIC=x")
			stdin, stdout := startPiped(t, cmd)
			t.Cleanup(func() {
				stdin.Close() // a child still paused (the test failed first) ends its delete
				cmd.Wait()
			})
			if line := mpExpectLine(t, mpLines(stdout), patience); line != "marked" {
				t.Fatalf("child said %q", line)
			}

			// Alive, the DeleteTopic holds the name: what meets the mark
			// fails, and leaves the topic to it.
			if _, err := p.Send(ctx, Record{Value: []byte("during")}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Send during the delete: %v, want ErrTopicNotFound", err)
			}
			if _, err := c.TryPoll(); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("TryPoll during the delete: %v, want ErrTopicNotFound", err)
			}
			if _, err := l.DescribeTopic("x"); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("DescribeTopic during the delete: %v, want ErrTopicNotFound", err)
			}
			if rep, err := l.Verify(ctx, "", nil); err != nil || !rep.OK() {
				t.Errorf("Verify during the delete: %v, %v; want no problem", rep.Problems, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", topicFileName)); err != nil {
				t.Fatalf("the topic was taken from the DeleteTopic at work: %v", err)
			}

			cmd.Process.Kill()
			err := cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed by SIGKILL", err)
			}

			// Dead, it left the topic marked: Verify says so, with the
			// file, and changes nothing.
			fresh := openTest(t, dir, nil)
			rep, err := fresh.Verify(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemUnfinishedDelete || rep.Problems[0].Topic != "x" ||
				!strings.HasPrefix(rep.Problems[0].Path, filepath.Join(dir, "topics", "x")) || filepath.Base(rep.Problems[0].Path) != metaFileName ||
				!rep.Problems[0].Repairable() {
				t.Errorf("Verify after the kill: %v; want the unfinished delete of x, naming a partition.meta", rep.Problems)
			}
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", topicFileName)); err != nil {
				t.Fatalf("Verify changed the topic: %v", err)
			}

			tt.meet(t, l, fresh, p, c)
			// By this call alone: partition 2 was the old topic's.
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", "2")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the delete is not finished (%v)", err)
			}

			// The delete is finished: as if it had returned.
			if tt.name != "create" {
				if names, err := l.Topics(); err != nil || !slices.Equal(names, []string{"other"}) {
					t.Errorf("Topics: %v, %v; want other alone", names, err)
				}
				if _, err := l.DescribeTopic("x"); !errors.Is(err, ErrTopicNotFound) {
					t.Errorf("DescribeTopic: %v, want ErrTopicNotFound", err)
				}
				mustCreate(t, l, "x", TopicConfig{Partitions: 1})
			}
			if _, err := os.Stat(offsetsPath(dir, "g", "x")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("offsets file of the deleted topic: %v, want none", err)
			}
			if _, err := p.Send(ctx, Record{Value: []byte("stale")}); !errors.Is(err, ErrTopicNotFound) {
				t.Errorf("Send through the deleted topic's producer: %v, want ErrTopicNotFound", err)
			}
			np := mustProducer(t, l, "x", nil)
			if pos, err := np.Send(ctx, Record{Value: []byte("new")}); err != nil || pos.Offset != 0 {
				t.Errorf("Send to the new topic: %+v, %v; want offset 0", pos, err)
			}
			nc := mustConsumer(t, fresh, "x", &ConsumerOptions{Group: "g"})
			if recs := pollUntil(t, nc, 1, patience); len(recs) != 1 || recs[0].Offset != 0 || string(recs[0].Value) != "new" {
				t.Errorf("the group on the new topic read %+v, want its one record", recs)
			}
			if rep, err := fresh.Verify(ctx, "", nil); err != nil || !rep.OK() {
				t.Errorf("Verify after: %v, %v", rep.Problems, err)
			}
			checkNoAdminDebris(t, dir)
		})
	}
}

// TestVerifyUnfinishedDelete: a topic with its delete intent and one
// partition marked deleted, and no DeleteTopic at work (it died halfway
// through marking them, or the mark is all that reached the disk before a
// power loss), is reported by Verify with the file and the byte; Repair
// finishes the delete, of that topic alone.
func TestVerifyUnfinishedDelete(t *testing.T) {
	for _, named := range []string{"", "x"} {
		t.Run("topic="+named, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			l := openTest(t, dir, nil)
			mustCreate(t, l, "x", TopicConfig{Partitions: 3})
			mustCreate(t, l, "other", TopicConfig{Partitions: 1})
			for _, name := range []string{"x", "other"} {
				p := mustProducer(t, l, name, nil)
				if _, err := p.Send(ctx, Record{Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
			leaveDeleteIntent(t, l, "x")
			setDeletedWord(t, l, "x", 1)

			rep, err := l.Verify(ctx, named, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := Problem{Kind: ProblemUnfinishedDelete, Topic: "x", Partition: -1, Path: filepath.Join(dir, "topics", "x", "1", metaFileName), Pos: metaDeletedOff, Offset: -1}
			if len(rep.Problems) != 1 || rep.Problems[0].Detail == "" {
				t.Fatalf("Verify: %v; want %v", rep.Problems, want)
			}
			got := rep.Problems[0]
			got.Detail = ""
			if got != want {
				t.Errorf("Verify: %+v; want %+v", got, want)
			}

			fixed, err := l.Repair(ctx, named, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(fixed.Actions) != 1 || fixed.Actions[0].Kind != RepairFinishedDelete || fixed.Actions[0].Path != want.Path || len(fixed.Remaining) != 0 {
				t.Errorf("Repair: actions %v, remaining %v; want the delete of x finished", fixed.Actions, fixed.Remaining)
			}
			if names, err := l.Topics(); err != nil || !slices.Equal(names, []string{"other"}) {
				t.Errorf("Topics after the repair: %v, %v; want other alone", names, err)
			}
			if recs := readAvailable(t, l, "other"); len(recs) != 1 {
				t.Errorf("the other topic holds %d records, want 1", len(recs))
			}
			checkNoAdminDebris(t, dir)
		})
	}
}

// leaveDeleteIntent writes topic's delete intent file, as a DeleteTopic
// does before it marks the partitions.
func leaveDeleteIntent(t *testing.T, l *Log, topic string) {
	t.Helper()
	if err := l.writeDeleteIntent(topic); err != nil {
		t.Fatal(err)
	}
}

// setDeletedWord sets the deleted word of partition part of topic, and
// nothing else: what markDeleted does to one partition, or damage.
func setDeletedWord(t *testing.T, l *Log, topic string, part int) {
	t.Helper()
	m, err := openMeta(partDir(l, topic, part))
	if err != nil {
		t.Fatal(err)
	}
	m.u32(metaDeletedOff).Store(1)
	m.close()
}

// wantStrayMark checks that err is the *CorruptError of a partition
// marked deleted with no delete intent, naming its partition.meta and the
// word: not ErrTopicNotFound, for nothing was deleted.
func wantStrayMark(t *testing.T, what string, err error, path string) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path || ce.Pos != metaDeletedOff || errors.Is(err, ErrTopicNotFound) {
		t.Errorf("%s: %v; want the damage at byte %d of %s", what, err, metaDeletedOff, path)
	}
}

// TestStrayDeleteMark sets one partition's deleted word by hand, with no
// delete intent: damage to partition.meta (a stray write, a bit flip), not
// a DeleteTopic. Nothing that meets it deletes the topic — a Send, a Poll,
// a fresh Log's producer and consumer, DescribeTopic, Topics, CreateTopic,
// AlterTopic, a group's first join: the partition's appends and reads
// fail with a *CorruptError naming the word, the others work. Verify
// reports the damage with the file and the byte, Repair clears the word,
// and then the partition takes appends and reads again, in the Log that
// met the damage and in a fresh one, with every old record there.
func TestStrayDeleteMark(t *testing.T) {
	ctx := context.Background()
	manual := &ProducerOptions{Partitioner: ManualPartitioner}
	tests := []struct {
		name string
		// meet runs once the word is set, in the Log whose producer p and
		// group member c used the topic before, or in a Log opened
		// afresh, which has not loaded the topic. marked is the damaged
		// partition.meta.
		meet func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string)
	}{
		{"send", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			_, err := p.Send(ctx, Record{Partition: 1, Value: []byte("after")})
			wantStrayMark(t, "Send to the marked partition", err, marked)
			if _, err := p.Send(ctx, Record{Partition: 0, Value: []byte("after")}); err != nil {
				t.Errorf("Send to another partition: %v", err)
			}
		}},
		{"poll", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			_, err := c.TryPoll()
			wantStrayMark(t, "TryPoll", err, marked)
		}},
		{"fresh producer", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			fp, err := fresh.Producer("x", manual)
			if err != nil {
				t.Fatalf("Producer of a fresh Log: %v", err)
			}
			_, err = fp.Send(ctx, Record{Partition: 1, Value: []byte("after")})
			wantStrayMark(t, "Send of a fresh Log", err, marked)
		}},
		{"fresh consumer", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			fc, err := fresh.Consumer("x", &ConsumerOptions{Group: "g2"})
			if err != nil {
				t.Fatalf("Consumer of a fresh Log: %v", err)
			}
			_, err = fc.TryPoll()
			wantStrayMark(t, "TryPoll of a fresh Log", err, marked)
		}},
		{"describe", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			info, err := fresh.DescribeTopic("x")
			if err != nil || len(info.Partitions) != 3 || info.Partitions[1].NextOffset != 2 {
				t.Errorf("DescribeTopic: %+v, %v; want the topic as it is", info, err)
			}
		}},
		{"topics", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			// With the lock file a dead admin call leaves, which makes
			// Topics look at the name.
			lf, err := os.Create(fresh.topicLockPath("x"))
			if err != nil {
				t.Fatal(err)
			}
			lf.Close()
			if names, err := fresh.Topics(); err != nil || !slices.Equal(names, []string{"other", "x"}) {
				t.Errorf("Topics: %v, %v; want other and x", names, err)
			}
			os.Remove(fresh.topicLockPath("x"))
		}},
		{"create", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			if err := fresh.CreateTopic("x", TopicConfig{Partitions: 1}); !errors.Is(err, ErrTopicExists) {
				t.Errorf("CreateTopic: %v, want ErrTopicExists", err)
			}
		}},
		{"alter", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			if err := fresh.AlterTopic("x", func(c *TopicConfig) { c.RetentionBytes = 1 << 30 }); err != nil {
				t.Errorf("AlterTopic: %v", err)
			}
		}},
		{"group join", func(t *testing.T, l, fresh *Log, p *Producer, c *Consumer, marked string) {
			// A group with no offsets file for the topic creates it under
			// the name's admin lock.
			if fc, err := l.Consumer("x", &ConsumerOptions{Group: "g3"}); err != nil {
				t.Errorf("a new group's first join: %v", err)
			} else {
				fc.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, p, c := topicWithCommits(t, dir, manual, func(i int) Record {
				return Record{Partition: i % 3, Value: []byte{'a' + byte(i)}}
			})

			setDeletedWord(t, l, "x", 1)
			marked := filepath.Join(partDir(l, "x", 1), metaFileName)
			fresh := openTest(t, dir, nil)
			tt.meet(t, l, fresh, p, c, marked)

			// Nothing was deleted, nor the group's commits.
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", topicFileName)); err != nil {
				t.Fatalf("the topic was deleted: %v", err)
			}
			if _, err := os.Stat(offsetsPath(dir, "g", "x")); err != nil {
				t.Errorf("the group's offsets file: %v", err)
			}
			rep, err := fresh.Verify(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			want := Problem{Kind: ProblemStrayDeleteMark, Topic: "x", Partition: 1, Path: marked, Pos: metaDeletedOff, Offset: -1}
			if len(rep.Problems) != 1 || rep.Problems[0].Detail == "" || !rep.Problems[0].Repairable() {
				t.Fatalf("Verify: %v; want %v", rep.Problems, want)
			}
			got := rep.Problems[0]
			got.Detail = ""
			if got != want {
				t.Errorf("Verify: %+v; want %+v", got, want)
			}
			var records int64
			for _, pc := range rep.Partitions {
				if pc.Topic == "x" {
					records += pc.Records
				}
			}
			if records < 6 {
				t.Errorf("Verify counted %d records of x, want its 6 at least", records)
			}

			fixed, err := fresh.Repair(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			wantAct := RepairAction{Kind: RepairClearedDeleteMark, Topic: "x", Partition: 1, Path: marked, Pos: metaDeletedOff}
			if len(fixed.Actions) != 1 || fixed.Actions[0] != wantAct || len(fixed.Remaining) != 0 {
				t.Errorf("Repair: actions %v, remaining %v; want %v alone", fixed.Actions, fixed.Remaining, wantAct)
			}

			// The Log that met the damage uses the partition again, without
			// being reopened, and so does a fresh one; every record is
			// there.
			if _, err := p.Send(ctx, Record{Partition: 1, Value: []byte("old log")}); err != nil {
				t.Errorf("Send through the Log that met the damage, after the repair: %v", err)
			}
			if _, err := c.TryPoll(); err != nil {
				t.Errorf("TryPoll of the member that met the damage, after the repair: %v", err)
			}
			again := openTest(t, dir, nil)
			ap := mustProducer(t, again, "x", manual)
			if pos, err := ap.Send(ctx, Record{Partition: 1, Value: []byte("new log")}); err != nil || pos.Offset != 3 {
				t.Errorf("Send of a fresh Log after the repair: %+v, %v; want offset 3 of partition 1", pos, err)
			}
			var values []string
			for _, r := range readAvailable(t, again, "x") {
				if r.Partition == 1 {
					values = append(values, string(r.Value))
				}
			}
			if want := []string{"b", "e", "old log", "new log"}; !slices.Equal(values, want) {
				t.Errorf("partition 1 holds %q, want %q", values, want)
			}
			if rep, err := again.Verify(ctx, "", nil); err != nil || !rep.OK() {
				t.Errorf("Verify after: %v, %v", rep.Problems, err)
			}
			checkNoAdminDebris(t, dir)
		})
	}
}

// TestStaleDeleteIntent leaves a delete intent with no partition marked:
// a DeleteTopic that died (or gave up and could not remove it) before its
// commit point. The topic stays usable and Verify passes, noting it; the
// next admin call on the name under its lock removes it (AlterTopic here,
// or Topics for a name whose lock file the dead call left, or Repair, which
// says so). Without it, damage that sets a deleted word later is damage
// again, not a delete.
func TestStaleDeleteIntent(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		remove func(t *testing.T, l *Log)
	}{
		{"alter", func(t *testing.T, l *Log) {
			if err := l.AlterTopic("x", func(c *TopicConfig) { c.RetentionBytes = 1 << 30 }); err != nil {
				t.Fatal(err)
			}
		}},
		{"topics", func(t *testing.T, l *Log) {
			lf, err := os.Create(l.topicLockPath("x"))
			if err != nil {
				t.Fatal(err)
			}
			lf.Close()
			if names, err := l.Topics(); err != nil || !slices.Equal(names, []string{"x"}) {
				t.Errorf("Topics: %v, %v; want x", names, err)
			}
		}},
		{"repair", func(t *testing.T, l *Log) {
			rep, err := l.Repair(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			want := RepairAction{Kind: RepairRemovedDeleteIntent, Topic: "x", Partition: -1, Path: l.intentPath("x"), Pos: -1}
			if len(rep.Actions) != 1 || rep.Actions[0] != want || len(rep.Remaining) != 0 {
				t.Errorf("Repair: actions %v, remaining %v; want %v", rep.Actions, rep.Remaining, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered})
			mustCreate(t, l, "x", TopicConfig{Partitions: 2})
			p := mustProducer(t, l, "x", &ProducerOptions{Partitioner: ManualPartitioner})
			if _, err := p.Send(ctx, Record{Partition: 1, Value: []byte("before")}); err != nil {
				t.Fatal(err)
			}
			leaveDeleteIntent(t, l, "x")

			fresh := openTest(t, dir, nil)
			if _, err := p.Send(ctx, Record{Partition: 1, Value: []byte("with the intent")}); err != nil {
				t.Errorf("Send with a stale intent: %v", err)
			}
			if recs := readAvailable(t, fresh, "x"); len(recs) != 2 {
				t.Errorf("a fresh Log read %d records, want 2", len(recs))
			}
			rep, err := fresh.Verify(ctx, "", nil)
			if err != nil || !rep.OK() || !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, l.intentPath("x")) }) {
				t.Errorf("Verify: %v, notes %q, %v; want no problem, a note naming the intent", rep.Problems, rep.Notes, err)
			}

			tt.remove(t, fresh)
			if _, err := os.Stat(l.intentPath("x")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the stale intent is still there: %v", err)
			}

			// Damage now is damage, not a delete.
			setDeletedWord(t, l, "x", 1)
			_, err = p.Send(ctx, Record{Partition: 1, Value: []byte("after")})
			wantStrayMark(t, "Send to a partition damaged later", err, filepath.Join(partDir(l, "x", 1), metaFileName))
			if _, err := os.Stat(filepath.Join(dir, "topics", "x", topicFileName)); err != nil {
				t.Fatalf("the topic was deleted: %v", err)
			}
			if _, err := fresh.Repair(ctx, "", nil); err != nil {
				t.Fatal(err)
			}
			if recs := readAvailable(t, fresh, "x"); len(recs) != 2 {
				t.Errorf("after the repair a fresh Log read %d records, want 2", len(recs))
			}
			os.Remove(l.topicLockPath("x"))
			checkNoAdminDebris(t, dir)
		})
	}
}

// TestTopicDeleteGivesUp: a DeleteTopic that writes its intent and then
// gives up waiting for a writer lock (ctx ends) marks nothing, and removes
// its intent: the topic is usable and whole, and damage to a word later
// deletes nothing. While it waits, holding the name, nobody removes its
// intent: not Topics, which finds the name's lock file, nor Verify. A
// DeleteTopic that gives up on a topic whose earlier DeleteTopic committed
// and died leaves that delete's intent, and the delete is finished.
func TestTopicDeleteGivesUp(t *testing.T) {
	ctx := context.Background()
	for _, dead := range []bool{false, true} {
		t.Run(fmt.Sprintf("dead delete=%v", dead), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered})
			mustCreate(t, l, "x", TopicConfig{Partitions: 3})
			// Written through a Log closed then: a writer keeps its lock
			// between appends.
			w := openTest(t, dir, &Options{Durability: Buffered})
			wp := mustProducer(t, w, "x", &ProducerOptions{Partitioner: ManualPartitioner})
			for part := range 3 {
				if _, err := wp.Send(ctx, Record{Partition: part, Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			p := mustProducer(t, l, "x", &ProducerOptions{Partitioner: ManualPartitioner})
			if dead {
				leaveDeleteIntent(t, l, "x")
				setDeletedWord(t, l, "x", 0)
			}
			release := holdWriterLock(t, l, "x", 1)
			dctx, cancel := context.WithCancel(ctx)
			defer cancel()
			deleted := make(chan error, 1)
			other := openTest(t, dir, nil)
			go func() { deleted <- other.DeleteTopicContext(dctx, "x") }()
			waitFor(t, patience, "the delete intent", func() bool {
				_, err := os.Stat(l.intentPath("x"))
				return err == nil
			})

			// At work, the delete holds the name: its intent stays.
			if !dead {
				if names, err := l.Topics(); err != nil || !slices.Equal(names, []string{"x"}) {
					t.Errorf("Topics during the delete: %v, %v; want x", names, err)
				}
				if rep, err := l.Verify(ctx, "", nil); err != nil || !rep.OK() {
					t.Errorf("Verify during the delete: %v, %v; want no problem", rep.Problems, err)
				}
				if _, err := os.Stat(l.intentPath("x")); err != nil {
					t.Fatalf("the intent of the DeleteTopic at work was removed: %v", err)
				}
			}

			cancel()
			if err := <-deleted; !errors.Is(err, context.Canceled) {
				t.Fatalf("DeleteTopicContext: %v, want context.Canceled", err)
			}
			release()

			if dead {
				if _, err := os.Stat(l.intentPath("x")); err != nil {
					t.Fatalf("the intent of the dead delete was removed: %v", err)
				}
				if _, err := p.Send(ctx, Record{Partition: 0}); !errors.Is(err, ErrTopicNotFound) {
					t.Errorf("Send to the partition the dead delete marked: %v, want ErrTopicNotFound", err)
				}
				if names, err := l.Topics(); err != nil || len(names) != 0 {
					t.Errorf("Topics: %v, %v; want the delete finished", names, err)
				}
				checkNoAdminDebris(t, dir)
				return
			}
			if _, err := os.Stat(l.intentPath("x")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a delete that gave up left its intent: %v", err)
			}
			for part := range 3 {
				if _, err := p.Send(ctx, Record{Partition: part, Value: []byte("after")}); err != nil {
					t.Errorf("Send to partition %d after the delete gave up: %v", part, err)
				}
			}
			if recs := readAvailable(t, other, "x"); len(recs) != 6 {
				t.Errorf("read %d records, want 6", len(recs))
			}
			if rep, err := other.Verify(ctx, "", nil); err != nil || !rep.OK() || len(rep.Notes) != 0 {
				t.Errorf("Verify after: %v, notes %q, %v", rep.Problems, rep.Notes, err)
			}
			setDeletedWord(t, l, "x", 2)
			_, err := p.Send(ctx, Record{Partition: 2})
			wantStrayMark(t, "Send to a partition damaged after", err, filepath.Join(partDir(l, "x", 2), metaFileName))
			checkNoAdminDebris(t, dir)
		})
	}
}

// topicWithCommits opens a Log on dir with topic x of three partitions
// (and topic other beside it), sends x the six records rec(0..5) through a
// producer with opts, and has group g read and commit them all.
func topicWithCommits(t *testing.T, dir string, opts *ProducerOptions, rec func(i int) Record) (*Log, *Producer, *Consumer) {
	t.Helper()
	ctx := context.Background()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "x", TopicConfig{Partitions: 3})
	mustCreate(t, l, "other", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "x", opts)
	for i := range 6 {
		if _, err := p.Send(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	c := mustConsumer(t, l, "x", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	if recs := pollUntil(t, c, 6, patience); len(recs) != 6 {
		t.Fatalf("read %d records", len(recs))
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return l, p, c
}
