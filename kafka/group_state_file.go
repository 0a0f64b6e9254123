package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-log/runnel/internal/flockwait"
	"github.com/runnel-log/runnel/internal/regfile"
	"github.com/twmb/franz-go/pkg/kbin"
)

// A server's Kafka groups outlive it in a file of its own,
// kafka/groups/<address>, which a server restarted at the same address
// loads (group_resume.go), as a Kafka coordinator taking a group over
// loads it from __consumer_offsets: its clients heartbeat on without
// joining again.
//
// Whose file is whose: the key is the address the server's clients
// reconnect to — Options.Advertise, or else the address it listens on —
// since only the clients of a server at that address come back to the
// groups in the file. Several servers serving one directory each have
// their own. A server holds an flock on <address>.lock while it lives:
// a second server at the same address (a misconfiguration, or an upgrade
// that starts the new server before the old one has let go) neither
// loads nor writes the file, and its members rejoin as new ones. A
// server removes other addresses' files once stale and unlocked
// (group_state_sweep.go). Taking over a stopped server's file at
// another address, as the producer journals are taken over, would resume
// groups whose clients do not come: they still dial the address they
// knew.
//
// The file is rewritten whole (temp file, rename) when a group settles:
// a member's SyncGroup answered in a Stable generation, a member gone, a
// group emptied — never at a heartbeat. It is not fsynced: it saves a
// rejoin, never data, and what a power loss can leave — the previous
// version, or none — costs at most that rejoin. A state older than the
// clients' is refused by them at its generation, and its members' runnel
// sides take back only what no live member holds (the ownership locks
// decide), so a stale file makes its clients rejoin as a missing one
// does. A machine crash takes down clients on the machine too.
//
// Format: the magic "RNKGRP01", the payload's length (uint32) and its
// CRC-32C (uint32), all big-endian, then the payload: an int32 count of
// groups, each as appendSavedGroup writes it.

const (
	groupsDir          = "groups"
	groupStateMagic    = "RNKGRP01"
	groupStateHeader   = len(groupStateMagic) + 8
	maxGroupStateBytes = 64 << 20 // thousands of members' metadata; past it, damage

	groupStateTempSuffix = ".tmp"  // the file being written (write)
	groupStateLockSuffix = ".lock" // held by the server at the address

	// groupStateLockWait bounds how long a server waits for its
	// address's lock before it takes it for another live server's: a
	// sweeper (group_state_sweep.go) holds it for a few system calls.
	groupStateLockWait = time.Second
)

// groupStateFile is a server's state file, locked, and what it holds,
// each group encoded.
type groupStateFile struct {
	path string
	lock *os.File
	warn func(msg string, args ...any)

	mu     sync.Mutex
	groups map[string][]byte // by name: appendSavedGroup's encoding
	frozen bool              // the server is shutting down: the file stays as it is
}

// groupStatePath is the file of the server whose clients reach it at
// addr.
func groupStatePath(logDir, addr string) string {
	return filepath.Join(logDir, stateDir, groupsDir, url.QueryEscape(addr))
}

// openGroupState locks the state file of the server at addr and loads
// it. A file that does not check out is reported through warn, with its
// path and the position, and ignored (its groups' members rejoin). A file
// another live server holds gives nil: that server's groups are its own.
func openGroupState(logDir, addr string, warn func(msg string, args ...any)) (*groupStateFile, []savedGroup, error) {
	path := groupStatePath(logDir, addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("kafka: group state: %w", err)
	}
	lock, err := lockGroupState(path)
	if errors.Is(err, context.DeadlineExceeded) {
		warn("kafka: another server at this address serves the directory: groups are not resumed or kept here", "file", path)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: group state %s: %w", path, err)
	}
	sweepGroupStates(path, warn)
	if err := os.Remove(path + groupStateTempSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		warn("kafka: group state: a write a crash cut short is left", "err", err)
	}
	f := &groupStateFile{path: path, lock: lock, warn: warn, groups: map[string][]byte{}}
	saved, err := readGroupState(path)
	if err != nil {
		warn("kafka: group state ignored: members rejoin", "err", err)
		saved = nil
	}
	for i := range saved {
		f.groups[saved[i].name] = appendSavedGroup(nil, &saved[i])
	}
	return f, saved, nil
}

