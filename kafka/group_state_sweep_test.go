package kafka

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// plantGroupState writes a state file (unless noState), its lock and a
// temporary file for the server at addr, last written age ago.
func plantGroupState(t *testing.T, dir, addr string, age time.Duration, noState bool) string {
	t.Helper()
	path := groupStatePath(dir, addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{path + groupStateLockSuffix}
	if !noState {
		files = append(files, path, path+groupStateTempSuffix)
	}
	for _, p := range files {
		if err := os.WriteFile(p, encodeGroupState(nil), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// groupStateNames lists kafka/groups.
func groupStateNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, stateDir, groupsDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestGroupStateSweep: a server opening its group state removes what
// stopped servers at other addresses left that nobody will resume: a
// state file not written for staleGroupState, with its lock and a
// temporary file, and a lock file with no state file. It keeps a recent
// one (its server may be restarting), one whose lock a live server holds
// however old, and its own. Before, every address a server ever had kept
// its files: two for good per run of a server on a port of the moment.
func TestGroupStateSweep(t *testing.T) {
	dir := t.TempDir()
	old := 2 * staleGroupState
	plantGroupState(t, dir, "127.0.0.1:40001", old, false)         // stale: goes
	plantGroupState(t, dir, "127.0.0.1:40002", 0, true)            // a lock alone: goes
	recent := plantGroupState(t, dir, "127.0.0.1:40003", 0, false) // kept
	live := plantGroupState(t, dir, "127.0.0.1:40004", old, false) // kept: locked
	held, err := os.Open(live + groupStateLockSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	own := plantGroupState(t, dir, "127.0.0.1:9092", old, false) // its own, however old
	warn := func(msg string, args ...any) { t.Errorf("warn: %s %v", msg, args) }
	f, _, err := openGroupState(dir, "127.0.0.1:9092", warn)
	if err != nil || f == nil {
		t.Fatalf("openGroupState: %v, %v", f, err)
	}
	defer f.close()
	var want []string
	for _, p := range []string{recent, live, own} {
		want = append(want, filepath.Base(p), filepath.Base(p)+groupStateLockSuffix)
	}
	want = append(want, filepath.Base(recent)+groupStateTempSuffix, filepath.Base(live)+groupStateTempSuffix)
	slices.Sort(want)
	if diff := cmp.Diff(want, groupStateNames(t, dir)); diff != "" {
		t.Errorf("kafka/groups after a server opened its state (-want +got):\n%s", diff)
	}
}

// TestGroupStateLockWaitsOutSweep: a server whose address's lock a
// sweeper holds for a moment, and removes, takes the lock once the
// sweeper let go (a new lock file: the one it opened is gone) and resumes
// its groups, rather than taking the sweeper for another live server at
// its address.
func TestGroupStateLockWaitsOutSweep(t *testing.T) {
	dir, addr := t.TempDir(), "127.0.0.1:9092"
	path := plantGroupState(t, dir, addr, 0, true)
	sweeper, err := os.Open(path + groupStateLockSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(sweeper.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	busy := make(chan struct{})
	var once sync.Once
	testHookGroupStateLockBusy = func() { once.Do(func() { close(busy) }) }
	t.Cleanup(func() { testHookGroupStateLockBusy = nil })
	type opened struct {
		f   *groupStateFile
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, _, err := openGroupState(dir, addr, func(msg string, args ...any) { t.Errorf("warn: %s %v", msg, args) })
		done <- opened{f, err}
	}()
	<-busy // the server found the lock taken, on the file it opened
	if err := os.Remove(path + groupStateLockSuffix); err != nil {
		t.Fatal(err)
	}
	sweeper.Close()
	got := <-done
	if got.err != nil || got.f == nil {
		t.Fatalf("openGroupState behind a sweeper: %v, %v; want the state file", got.f, got.err)
	}
	defer got.f.close()
	if !sameFile(got.f.lock, path+groupStateLockSuffix) {
		t.Error("the server holds a lock file that is no longer at its name")
	}
}

// TestGroupStateDatedAtClose: a server dates its state file as it stops,
// so that a sweep measures how long its address has had no server, not
// how long its groups went without a rebalance: a file last written two
// days ago by a server that stopped just now is kept by the next server
// at another address.
func TestGroupStateDatedAtClose(t *testing.T) {
	dir := t.TempDir()
	first, _, err := openGroupState(dir, "127.0.0.1:40001", t.Logf)
	if err != nil || first == nil {
		t.Fatalf("openGroupState: %v, %v", first, err)
	}
	first.save("g", &savedGroup{name: "g", generation: 1, protocolType: "connect", protocol: "p", members: []savedMember{{
		id: "m", session: time.Second, rebalance: time.Second,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "p"}},
	}}})
	old := time.Now().Add(-2 * staleGroupState)
	if err := os.Chtimes(first.path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	second, _, err := openGroupState(dir, "127.0.0.1:40002", t.Logf)
	if err != nil || second == nil {
		t.Fatalf("openGroupState: %v, %v", second, err)
	}
	defer second.close()
	if saved, err := readGroupState(first.path); err != nil || len(saved) != 1 {
		t.Errorf("the state of a server stopped just now, its groups settled two days before: %v, %v; want it kept", saved, err)
	}
}
