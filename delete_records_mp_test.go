package runnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func init() {
	childMains["delrec-die"] = delrecDieMain
	childMains["delrec-reader"] = delrecReaderMain
}

// delrecDieMain calls DeleteRecords(50) on partition 0 of topic "d" of
// $RUNNEL_DELREC_DIR and kills itself with SIGKILL at the log-start step
// $RUNNEL_DELREC_STEP.
func delrecDieMain() int {
	step := os.Getenv("RUNNEL_DELREC_STEP")
	testHookLogStart = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	l, err := Open(os.Getenv("RUNNEL_DELREC_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("delrec-die", err)
	}
	start, err := l.DeleteRecords(context.Background(), "d", 0, 50)
	return mpFail("delrec-die", fmt.Errorf("DeleteRecords returned %d, %v instead of dying", start, err))
}

// TestDeleteRecordsCrash kills a process inside DeleteRecords at each
// step of recording the start: before the rename the start is the old
// one, from it on the new one, never another; the consumers, Verify
// and a retry agree.
func TestDeleteRecordsCrash(t *testing.T) {
	for _, step := range []string{"written", "renamed", "synced", "published"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			l := delrecSetup(t, dir, 100)
			cmd := mpChild("delrec-die", "RUNNEL_DELREC_DIR="+dir, "RUNNEL_DELREC_STEP="+step)
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed by SIGKILL", err)
			}
			want := int64(50)
			if step == "written" {
				want = 0
			}
			if s, n := describeStart(t, l); s != want || n != 100 {
				t.Errorf("offsets [%d, %d) after a death at %q, want [%d, 100)", s, n, step, want)
			}
			if got := firstOffset(t, l, nil); got != want {
				t.Errorf("Earliest consumer starts at %d, want %d", got, want)
			}
			if rep, err := l.Verify(context.Background(), "", nil); err != nil || !rep.OK() || rep.Partitions[0].StartOffset != want {
				t.Errorf("Verify: %+v, %v", rep, err)
			}
			if step == "published" {
				// Died before removing the segments below the start: a
				// retention check (of a topic with a limit) removes them.
				if err := l.AlterTopic("d", func(c *TopicConfig) { c.RetentionBytes = 1 << 30 }); err != nil {
					t.Fatal(err)
				}
				if err := l.EnforceRetention(context.Background()); err != nil {
					t.Fatal(err)
				}
				bases, _ := listSegments(filepath.Join(dir, "topics", "d", "0"))
				if len(bases) > 1 && bases[1] <= 50 {
					t.Errorf("segments after a retention check: %v", bases)
				}
			}
			// The retry finishes the call: the segments below the start go.
			if start, err := l.DeleteRecords(context.Background(), "d", 0, 50); err != nil || start != 50 {
				t.Fatalf("retry: %d, %v", start, err)
			}
			bases, _ := listSegments(filepath.Join(dir, "topics", "d", "0"))
			if len(bases) > 1 && bases[1] <= 50 {
				t.Errorf("segments after the retry: %v", bases)
			}
		})
	}
}