// lockGroupState takes the lock of the state file at path. It waits up
// to groupStateLockWait for a holder (context.DeadlineExceeded: another
// live server at the address), and opens the name again when a sweeper
// removed the file it locked.
func lockGroupState(path string) (*os.File, error) {
	ctx, cancel := context.WithTimeout(context.Background(), groupStateLockWait)
	defer cancel()
	for {
		lock, err := regfile.Open(path+groupStateLockSuffix, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		err = flock(lock, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if testHookGroupStateLockBusy != nil {
				testHookGroupStateLockBusy()
			}
			err = flockwait.Lock(ctx, int(lock.Fd()), syscall.LOCK_EX)
		}
		if err != nil {
			lock.Close()
			return nil, err
		}
		if sameFile(lock, path+groupStateLockSuffix) {
			return lock, nil
		}
		lock.Close()
	}
}

// testHookGroupStateLockBusy, if set, runs when lockGroupState finds the
// lock taken, before it waits.
var testHookGroupStateLockBusy func()

// readGroupState reads and checks a state file; a missing one holds no
// group.
func readGroupState(path string) ([]savedGroup, error) {
	fd, err := regfile.Open(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: group state %s: %w", path, err)
	}
	defer fd.Close()
	b, err := io.ReadAll(io.LimitReader(fd, int64(groupStateHeader+maxGroupStateBytes+1)))
	if err != nil {
		return nil, fmt.Errorf("kafka: group state %s: %w", path, err)
	}
	return decodeGroupState(path, b)
}

// decodeGroupState checks and decodes a state file's bytes; an error
// names the file and the byte where it went wrong.
func decodeGroupState(path string, b []byte) ([]savedGroup, error) {
	damaged := func(pos int, what string) error {
		return fmt.Errorf("kafka: group state %s: damaged at byte %d: %s", path, pos, what)
	}
	if len(b) < groupStateHeader || string(b[:len(groupStateMagic)]) != groupStateMagic {
		return nil, damaged(0, "not a group state file")
	}
	n := binary.BigEndian.Uint32(b[len(groupStateMagic):])
	sum := binary.BigEndian.Uint32(b[len(groupStateMagic)+4:])
	payload := b[groupStateHeader:]
	switch {
	case n > maxGroupStateBytes || int(n) != len(payload):
		return nil, damaged(len(groupStateMagic), fmt.Sprintf("payload of %d bytes, %d in the file", n, len(payload)))
	case crc32.Checksum(payload, crc32c) != sum:
		return nil, damaged(groupStateHeader, "checksum mismatch")
	}
	d := &groupStateReader{r: kbin.Reader{Src: payload}, size: len(payload)}
	var groups []savedGroup
	count := d.r.ArrayLen()
	for i := int32(0); i < count && d.ok(); i++ {
		g, ok := d.group()
		if !ok {
			break
		}
		groups = append(groups, g)
	}
	if d.ok() && len(d.r.Src) > 0 {
		d.fail("trailing bytes")
	}
	if !d.ok() {
		return nil, damaged(groupStateHeader+d.pos, d.wrong)
	}
	return groups, nil
}

// encodeGroupState makes a state file's bytes of groups' encodings.
func encodeGroupState(groups map[string][]byte) []byte {
	payload := kbin.AppendArrayLen(nil, len(groups))
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		payload = append(payload, groups[name]...)
	}
	b := append([]byte(groupStateMagic), make([]byte, 8)...)
	binary.BigEndian.PutUint32(b[len(groupStateMagic):], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[len(groupStateMagic)+4:], crc32.Checksum(payload, crc32c))
	return append(b, payload...)
}

// save records group g (nil: forgets group name) and rewrites the file.
// A write that fails is logged: the file is then stale, which costs a
// rejoin after a restart.
func (f *groupStateFile) save(name string, g *savedGroup) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return
	}
	if g == nil {
		if _, ok := f.groups[name]; !ok {
			return
		}
		delete(f.groups, name)
	} else {
		f.groups[name] = appendSavedGroup(nil, g)
	}
	if err := f.write(); err != nil {
		f.warn("kafka: group state not written: members rejoin after a restart", "err", err)
	}
}

// write replaces the file with what f holds, through <address>.tmp
// first so that a reader never sees half of it. Only the server holding
// the lock writes, so one temporary name will do: a crash mid-write
// leaves that one file, which the next write replaces and the next
// server at the address removes (openGroupState), where a name of its
// own at each write left one more at each such crash.
func (f *groupStateFile) write() error {
	tmp := f.path + groupStateTempSuffix
	err := regfile.WriteFile(tmp, encodeGroupState(f.groups), 0o644)
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("kafka: group state %s: %w", f.path, err)
	}
	return nil
}

// freeze keeps the file as it is from now on: the server is shutting
// down, and its members' removal is not their leaving.
func (f *groupStateFile) freeze() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

// close lets the file go, for the next server at the address. It dates
// the file now: a sweep by a server at another address measures how long
// nobody served this one from when it stopped, not from the groups' last
// rebalance, which may be days before.
func (f *groupStateFile) close() error {
	if f == nil {
		return nil
	}
	f.freeze()
	now := time.Now()
	if err := os.Chtimes(f.path, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.warn("kafka: group state not dated at shutdown", "file", f.path, "err", err)
	}
	return f.lock.Close()
}
