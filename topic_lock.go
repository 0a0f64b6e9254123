package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The admin calls on one topic name — CreateTopic, DeleteTopic, AlterTopic
// — run one at a time across every goroutine, Log and process, each
// holding the name's admin lock: a byte-range lock on a file of its own,
// topics/<name>.lock~. Serializing them is what lets each call decide from
// what it sees (topic.json there or not) and act on it with nobody else
// changing the name in between: a delete never removes a topic that is
// still being created, a create never writes into a directory being
// deleted, and two alters never lose one another's change.
//
// The lock lives beside the topic's directory, not in it, because a delete
// renames that directory away while holding the lock. '~' is outside the
// topic-name alphabet, so no topic can be named like a lock file, and
// Topics skips lock files. With the longest name (249 characters) the file
// name is 255 bytes, the common file-name limit.
//
// The holder removes the file before it unlocks, so that no lock file
// outlives the call. A caller that was waiting on the removed file gets
// its lock and must not trust it: it checks that the path still names the
// file it locked, and otherwise starts again on the current file. A holder
// that dies leaves the file behind, unlocked (the kernel drops the lock);
// the next caller takes it over and removes it in turn, having finished
// the delete if the one that died was a DeleteTopic that had marked the
// topic (finishDeleteLocked); Topics looks at every name whose lock file
// is there for that reason.
const topicLockSuffix = ".lock~"

// testHookAdmin, when a test sets it, is called at named points of the
// topic admin calls, so that a test can act while a call is in the middle
// (see topic_admin_test.go). It is nil in normal operation.
var testHookAdmin func(point, name string)

// Points at which testHookAdmin is called.
const (
	hookLockBusy     = "lock busy"     // the name's admin lock is held by another caller; about to wait for it
	hookCreateDirs   = "create dirs"   // CreateTopic made the partition directories, topic.json not yet written
	hookDeleteMarked = "delete marked" // DeleteTopic marked every partition deleted, the directory not yet moved
	hookGraveMade    = "grave made"    // a grave was made in trash/, the topic's directory not yet moved into it
	hookGravesListed = "graves listed" // Verify listed the graves in trash/, their bytes not yet checked (name: "")
	hookAlterRead    = "alter read"    // AlterTopic read the config it will change
	hookGrowDirs     = "grow dirs"     // AlterTopic made the new partitions' directories, groups' offsets files not yet grown
	hookGrowOffsets  = "grow offsets"  // AlterTopic grew the groups' offsets files, topic.json not yet written
)

func adminHook(point, name string) {
	if testHookAdmin != nil {
		testHookAdmin(point, name)
	}
}

// lockTopicName takes the admin lock of topic name, waiting while another
// caller holds it, until ctx ends. unlock removes the lock file and
// releases the lock.
func (l *Log) lockTopicName(ctx context.Context, name string) (unlock func(), err error) {
	release, err := l.lockTopicNameWait(ctx, name, true)
	if err != nil {
		return nil, err
	}
	return func() { release(false) }, nil
}

// beginTopicAdmin starts AlterTopic and DeleteTopic: it checks that the
// Log is open and the name valid, then takes the name's admin lock
// (lockTopicName). CreateTopic checks its config between the two, so as
// not to wait for the lock only to fail, and does without it.
func (l *Log) beginTopicAdmin(ctx context.Context, name string) (unlock func(), err error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if err := validateName("topic", name); err != nil {
		return nil, err
	}
	return l.lockTopicName(ctx, name)
}

// tryLockTopicName is lockTopicName without the wait: unlock is nil if
// another caller holds the lock. unlock(true) leaves the lock file
// behind, as a holder that dies does, for the next caller to take over
// (and Topics to look at).
func (l *Log) tryLockTopicName(name string) (unlock func(keepFile bool), err error) {
	return l.lockTopicNameWait(context.Background(), name, false)
}

func (l *Log) lockTopicNameWait(ctx context.Context, name string, wait bool) (unlock func(keepFile bool), err error) {
	path := l.topicLockPath(name)
	for {
		lf, err := openLockFile(path)
		if err != nil {
			return nil, fmt.Errorf("runnel: topic %s: %w", name, err)
		}
		got, err := lf.TryLock(0)
		if err == nil && !got {
			if !wait {
				lf.Close()
				return nil, nil
			}
			adminHook(hookLockBusy, name)
			err = lf.Lock(ctx, 0)
		}
		if err != nil {
			lf.Close()
			return nil, fmt.Errorf("runnel: topic %s: %w", name, err)
		}
		same, err := namesFile(path, lf.File())
		if err != nil {
			lf.Close()
			return nil, fmt.Errorf("runnel: topic %s: %w", name, err)
		}
		if same {
			return func(keepFile bool) {
				// A failed removal leaves the file for the next caller to
				// take over; it cannot leave the name locked.
				if !keepFile {
					os.Remove(path)
				}
				lf.Close()
			}, nil
		}
		lf.Close() // a holder removed the file under us: try the current one
	}
}

func (l *Log) topicLockPath(name string) string {
	return filepath.Join(l.dir, "topics", name+topicLockSuffix)
}

// adminBusy reports whether an admin call on topic name holds its lock
// now, without taking the lock or creating its file: for Verify, which
// changes nothing and needs only read permission. A holder keeps the file
// at the path until it is done, so no file means no holder.
func (l *Log) adminBusy(name string) (bool, error) {
	lf, err := openExistingLockFile(l.topicLockPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("runnel: topic %s: %w", name, err)
	}
	defer lf.Close()
	return lf.HeldByOther(0)
}

// namesFile reports whether path still names the open file f.
func namesFile(path string, f *os.File) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	cur, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, cur), nil
}
