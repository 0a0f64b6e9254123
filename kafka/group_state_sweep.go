package kafka

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-log/runnel/internal/regfile"
)

// What servers at other addresses left in kafka/groups that nobody will
// resume. A server's file and its lock stay when it stops, for the next
// server at its address; but a server started on a port of the moment
// (`-listen 127.0.0.1:0`, an application's tests) has no next one, and
// each run left two files for good. So a server, as it opens its own,
// removes another address's file, its lock and a temporary write a crash
// left, once nobody holds that lock and the file has not been written for
// staleGroupState (a server dates its file as it stops, so that is as
// long since it stopped, or crashed having written it last): a server
// back after that long would resume groups whose clients gave their
// sessions up long before (a Kafka member's session lasts seconds to
// minutes), and its clients rejoin as they do after a missing file. A lock file with no state file holds nothing to
// resume and goes at once.
//
// The sweeper holds the lock it tests while it removes the files, so a
// server starting at that address meanwhile finds the lock taken for a
// moment (openGroupState waits that out), or the lock file gone from
// under the one it opened (it opens the name again).

// staleGroupState is how long a stopped server's group state is kept for
// its next start at its address.
const staleGroupState = 24 * time.Hour

// sweepGroupStates removes the stale state of servers at addresses other
// than own's (a state file's path) in the groups directory.
func sweepGroupStates(own string, warn func(msg string, args ...any)) {
	dir := filepath.Dir(own)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), groupStateLockSuffix)
		if !ok || filepath.Join(dir, name) == own {
			continue
		}
		sweepGroupState(filepath.Join(dir, name), warn)
	}
}

// sweepGroupState removes the state file at path, its temporary file and
// its lock, if no server holds the lock and the file is stale or missing.
func sweepGroupState(path string, warn func(msg string, args ...any)) {
	lockPath := path + groupStateLockSuffix
	lock, err := regfile.Open(lockPath, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer lock.Close()
	if flock(lock, syscall.LOCK_EX|syscall.LOCK_NB) != nil || !sameFile(lock, lockPath) {
		return // a live server's, or another sweeper's
	}
	if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) < staleGroupState {
		return
	}
	for _, p := range []string{path, path + groupStateTempSuffix, lockPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			warn("kafka: a stopped server's group state not removed", "file", p, "err", err)
			return
		}
	}
}
