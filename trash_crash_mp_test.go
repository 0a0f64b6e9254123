package runnel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func init() { childMains["grave-die"] = graveDieMain }

// graveDieMain deletes topic $RUNNEL_GRAVE_TOPIC of $RUNNEL_GRAVE_DIR and
// stops inside the removal of its grave, past the move: it prints
// "removing <grave>" and waits there for the parent to kill it. With
// $RUNNEL_GRAVE_AT=made it stops instead once it made its grave, before
// the move, and prints "made".
func graveDieMain() int {
	removeTree = func(grave string) error {
		fmt.Printf("removing %s\n", grave)
		io.Copy(io.Discard, os.Stdin) // until killed
		return errors.New("not killed")
	}
	if os.Getenv("RUNNEL_GRAVE_AT") == "made" {
		testHookAdmin = func(point, _ string) {
			if point == hookGraveMade {
				fmt.Println("made")
				io.Copy(io.Discard, os.Stdin)
			}
		}
	}
	l, err := Open(os.Getenv("RUNNEL_GRAVE_DIR"), mpOptions(Options{}))
	if err != nil {
		return mpFail("grave-die", err)
	}
	err = l.DeleteTopic(os.Getenv("RUNNEL_GRAVE_TOPIC"))
	return mpFail("grave-die", fmt.Errorf("DeleteTopic returned %v instead of being killed", err))
}

// killInGraveRemoval deletes topic of the log in dir in a child process
// and kills it with SIGKILL once it has moved the topic's directory into
// its grave and begun to remove it. It returns the grave, which holds the
// topic's files.
func killInGraveRemoval(t *testing.T, dir, topic string) (grave string) {
	t.Helper()
	said := killDeleteAt(t, dir, topic, "removing")
	grave, ok := strings.CutPrefix(said, "removing ")
	if !ok {
		t.Fatalf("child said %q", said)
	}
	if _, err := os.Stat(filepath.Join(grave, topic, "0")); err != nil {
		t.Fatalf("the killed delete's grave: %v", err)
	}
	return grave
}

// killDeleteAt deletes topic of the log in dir in a child process and
// kills it with SIGKILL once it says it is at point at (graveDieMain). It
// returns what the child said.
func killDeleteAt(t *testing.T, dir, topic, at string) string {
	t.Helper()
	cmd := mpChild("grave-die", "RUNNEL_GRAVE_DIR="+dir, "RUNNEL_GRAVE_TOPIC="+topic, "RUNNEL_GRAVE_AT="+at)
	stdin, stdout := startPiped(t, cmd)
	defer stdin.Close()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child ended before it got there: %v", out.Err())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	return out.Text()
}

// TestGraveOfKilledDeleteRemovedAtOpen kills a DeleteTopic between the
// move of the topic's directory into the trash and the end of its
// removal: the next Open of the log removes the grave, logging its path,
// and the name can be used again.
func TestGraveOfKilledDeleteRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "g", TopicConfig{Partitions: 2})
	produceSpread(t, l, "g", 2, 200)
	l.Close()

	grave := killInGraveRemoval(t, dir, "g")

	var logged syncBuffer
	l = openTest(t, dir, &Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if _, err := os.Stat(grave); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the grave after Open: %v, want it removed", err)
	}
	checkNoAdminDebris(t, dir)
	if !strings.Contains(logged.String(), grave) {
		t.Errorf("Open's log does not name the grave it removed, %s:\n%s", grave, logged.String())
	}
	if _, err := l.DescribeTopic("g"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DescribeTopic after the killed delete: %v, want ErrTopicNotFound", err)
	}
	mustCreate(t, l, "g", TopicConfig{Partitions: 1})
}
