package main

import "github.com/runnel-log/runnel/internal/tracefmt"

// row is one interval the report gives: from a step to the next step to.
// Within one process, each from is paired with the first to after it,
// unless another from comes first (then that one is paired instead):
// this assumes one goroutine at a time goes through the steps, as one
// sender per process does. cross pairs a from with what it causes in the
// other processes: the first to of each of them after the from and
// before the next from of any process, ranked by time (the first woken,
// the second, ...).
type row struct {
	name     string
	from, to tracefmt.Step
	cross    bool
}

// section is a table of docs/PERFORMANCE.md, its rows in its order.
type section struct {
	title string
	rows  []row
}

var sections = []section{
	{"Four processes, traced (BenchmarkDurableProcesses/senders=1)", []row{
		{"woken by the syncer's FUTEX_WAKE", tracefmt.SyncWake, tracefmt.SyncWoken, true},
		{"its sync wait's end to Send returning", tracefmt.SyncWaitEnd, tracefmt.SendReturn, false},
		{"Send to the writer lock taken", tracefmt.SendBegin, tracefmt.WriterLocked, false},
		{"the lock to the tail found", tracefmt.WriterLocked, tracefmt.TailFound, false},
		{"the frame written and committed", tracefmt.TailFound, tracefmt.FrameCommitted, false},
		{"the tail published, readers woken, the lock let go", tracefmt.FrameCommitted, tracefmt.AppendDone, false},
		{"the sync lock tried and the wait begun", tracefmt.AppendDone, tracefmt.SyncWaitBegin, false},
		{"the syncer's regroup (awaitWoken)", tracefmt.RegroupBegin, tracefmt.RegroupEnd, false},
		{"the fdatasync", tracefmt.FdatasyncBegin, tracefmt.FdatasyncEnd, false},
	}},
	{"A follower's second read (BenchmarkCrossProcessLatency/sleep=)", []row{
		{"the producer's Send to its tail published", tracefmt.SendBegin, tracefmt.Published, false},
		{"the publish to the consumer's wake-up", tracefmt.Published, tracefmt.PollWoken, true},
		{"the wake-up to its look done", tracefmt.PollWoken, tracefmt.LookDone, false},
		{"the look done to Poll's return", tracefmt.LookDone, tracefmt.PollReturn, false},
	}},
	{"64 durable senders in one process (BenchmarkProduce/mode=durable/.../sender=64)", []row{
		{"the fdatasync", tracefmt.FdatasyncBegin, tracefmt.FdatasyncEnd, false},
		{"the regroup before it (regroupSync)", tracefmt.LocalRegroupBegin, tracefmt.LocalRegroupEnd, false},
		{"the sync wait's end (then the settle) to the next fdatasync", tracefmt.SyncWaitEnd, tracefmt.FdatasyncBegin, false},
		{"an fdatasync's end to the next one's start", tracefmt.FdatasyncEnd, tracefmt.FdatasyncBegin, false},
	}},
	{"More steps", []row{
		{"Send to Send returning", tracefmt.SendBegin, tracefmt.SendReturn, false},
		{"the frame committed to the tail published", tracefmt.FrameCommitted, tracefmt.Published, false},
		{"the tail published to the lock let go (or kept)", tracefmt.Published, tracefmt.AppendDone, false},
		{"the lock let go to the sync lock tried", tracefmt.AppendDone, tracefmt.SyncLockTried, false},
		{"the sync lock tried to the wait begun", tracefmt.SyncLockTried, tracefmt.SyncWaitBegin, false},
		{"asleep for another process's sync", tracefmt.SyncWaitBegin, tracefmt.SyncWoken, false},
		{"woken to the sync wait's end", tracefmt.SyncWoken, tracefmt.SyncWaitEnd, false},
		{"the fdatasync's end to the FUTEX_WAKE", tracefmt.FdatasyncEnd, tracefmt.SyncWake, false},
		{"the syncer's FUTEX_WAKE to its sync wait's end", tracefmt.SyncWake, tracefmt.SyncWaitEnd, false},
	}},
}
