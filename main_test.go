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
