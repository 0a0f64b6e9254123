package runnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLeftoverGraveVerifyRepair: a Log open before a DeleteTopic in
// another process was killed in the removal of its grave sees, in Verify,
// the grave as a leftover with its path and size, and Repair removes it.
func TestLeftoverGraveVerifyRepair(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "g", TopicConfig{Partitions: 2})
	produceSpread(t, l, "g", 2, 200)
	grave := killInGraveRemoval(t, dir, "g")
	size := treeSize(grave)
	if size == 0 {
		t.Fatal("the grave holds no bytes")
	}

	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Problem{Kind: ProblemLeftoverGrave, Topic: "g", Partition: -1, Path: grave, Pos: -1, Offset: -1}
	if len(rep.Problems) != 1 {
		t.Fatalf("Verify found %v, want one leftover grave", rep.Problems)
	}
	got := rep.Problems[0]
	if !strings.Contains(got.Detail, fmt.Sprintf("%d bytes", size)) || !got.Repairable() {
		t.Errorf("the leftover grave's detail %q does not give its %d bytes, or it is not repairable", got.Detail, size)
	}
	got.Detail = ""
	if got != want {
		t.Errorf("Verify: %+v, want %+v", got, want)
	}

	fixed, err := l.Repair(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantAction := RepairAction{Kind: RepairRemovedGrave, Topic: "g", Partition: -1, Path: grave, Pos: -1, Bytes: size}
	if len(fixed.Actions) != 1 || fixed.Actions[0] != wantAction || len(fixed.Remaining) != 0 {
		t.Errorf("Repair: actions %+v, remaining %v; want %+v and nothing remaining", fixed.Actions, fixed.Remaining, wantAction)
	}
	if _, err := os.Stat(grave); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the grave after Repair: %v, want it removed", err)
	}
	checkNoAdminDebris(t, dir)
}

// TestEmptyGraveOfKilledDeleteRemovedAtOpen kills a DeleteTopic after it
// made its grave and before it moved the topic's directory in: Verify
// notes the empty grave, the next Open removes it, and the delete, which
// had committed, is finished by the next call that meets the topic.
func TestEmptyGraveOfKilledDeleteRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "g", TopicConfig{Partitions: 2})
	if said := killDeleteAt(t, dir, "g", "made"); said != "made" {
		t.Fatalf("child said %q", said)
	}
	graves := graveNames(t, dir)
	if len(graves) != 1 {
		t.Fatalf("graves after the kill: %q, want one", graves)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, graves[0]+": an empty grave") }) {
		t.Errorf("Verify's notes %q do not name the empty grave %s", rep.Notes, graves[0])
	}
	l2 := openTest(t, dir, nil)
	if left := graveNames(t, dir); len(left) != 0 {
		t.Errorf("graves after Open: %q, want none", left)
	}
	if _, err := l2.DescribeTopic("g"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DescribeTopic after the killed delete: %v, want ErrTopicNotFound", err)
	}
	checkNoAdminDebris(t, dir)
}

func init() { childMains["grave-sweeper"] = graveSweeperMain }

