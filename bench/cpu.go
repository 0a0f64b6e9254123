package main

import (
	"syscall"
	"time"
)

// CPU per record: the CPU time (user and system) that every process of a
// cell used during its timed phase, divided by the records of the phase.
// On a shared machine a rate moves with the neighbours' load; the CPU a
// record costs moves far less, so the report gives it beside the rate.

// cpuSelf is the CPU time this process has used so far.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// helperProc is a store served by a process of its own (a server), whose
// CPU time counts with the cell's and which the harness profiles too.
type helperProc interface {
	// HelperCPU is the CPU time the helper has used so far.
	HelperCPU() (time.Duration, error)
	// HelperProfile starts a CPU profile of the helper into path and
	// returns its stop function.
	HelperProfile(path string) (stop func())
}

// cpuClock reads the CPU time of this process and of a store's helper
// process, for a timed phase.
type cpuClock struct{ st any }

// now returns the CPU time used so far by this process and the helper
// together, and by the helper alone.
func (c cpuClock) now() (all, helper time.Duration) {
	if h, ok := c.st.(helperProc); ok {
		if t, err := h.HelperCPU(); err == nil {
			helper = t
		}
	}
	return cpuSelf() + helper, helper
}