// delrecReaderMain reads topic "d" of $RUNNEL_DELREC_DIR from the start, 5
// records a poll, resetting to the earliest when out of range: it prints
// "r <first offset>" after its first poll, waits for a line on stdin, then
// prints the first offset of its next poll.
func delrecReaderMain() int {
	fail := func(err error) int { return mpFail("delrec-reader", err) }
	l, err := Open(os.Getenv("RUNNEL_DELREC_DIR"), mpOptions(Options{}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	c, err := l.Consumer("d", &ConsumerOptions{MaxPollRecords: 5, OutOfRange: OutOfRangeEarliest})
	if err != nil {
		return fail(err)
	}
	in := bufio.NewScanner(os.Stdin)
	for range 2 {
		recs, err := c.Poll(context.Background())
		if err != nil {
			return fail(err)
		}
		fmt.Printf("r %d\n", recs[0].Offset)
		in.Scan()
	}
	return 0
}

// TestDeleteRecordsOtherProcessReader: another process's consumer, in
// the middle of the records when DeleteRecords moves the start past it,
// goes on from the start at its next poll.
func TestDeleteRecordsOtherProcessReader(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	cmd := mpChild("delrec-reader", "RUNNEL_DELREC_DIR="+dir)
	stdin, stdout := startPiped(t, cmd)
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewScanner(stdout)
	read := func() int64 {
		t.Helper()
		if !out.Scan() {
			t.Fatalf("reader: %v", out.Err())
		}
		var off int64
		if _, err := fmt.Sscanf(out.Text(), "r %d", &off); err != nil {
			t.Fatalf("reader: %q", out.Text())
		}
		return off
	}
	if got := read(); got != 0 {
		t.Fatalf("reader's first poll from %d", got)
	}
	if _, err := l.DeleteRecords(context.Background(), "d", 0, 70); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")
	if got := read(); got != 70 {
		t.Errorf("reader's poll after DeleteRecords(70) from %d, want 70", got)
	}
	fmt.Fprintln(stdin, "done")
}

func init() { childMains["delrec-retain"] = delrecRetainMain }

// delrecRetainMain runs one retention check of $RUNNEL_DELREC_DIR.
func delrecRetainMain() int {
	l, err := Open(os.Getenv("RUNNEL_DELREC_DIR"), mpOptions(Options{RetentionInterval: -1}))
	if err != nil {
		return mpFail("delrec-retain", err)
	}
	defer l.Close()
	if err := l.EnforceRetention(context.Background()); err != nil {
		return mpFail("delrec-retain", err)
	}
	return 0
}

// TestDeleteRecordsBesideOtherProcessRetention: another process's
// retention removes segments under this one's Log, which has read into
// them, before and after this process's DeleteRecords: a before that
// retention overtook returns the first base left (never a start below it),
// one inside the segments left moves the start there, the start never
// moves back, and a consumer that resets and Verify see every record from
// the start on, none below it.
func TestDeleteRecordsBesideOtherProcessRetention(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 200)
	ctx := context.Background()
	c := mustConsumer(t, l, "d", &ConsumerOptions{OutOfRange: OutOfRangeEarliest, MaxPollRecords: 10})
	if recs, err := c.TryPoll(); err != nil || len(recs) != 10 {
		t.Fatalf("first poll: %d records, %v", len(recs), err)
	}
	if err := l.AlterTopic("d", func(cfg *TopicConfig) { cfg.RetentionBytes = 3 * minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	retain := func() {
		t.Helper()
		if err := mpChild("delrec-retain", "RUNNEL_DELREC_DIR="+dir).Run(); err != nil {
			t.Fatalf("retention child: %v", err)
		}
	}
	pdir := filepath.Join(dir, "topics", "d", "0")
	retain()
	bases, err := listSegments(pdir)
	if err != nil || bases[0] <= 10 {
		t.Fatalf("segments after the other process's retention: %v, %v", bases, err)
	}
	first := bases[0]
	if start, err := l.DeleteRecords(ctx, "d", 0, 5); err != nil || start != first {
		t.Errorf("DeleteRecords(5) below the first segment left, %d: %d, %v", first, start, err)
	}
	if start, err := l.DeleteRecords(ctx, "d", 0, first+3); err != nil || start != first+3 {
		t.Errorf("DeleteRecords(%d): %d, %v", first+3, start, err)
	}
	sendDelrec(t, l, 200, 260) // more segments, over the limit again
	retain()
	bases, err = listSegments(pdir)
	if err != nil || bases[0] <= first+3 {
		t.Fatalf("segments after a second retention: %v, %v", bases, err)
	}
	if start, err := l.DeleteRecords(ctx, "d", 0, first+3); err != nil || start != bases[0] {
		t.Errorf("DeleteRecords(%d) after retention passed it: %d, %v; want %d", first+3, start, err, bases[0])
	}
	want := bases[0] + 1
	if start, err := l.DeleteRecords(ctx, "d", 0, want); err != nil || start != want {
		t.Fatalf("DeleteRecords(%d): %d, %v", want, start, err)
	}
	if s, n := describeStart(t, l); s != want || n != 260 {
		t.Errorf("describe: [%d, %d), want [%d, 260)", s, n, want)
	}
	recs := pollUntil(t, c, int(260-want), patience)
	for i, r := range recs {
		if r.Offset != want+int64(i) || !strings.HasPrefix(string(r.Value), fmt.Sprintf("v%d", r.Offset)) {
			t.Fatalf("record %d of a consumer that resets: offset %d, %.10q; want %d on", i, r.Offset, r.Value, want)
		}
	}
	if rep, err := l.Verify(ctx, "d", nil); err != nil || !rep.OK() || rep.Partitions[0].StartOffset != want {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

func init() { childMains["delrec-deleter"] = delrecDeleterMain }

// delrecDeleterMain deletes topic "d" of $RUNNEL_DELREC_DIR, saying
// "marked" once every partition is marked deleted (the directory still
// in place) and waiting there for a line on stdin; then it creates "d"
// anew, sends it 5 records, and says "recreated".
func delrecDeleterMain() int {
	fail := func(err error) int { return mpFail("delrec-deleter", err) }
	l, err := Open(os.Getenv("RUNNEL_DELREC_DIR"), mpOptions(Options{RetentionInterval: -1}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	in := bufio.NewScanner(os.Stdin)
	testHookAdmin = func(point, name string) {
		if point == hookDeleteMarked {
			fmt.Println("marked")
			in.Scan()
		}
	}
	if err := l.DeleteTopic("d"); err != nil {
		return fail(err)
	}
	testHookAdmin = nil
	if err := l.CreateTopic("d", TopicConfig{Partitions: 1}); err != nil {
		return fail(err)
	}
	p, err := l.Producer("d", nil)
	if err != nil {
		return fail(err)
	}
	for range 5 {
		if _, err := p.Send(context.Background(), Record{Value: []byte("new")}); err != nil {
			return fail(err)
		}
	}
	fmt.Println("recreated")
	return 0
}

// TestDeleteRecordsOfDeletedTopic: DeleteRecords through a handle on a
// topic that another process's DeleteTopic has marked deleted (its commit
// point: no process appends to it or reads it after) fails with
// ErrTopicNotFound, as an append does; it had moved the start of the
// deleted topic and returned it. Once the topic is made anew, the call
// acts on the new one.
func TestDeleteRecordsOfDeletedTopic(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	cmd := mpChild("delrec-deleter", "RUNNEL_DELREC_DIR="+dir)
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := mpLines(stdout)
	if s := mpExpectLine(t, lines, patience); s != "marked" {
		t.Fatalf("child said %q, want marked", s)
	}
	ctx := context.Background()
	if start, err := l.DeleteRecords(ctx, "d", 0, 50); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DeleteRecords of a topic marked deleted: %d, %v; want ErrTopicNotFound", start, err)
	}
	io.WriteString(stdin, "go\n")
	if s := mpExpectLine(t, lines, patience); s != "recreated" {
		t.Fatalf("child said %q, want recreated", s)
	}
	if start, err := l.DeleteRecords(ctx, "d", 0, DeleteToEnd); err != nil || start != 5 {
		t.Errorf("DeleteToEnd of the topic made anew: %d, %v; want 5", start, err)
	}
	if s, n := describeStart(t, l); s != 5 || n != 5 {
		t.Errorf("describe of the topic made anew: [%d, %d), want [5, 5)", s, n)
	}
}
