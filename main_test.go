package runnel

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// patience bounds how long a test waits for something that a correct
// runnel makes happen promptly (a wake-up, a lock handed over, a helper
// goroutine done): so long that a loaded machine under -race never needs
// it, so that running out of it means the thing is not going to happen.
// How promptly things happen is for the benchmarks to measure.
const patience = 2 * time.Minute

// Tests that need another OS process re-run this test binary as a child.
// A child is selected by RUNNEL_TEST_CHILD=<name>; its main is registered in
// childMains by the test file that needs it, and reads its arguments from
// environment variables that file defines.
const childEnv = "RUNNEL_TEST_CHILD"

var childMains = map[string]func() int{}

// slowAlone marks a test that spends its time waiting on child processes
// or the disk, not on a core, to run beside the other such tests
// (t.Parallel): one after another, the seven marked took 123 of the
// package's 177 s. Only a test that sets no package state (test hooks,
// the boot id, the sync observer) may be marked: the tests not marked run
// first, one at a time, and what they set is back before the marked ones
// start.
func slowAlone(t *testing.T) { t.Parallel() }

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		run, ok := childMains[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown test child %q\n", name)
			os.Exit(2)
		}
		os.Exit(run())
	}
	os.Exit(m.Run())
}
