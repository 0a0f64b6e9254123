// Package tracefmt is what runnel's tracing build (go build -tags
// runneltrace) and its reader, internal/tracesteps, share: the steps a
// trace point names, and the trace file's format.
//
// A trace is a timeline of one process: at each point the root package
// passes, a CLOCK_MONOTONIC reading in nanoseconds, the process id and
// the step. CLOCK_MONOTONIC is one clock for every process of the
// machine, so the traces of several processes merge by time, and a step
// of one (a publish, a FUTEX_WAKE) can be paired with what it caused in
// another (a wake-up).
package tracefmt

import "fmt"

// Step names a trace point. The zero Step is no step: an event not yet
// written (the tracing build stores the step last).
type Step uint32

// The steps, in the order one Send passes them. Append: a Send, the
// writer lock, the tail, the frame, the publish. Durable mode's sync
// stage: a round's wait for this process's senders, the sync lock, then
// the wait for another process's fdatasync, or the sync itself (the wait
// for the processes woken last, the fdatasync, the wake-up of the
// waiters). A consumer's Poll: its wake-up, its look, its return.
const (
	_ Step = iota

	SendBegin         // Producer.Send entered
	WriterLocked      // the writer lock taken (or still held from the last append)
	TailFound         // the tail known: found (skipToPublished, a walk) or kept exact
	FrameCommitted    // the frame written and its commit byte set
	Published         // the tail published in partition.meta and sleeping readers woken
	AppendDone        // the writer lock let go, or kept for the next append
	LocalRegroupBegin // a sync round waits for the senders of this process it last released (regroupSync)
	LocalRegroupEnd   // ... and stops waiting
	SyncLockTried     // the sync lock tried (an fcntl)
	SyncWaitBegin     // asleep on the durable sequence: another process syncs
	SyncWoken         // back from that sleep
	RegroupBegin      // the syncer waits for the processes it last woke (awaitWoken)
	RegroupEnd        // ... and stops waiting
	FdatasyncBegin    // a segment's fdatasync begins
	FdatasyncEnd      // ... and ends
	SyncWake          // the syncer's FUTEX_WAKE of the processes waiting for its sync
	SyncWaitEnd       // the partition durable up to the batch (syncShared returned)
	SendReturn        // Producer.Send returns
	PollWoken         // a sleeping Poll woken (or its sleep timed out)
	LookDone          // a Poll's look at the partitions done
	PollReturn        // Consumer.Poll returns

	numSteps
)

var stepNames = [numSteps]string{
	SendBegin:         "send",
	WriterLocked:      "writer-locked",
	TailFound:         "tail-found",
	FrameCommitted:    "frame-committed",
	Published:         "published",
	AppendDone:        "append-done",
	LocalRegroupBegin: "local-regroup",
	LocalRegroupEnd:   "local-regroup-end",
	SyncLockTried:     "sync-lock-tried",
	SyncWaitBegin:     "sync-wait",
	SyncWoken:         "sync-woken",
	RegroupBegin:      "regroup",
	RegroupEnd:        "regroup-end",
	FdatasyncBegin:    "fdatasync",
	FdatasyncEnd:      "fdatasync-end",
	SyncWake:          "sync-wake",
	SyncWaitEnd:       "sync-wait-end",
	SendReturn:        "send-return",
	PollWoken:         "poll-woken",
	LookDone:          "look-done",
	PollReturn:        "poll-return",
}

// String is the step's name in a trace file.
func (s Step) String() string {
	if s > 0 && s < numSteps {
		return stepNames[s]
	}
	return fmt.Sprintf("step(%d)", uint32(s))
}

// ParseStep returns the step a trace file names name.
func ParseStep(name string) (Step, bool) {
	for s := Step(1); s < numSteps; s++ {
		if stepNames[s] == name {
			return s, true
		}
	}
	return 0, false
}
