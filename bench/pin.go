package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// -pin-server gives each server process (runnel serve, the stub broker)
// the last CPU and every other child the others, with taskset(1): client
// and server each with cores of their own, as on a machine with more
// cores than this one's two, where the server's work and the client's
// can overlap instead of sharing both cores. The children inherit the
// choice through the environment.

const pinEnv = "RUNNEL_BENCH_PIN_SERVER"

// pinnedCommand is the command line that runs exe with args for a child
// of role, under taskset when -pin-server asked for it.
func pinnedCommand(role, exe string, args ...string) (string, []string) {
	n := runtime.NumCPU()
	if os.Getenv(pinEnv) == "" || n < 2 {
		return exe, args
	}
	cpus := fmt.Sprintf("0-%d", n-2)
	if role == "serve" {
		cpus = strconv.Itoa(n - 1)
	}
	return "taskset", append([]string{"-c", cpus, exe}, args...)
}
