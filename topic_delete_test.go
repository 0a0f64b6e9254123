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
			l := openTest(t, dir, &Options{Durability: Buffered})
			mustCreate(t, l, "x", TopicConfig{Partitions: 3})
			mustCreate(t, l, "other", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "x", nil)
			for i := range 6 {
				if _, err := p.Send(ctx, Record{Key: []byte{byte(i)}, Value: []byte("old")}); err != nil {
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

// TestVerifyUnfinishedDelete: a topic with one partition marked deleted,
// and no DeleteTopic at work (it died halfway through marking them, or
// the mark is all that reached the disk before a power loss), is reported
// by Verify with the file and the byte; Repair finishes the delete, of
// that topic alone.
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
			m, err := openMeta(filepath.Join(dir, "topics", "x", "1"))
			if err != nil {
				t.Fatal(err)
			}
			m.u32(metaDeletedOff).Store(1)
			m.close()

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
