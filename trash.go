package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A topic's directory leaves topics/ by a rename into a grave,
// trash/topic-<n>/<name> (buryTopicDir): gone at once for every process,
// whatever its size. The call that made the grave (a DeleteTopic, the
// finishing of a dead one's delete, a CreateTopic clearing an unfinished
// creation) then removes it (removeGrave), after it let the name's admin
// lock go: a CreateTopic of the name need not wait for the files.
//
// A grave outlives its call if the process dies between the rename and
// the end of the removal (SIGKILL, a power loss), or if the removal fails
// (EIO, EACCES on a file a user made, ...); it may hold gigabytes of
// segments. sweepTrash removes such graves: at Open of a Log that may
// write in trash/, at the end of each DeleteTopic (while its ctx lasts:
// a call bounded by it does not wait out others' gigabytes), and in
// Repair.
//
// Who may remove a grave is decided by one lock: the maker of grave
// topic-<n> holds byte n of trash/graves.lock from before it makes the
// grave until it has removed it, or given up (makeGrave, burial.remove).
// A sweep removes a grave only under that byte, taken without waiting: a
// byte taken means a maker at work in the grave (about to move a
// directory into it, or removing it) or another sweep, and the grave is
// left to them; a byte free means nobody works in it, and the kernel
// frees a dead maker's byte. A maker picks its n only by taking the byte,
// so none makes a grave a sweep is removing.
//
// A grave runnel made holds one topic directory, or nothing (its maker
// died before the rename). Anything else in trash/ (an entry not named
// topic-<n> or not a directory, a grave with something else in it) is
// none of runnel's making: it is left alone, and Verify notes it. Older
// runnels made graves of the same name without the byte: their graves
// are swept as a dead maker's, so they should not delete topics beside
// this one.

// trashDirName is the directory of the graves, outside topics/ so that no
// topic name can meet it.
const trashDirName = "trash"

// gravePrefix begins the name of every grave in trash/.
const gravePrefix = "topic-"

// graveLockName is the graves' lock file in trash/ (see above). It stays.
const graveLockName = "graves.lock"

func (l *Log) trashDir() string { return filepath.Join(l.dir, trashDirName) }

func (l *Log) graveLockPath() string { return filepath.Join(l.trashDir(), graveLockName) }

// graveTries bounds makeGrave's picks of a number, as os.MkdirTemp does.
const graveTries = 10000

// burial is a grave its maker holds: byte n of the graves' lock file,
// held through lf until remove.
type burial struct {
	path string
	lf   *lockFile
}

