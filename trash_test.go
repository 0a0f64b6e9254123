package runnel

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFailedGraveRemovalSweptByNextDelete: a DeleteTopic whose removal of
// its grave fails (EACCES from a file it may not remove) says so and
// leaves the grave; Verify reports it, and the next DeleteTopic, of
// another topic, removes it as it ends and logs it.
func TestFailedGraveRemovalSweptByNextDelete(t *testing.T) {
	dir := t.TempDir()
	var logged syncBuffer
	l := openTest(t, dir, &Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	mustCreate(t, l, "a", TopicConfig{Partitions: 1})
	mustCreate(t, l, "b", TopicConfig{Partitions: 1})
	produceSpread(t, l, "a", 1, 50)

	saved := removeTree
	t.Cleanup(func() { removeTree = saved })
	var grave string
	removeTree = func(path string) error {
		grave = path
		return &fs.PathError{Op: "unlinkat", Path: path, Err: syscall.EACCES}
	}
	if err := l.DeleteTopic("a"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("DeleteTopic with a removal that fails: %v, want EACCES", err)
	}
	removeTree = saved
	if _, err := os.Stat(grave); err != nil {
		t.Fatalf("the grave of the failed removal: %v", err)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemLeftoverGrave || rep.Problems[0].Path != grave {
		t.Errorf("Verify: %v, want the leftover grave %s", rep.Problems, grave)
	}

	if err := l.DeleteTopic("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(grave); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the grave after the next DeleteTopic: %v, want it removed", err)
	}
	if !strings.Contains(logged.String(), grave) {
		t.Errorf("the log does not name the grave removed, %s:\n%s", grave, logged.String())
	}
	checkNoAdminDebris(t, dir)
}

// TestVerifyReadsGraveAfterItsMakerLetGo: Verify lists a grave while its
// delete holds it, empty, before the move; the delete then moves the
// topic's directory in, fails to remove it, and lets the grave go, all
// before Verify checks the grave's byte. Verify must report what the
// grave holds once its maker let go, a leftover grave with the topic's
// files, not what its listing saw (an empty grave, a note).
func TestVerifyReadsGraveAfterItsMakerLetGo(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "a", TopicConfig{Partitions: 1})
	produceSpread(t, l, "a", 1, 20)

	savedHook, savedRemove := testHookAdmin, removeTree
	t.Cleanup(func() { testHookAdmin, removeTree = savedHook, savedRemove })
	removeTree = func(path string) error {
		return &fs.PathError{Op: "unlinkat", Path: path, Err: syscall.EACCES}
	}
	graveMade, moveOn := make(chan struct{}), make(chan struct{})
	testHookAdmin = func(point, _ string) {
		if point == hookGraveMade {
			close(graveMade)
			<-moveOn
		}
	}
	deleted := make(chan error, 1)
	go func() { deleted <- l.DeleteTopic("a") }()
	<-graveMade

	var deleteErr error
	testHookAdmin = func(point, _ string) {
		if point == hookGravesListed {
			// Verify saw the grave empty and held: let the delete go on
			// to its failed removal, which lets the grave go.
			close(moveOn)
			deleteErr = <-deleted
		}
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(deleteErr, syscall.EACCES) {
		t.Fatalf("DeleteTopic with a removal that fails: %v, want EACCES", deleteErr)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemLeftoverGrave || rep.Problems[0].Topic != "a" {
		t.Errorf("Verify: problems %v, notes %q; want the leftover grave of topic a", rep.Problems, rep.Notes)
	}
}

// TestDeleteTopicSweepEndsWithCtx: a DeleteTopicContext removes the
// graves earlier deletes left only while its ctx lasts: ctx ending during
// the removal of one leaves the next for a later call, and the delete
// itself is done. Before, the call removed every leftover grave first,
// whatever its ctx, and a ctx that ended meanwhile failed the delete
// itself ("delete topic a: context canceled").
func TestDeleteTopicSweepEndsWithCtx(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "a", TopicConfig{Partitions: 1})
	// Two graves as a delete killed in its removal leaves them, made
	// after the Open, so that its sweep did not take them.
	for _, g := range []string{"topic-1", "topic-2"} {
		if err := os.MkdirAll(filepath.Join(dir, trashDirName, g, "old", "0"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	saved := removeTree
	t.Cleanup(func() { removeTree = saved })
	removeTree = func(path string) error {
		if filepath.Base(path) == "topic-1" {
			cancel() // the caller gives up while the first leftover goes
		}
		return saved(path)
	}
	if err := l.DeleteTopicContext(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopicConfig("a"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("topic a after its delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, trashDirName, "topic-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the grave under way when ctx ended: %v, want it removed whole", err)
	}
	if _, err := os.Stat(filepath.Join(dir, trashDirName, "topic-2")); err != nil {
		t.Errorf("the grave after ctx ended: %v, want it left for a later call", err)
	}
	removeTree = saved
	mustCreate(t, l, "b", TopicConfig{Partitions: 1})
	if err := l.DeleteTopic("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, trashDirName, "topic-2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the grave after the next DeleteTopic: %v, want it removed", err)
	}
}

// TestGraveNumber: only a name makeGrave writes is a grave's, so that a
// directory someone else named topic-007 is never taken for grave 7's
// (and removed under its byte).
func TestGraveNumber(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int64
		ok   bool
	}{
		{"topic-7", 7, true},
		{"topic-0", 0, true},
		{"topic-4294967295", 4294967295, true},
		{"topic-007", 0, false},
		{"topic-00", 0, false},
		{"topic-", 0, false},
		{"topic-4294967296", 0, false},
		{"topic--1", 0, false},
		{"other-7", 0, false},
	} {
		n, ok := graveNumber(filepath.Join("trash", c.name))
		if ok != c.ok || ok && n != c.n {
			t.Errorf("graveNumber(%s) = %d, %v; want %d, %v", c.name, n, ok, c.n, c.ok)
		}
	}
}