// graveSweeperMain opens the log in $RUNNEL_GRAVE_DIR (which sweeps the
// trash) and prints "ready"; then, for each line on stdin:
//
//   - "sweep": sweeps the trash once and prints "swept <removed> <failed>";
//   - "verify": runs Verify and prints "problem <kind> <path>" and
//     "note <note>" lines, then "end";
//   - "spin": sweeps without pause until "stop", then prints
//     "spun <sweeps> <removed> <failed>".
func graveSweeperMain() int {
	fail := func(err error) int { return mpFail("grave-sweeper", err) }
	l, err := Open(os.Getenv("RUNNEL_GRAVE_DIR"), mpOptions(Options{RetentionInterval: -1}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	var removed, failed, sweeps atomic.Int64
	sweep := func() error {
		swept, err := l.sweepTrash(context.Background(), "")
		for _, s := range swept {
			if s.err != nil {
				fmt.Fprintf(os.Stderr, "grave-sweeper: %s: %v\n", s.path, s.err)
				failed.Add(1)
			} else {
				removed.Add(1)
			}
		}
		sweeps.Add(1)
		return err
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	var stop atomic.Bool
	spun := make(chan error, 1)
	for in.Scan() {
		switch in.Text() {
		case "sweep":
			removed.Store(0)
			failed.Store(0)
			if err := sweep(); err != nil {
				return fail(err)
			}
			fmt.Printf("swept %d %d\n", removed.Load(), failed.Load())
		case "verify":
			rep, err := l.Verify(context.Background(), "", nil)
			if err != nil {
				return fail(err)
			}
			for _, p := range rep.Problems {
				fmt.Printf("problem %s %s\n", p.Kind, p.Path)
			}
			for _, n := range rep.Notes {
				fmt.Printf("note %s\n", n)
			}
			fmt.Println("end")
		case "spin":
			removed.Store(0)
			failed.Store(0)
			sweeps.Store(0)
			stop.Store(false)
			go func() {
				for !stop.Load() {
					if err := sweep(); err != nil {
						spun <- err
						return
					}
				}
				spun <- nil
			}()
		case "stop":
			stop.Store(true)
			if err := <-spun; err != nil {
				return fail(err)
			}
			fmt.Printf("spun %d %d %d\n", sweeps.Load(), removed.Load(), failed.Load())
		}
	}
	return 0
}

// graveSweeper is a running grave-sweeper child.
type graveSweeper struct {
	t     *testing.T
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startGraveSweeper(t *testing.T, dir string) *graveSweeper {
	t.Helper()
	cmd := mpChild("grave-sweeper", "RUNNEL_GRAVE_DIR="+dir)
	stdin, stdout := startPiped(t, cmd)
	s := &graveSweeper{t: t, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("grave-sweeper: %v", err)
		}
	})
	if line := s.line(); line != "ready" {
		t.Fatalf("grave-sweeper said %q", line)
	}
	return s
}

func (s *graveSweeper) line() string {
	s.t.Helper()
	if !s.out.Scan() {
		s.t.Fatalf("grave-sweeper ended: %v", s.out.Err())
	}
	return s.out.Text()
}

// ask sends cmd and returns the reply's numbers, after its first word.
func (s *graveSweeper) ask(cmd string, n int) []int64 {
	s.t.Helper()
	fmt.Fprintln(s.stdin, cmd)
	fields := strings.Fields(s.line())
	if len(fields) != n+1 {
		s.t.Fatalf("grave-sweeper answered %q to %s", fields, cmd)
	}
	nums := make([]int64, n)
	for i, f := range fields[1:] {
		if _, err := fmt.Sscan(f, &nums[i]); err != nil {
			s.t.Fatalf("grave-sweeper answered %q to %s", fields, cmd)
		}
	}
	return nums
}

// verify has the child run Verify and returns its problems and notes.
func (s *graveSweeper) verify() (problems, notes []string) {
	s.t.Helper()
	fmt.Fprintln(s.stdin, "verify")
	for {
		line := s.line()
		if p, ok := strings.CutPrefix(line, "problem "); ok {
			problems = append(problems, p)
		} else if n, ok := strings.CutPrefix(line, "note "); ok {
			notes = append(notes, n)
		} else {
			return problems, notes
		}
	}
}

// graveNames returns the graves in dir's trash/.
func graveNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, trashDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), gravePrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestDeleteBesideOtherProcessSweep deletes a topic again and again while
// another process sweeps the trash and runs Verify at the two moments a
// delete's grave is there: made, empty, before the directory is moved in,
// and while the delete removes it, holding the name's admin lock. The
// sweeps leave the grave alone, Verify reports no problem. Every delete
// succeeds and leaves nothing. Then the other process sweeps without
// pause beside more deletes.
func TestDeleteBesideOtherProcessSweep(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	sweeper := startGraveSweeper(t, dir)

	savedHook, savedRemove := testHookAdmin, removeTree
	t.Cleanup(func() { testHookAdmin, removeTree = savedHook, savedRemove })
	var graves, removals int
	testHookAdmin = func(point, name string) {
		if point != hookGraveMade {
			return
		}
		graves++
		if got := sweeper.ask("sweep", 2); got[0] != 0 || got[1] != 0 {
			t.Errorf("the other process's sweep of a grave being made: removed %d, failed %d; want none", got[0], got[1])
		}
		if problems, notes := sweeper.verify(); len(problems) != 0 || len(notes) != 1 || notes[0] != "topic d: being deleted" {
			t.Errorf("the other process's Verify of a grave being made: problems %q, notes %q; want only the topic's note", problems, notes)
		}
		if n := len(graveNames(t, dir)); n != 1 {
			t.Errorf("%d graves after the other process's sweep of one being made, want 1", n)
		}
	}
	removeTree = func(grave string) error {
		removals++
		if got := sweeper.ask("sweep", 2); got[0] != 0 || got[1] != 0 {
			t.Errorf("the other process's sweep of a grave being removed: removed %d, failed %d; want none", got[0], got[1])
		}
		problems, notes := sweeper.verify()
		if len(problems) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "being removed") {
			t.Errorf("the other process's Verify of a grave being removed: problems %q, notes %q; want one note", problems, notes)
		}
		if _, err := os.Stat(filepath.Join(grave, "d", "0")); err != nil {
			t.Errorf("the grave after the other process's sweep: %v", err)
		}
		return savedRemove(grave)
	}
	const deletes = 20
	for i := range deletes {
		mustCreate(t, l, "d", TopicConfig{Partitions: 1})
		if err := l.DeleteTopic("d"); err != nil {
			t.Fatalf("DeleteTopic %d: %v", i, err)
		}
	}
	if graves != deletes || removals != deletes {
		t.Errorf("%d graves made and %d removals for %d deletes, want %d of each", graves, removals, deletes, deletes)
	}
	testHookAdmin, removeTree = savedHook, savedRemove
	checkNoAdminDebris(t, dir)

	fmt.Fprintln(sweeper.stdin, "spin")
	const freeDeletes = 200
	for i := range freeDeletes {
		mustCreate(t, l, "d", TopicConfig{Partitions: 1})
		if err := l.DeleteTopic("d"); err != nil {
			t.Fatalf("DeleteTopic %d beside a sweeping process: %v", i, err)
		}
	}
	got := sweeper.ask("stop", 3)
	t.Logf("the other process swept %d times beside %d deletes", got[0], freeDeletes)
	if got[1] != 0 || got[2] != 0 {
		t.Errorf("the other process removed %d graves and failed to remove %d: every grave was its maker's", got[1], got[2])
	}
	checkNoAdminDebris(t, dir)
}
