package runnel

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestGroupSucceedsNeverTakesLocked: a successor cannot take a partition
// its predecessor still holds: a member process stopped dead (SIGSTOP)
// keeps its locks, and the successor's checks take nothing from it.
func TestGroupSucceedsNeverTakesLocked(t *testing.T) {
	const nparts = 2
	l, child := startLeaser(t, nparts)
	if err := child.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer child.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(t, patience, "the child to stop", func() bool { return processState(t, child.cmd.Process.Pid) == "T" })

	s := successor(t, l, child.incarnationNow())
	groupChecks(t, s)(3)
	if ps := s.Partitions(); len(ps) > 0 {
		t.Fatalf("the successor owns %v, which its live (stopped) predecessor holds", ps)
	}
}

// processState is the state letter /proc gives process pid ("T":
// stopped by a signal).
func processState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) == 0 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return f[0]
}
