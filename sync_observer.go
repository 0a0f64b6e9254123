package runnel

import "sync/atomic"

// fdatasync makes a file's data durable (platformFdatasync says how), and
// tells a sync observer, if a test set one.
func fdatasync(fd int) error {
	observeSyncFD(fd, false, nil)
	err := platformFdatasync(fd)
	observeSyncFD(fd, true, err)
	return err
}

// syncEvent is one sync runnel makes: of a file's data (by descriptor), of a
// directory's entries, or of partition.meta's checkpoint (by path).
type syncEvent struct {
	fd   int    // -1 when path names what was synced
	path string // a directory, or partition.meta
	kind syncKind
	// done is false just before the sync starts (what is there then is
	// what the sync makes durable) and true once it ended, with err.
	done bool
	err  error
}

type syncKind int

const (
	syncData      syncKind = iota // fdatasync of a file
	syncDirectory                 // fsync of a directory
	syncMeta                      // msync of partition.meta after a checkpoint
)

// syncObserver, when set (by the power-loss test), sees every sync, so that
// it can model what a disk keeps: what was there when a sync began is
// durable once it ended without error, and anything later may be lost. It
// sees the start and the end of each sync, from the same goroutine.
var syncObserver atomic.Pointer[func(syncEvent)]

func observeSyncFD(fd int, done bool, err error) {
	if obs := syncObserver.Load(); obs != nil {
		(*obs)(syncEvent{fd: fd, kind: syncData, done: done, err: err})
	}
}

func observeSync(path string, kind syncKind, done bool, err error) {
	if obs := syncObserver.Load(); obs != nil {
		(*obs)(syncEvent{fd: -1, path: path, kind: kind, done: done, err: err})
	}
}