// buryTopicDir moves the directory of topic name out of topics/, so that
// it is gone at once for every process, into a grave it holds, which the
// caller removes (also when err is not nil: the directory may be in it).
// The caller holds the name's admin lock.
func (l *Log) buryTopicDir(name string) (grave *burial, err error) {
	if err := os.MkdirAll(l.trashDir(), 0o755); err != nil {
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	lf, err := openLockFile(l.graveLockPath())
	if err != nil {
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	path, err := makeGrave(l.trashDir(), lf)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	grave = &burial{path: path, lf: lf}
	adminHook(hookGraveMade, name)
	if err := os.Rename(l.topicDir(name), filepath.Join(path, name)); err != nil {
		return grave, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(l.dir, "topics")); err != nil {
		return grave, fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	return grave, nil
}

// makeGrave makes an empty grave in trash, topic-<n> for a random n
// (unique, so that no two deletes of one name can collide), and returns
// it holding byte n of lf, the graves' lock file.
func makeGrave(trash string, lf *lockFile) (string, error) {
	for range graveTries {
		n := rand.Uint32()
		got, err := lf.TryLock(int64(n))
		if err != nil {
			return "", err
		}
		if !got {
			continue // another maker's number, or a sweep's
		}
		path := filepath.Join(trash, gravePrefix+strconv.FormatUint(uint64(n), 10))
		err = os.Mkdir(path, 0o700)
		if err == nil {
			return path, nil
		}
		lf.Unlock(int64(n))
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("make a grave in %s: no free name in %d tries", trash, graveTries)
}

// graveNumber is the n of a grave named topic-<n>, as makeGrave writes
// n: a name it would not write (topic-007) is none of runnel's making,
// though it would parse to the byte of another's (topic-7).
func graveNumber(path string) (int64, bool) {
	digits, ok := strings.CutPrefix(filepath.Base(path), gravePrefix)
	n, err := strconv.ParseUint(digits, 10, 32)
	return int64(n), ok && err == nil && strconv.FormatUint(n, 10) == digits
}

// remove removes grave g (removeGrave) and lets its byte go.
func (g *burial) remove(name string) error {
	defer g.lf.Close()
	if err := removeGrave(g.path); err != nil {
		return fmt.Errorf("runnel: delete topic %s: %w", name, err)
	}
	return nil
}

// removeAfter removes grave g, if there is one, after the call that made
// it, which failed with err or not: it returns err, or else the removal's
// error.
func (g *burial) removeAfter(name string, err error) error {
	if g == nil {
		return err
	}
	if rerr := g.remove(name); err == nil {
		err = rerr
	}
	return err
}

// removeTree is os.RemoveAll. Tests replace it to land a file in a grave
// while a pass removes it, as a straggler does (see removeGrave), or to
// stop a removal under way.
var removeTree = os.RemoveAll

// gravePasses bounds removeGrave's passes over a grave: far more than the
// stragglers one move can leave need.
const gravePasses = 8

// removeGrave removes a grave. A pass may find a directory not empty when
// it removes it at the end: a call (of any process) that had resolved a
// path into the topic's directory before the move can still create its
// file there afterwards, into the grave (createMeta's temporary file did,
// among the admin churn of TestTopicAdminMultiProcess), once the pass has
// listed it. Such a straggler is one file per call under way at the move,
// and none lands in a directory once it is removed, so another pass
// removes the lot; failing instead, a DeleteTopic past its commit point
// said it failed, and the straggler's file stayed in the trash until a
// sweep (its creator removes it by a path that no longer leads there).
func removeGrave(grave string) error {
	var err error
	for range gravePasses {
		err = removeTree(grave)
		// rmdir of a directory not empty: ENOTEMPTY, or EEXIST, which
		// POSIX allows too.
		if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", grave, err)
	}
	return nil
}

// foundGrave is an entry of trash/ named as a grave, as listGraves found
// it.
type foundGrave struct {
	path    string
	n       int64  // its byte in the graves' lock file
	topic   string // the topic directory it holds; "" if none
	foreign bool   // not a grave runnel made, or it holds something else
	err     error  // it could not be read
}

// readGrave reads what the grave at path holds.
func readGrave(path string) (g foundGrave, exists bool) {
	g.path = path
	n, numbered := graveNumber(path)
	g.n = n
	// Anything but a directory (a file, a link, a FIFO, which an open
	// would wait on) is none of runnel's making.
	if st, err := os.Lstat(path); err == nil && !st.IsDir() {
		g.foreign = true
		return g, true
	}
	inside, err := os.ReadDir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return g, false // removed meanwhile
	case !numbered:
		g.foreign = true
	case err != nil:
		g.err = err
	case len(inside) == 1 && inside[0].IsDir() && validateName("topic", inside[0].Name()) == nil:
		g.topic = inside[0].Name()
	case len(inside) > 0:
		g.foreign = true
	}
	return g, true
}

// listGraves lists the graves in trash/, and as foreign every other entry
// but the lock file: none, after one failed read, when there is no
// trash/.
func (l *Log) listGraves() ([]foundGrave, error) {
	entries, err := os.ReadDir(l.trashDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runnel: read %s: %w", l.trashDir(), err)
	}
	var graves []foundGrave
	for _, e := range entries {
		if e.Name() == graveLockName {
			continue
		}
		if g, ok := readGrave(filepath.Join(l.trashDir(), e.Name())); ok {
			graves = append(graves, g)
		}
	}
	return graves, nil
}

// sweptGrave is a grave a sweep removed, or failed to remove.
type sweptGrave struct {
	path  string
	topic string // "" for an empty grave
	bytes int64  // what its files held
	err   error
}

// sweepTrash removes the graves of topic (of every topic, and the empty
// graves, if topic is "") that nobody works in, by the rule at the top of
// this file, and returns what it removed or failed to. It never waits
// for a lock, and starts no grave once ctx has ended (a grave under way
// is removed whole). A Log that may not write in trash/ leaves it as it
// is (Verify reports the graves). The error is for failing to read
// trash/, or ctx's.
func (l *Log) sweepTrash(ctx context.Context, topic string) ([]sweptGrave, error) {
	graves, err := l.listGraves()
	if err != nil || len(graves) == 0 {
		return nil, err
	}
	if unix.Access(l.trashDir(), unix.W_OK) != nil {
		return nil, nil
	}
	lf, err := openLockFile(l.graveLockPath())
	if err != nil {
		return nil, fmt.Errorf("runnel: sweep %s: %w", l.trashDir(), err)
	}
	defer lf.Close()
	var swept []sweptGrave
	for _, g := range graves {
		if g.foreign || topic != "" && g.topic != topic {
			continue
		}
		if err := ctx.Err(); err != nil {
			return swept, err
		}
		if s, ok := sweepGrave(g, lf); ok {
			swept = append(swept, s)
		}
	}
	return swept, nil
}

// sweepGrave removes grave g under its byte of lf, the graves' lock file,
// if that is free; ok is false if it left g alone.
func sweepGrave(g foundGrave, lf *lockFile) (s sweptGrave, ok bool) {
	s = sweptGrave{path: g.path, topic: g.topic, err: g.err}
	if g.err != nil {
		return s, true
	}
	got, err := lf.TryLock(g.n)
	if err != nil || !got {
		s.err = err
		return s, err != nil // a maker at work in it, or another sweep
	}
	defer lf.Unlock(g.n)
	// Under the byte, the grave is as its maker left it, or gone.
	g, exists := readGrave(g.path)
	if !exists || g.foreign {
		return s, false
	}
	s.topic = g.topic
	s.bytes = treeSize(g.path)
	if s.err = removeGrave(g.path); s.err != nil {
		s.err = fmt.Errorf("runnel: sweep %s: %w", filepath.Dir(g.path), s.err)
	}
	return s, true
}

// graveHeld reports whether a maker or a sweep holds grave g's byte,
// without taking it or creating the lock file: for Verify.
func (l *Log) graveHeld(g foundGrave) (bool, error) {
	lf, err := openExistingLockFile(l.graveLockPath())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer lf.Close()
	return lf.HeldByOther(g.n)
}

// sweepTrashLogged is sweepTrash of every grave, for Open and DeleteTopic:
// what it removed and failed to remove is logged, not returned, for a
// grave left is disk space, not a fault of the call.
func (l *Log) sweepTrashLogged(ctx context.Context) {
	swept, err := l.sweepTrash(ctx, "")
	if err != nil && ctx.Err() == nil {
		l.opts.Logger.Warn("runnel: cannot look for graves left by deletes (Repair or the next Open looks again)", "err", err)
	}
	for _, s := range swept {
		if s.err != nil {
			l.opts.Logger.Warn("runnel: cannot remove a grave left by a delete (Repair or the next Open tries again)", "path", s.path, "topic", s.topic, "err", s.err)
			continue
		}
		l.opts.Logger.Info("runnel: removed a grave left by a delete", "path", s.path, "topic", s.topic, "bytes", s.bytes)
	}
}

// treeSize adds up the sizes of the files under dir, as far as it can
// read them.
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
