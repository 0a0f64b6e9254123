package kafka

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-log/runnel/internal/names"
	"github.com/runnel-log/runnel/internal/regfile"
)

// A partition's journal is a directory with a file for each server that
// has written to it, kafka/producers/<topic>/<p>/<random name>: a server
// appends to its own file alone, with one write and no lock, and holds an
// exclusive flock on it while it lives. A server opening the journal reads
// the files whose lock it can take, stopped servers', folds them into its
// own new file and removes them; the files of servers still running are
// theirs, and their producers too. Past its compaction size a server
// writes what is still needed into a new file of its own and removes the
// old one. No file is ever renamed over another, so a file's name stays
// its inode's: whoever holds the lock of the file a name opens knows that
// no server writes to it.
//
// A server reads a partition's journal when it first gets an idempotent
// batch there, and again, for the files of servers stopped since, when a
// producer it does not know on the partition sends a batch: a client
// whose server died may retry through another that was already running.
// The producers of a stopped server that another server took over first
// are not known to this one, and their retries through it may be stored
// twice.

// producerJournal is one server's file in a partition's journal.
type producerJournal struct {
	dir     string
	topicID [16]byte
	warn    func(msg string, args ...any)

	mu        sync.Mutex
	f         *os.File // our file, flocked, opened for appending
	path      string
	size      int64
	compactAt int64 // the size at which the file is compacted next
	closed    bool
	buf       [entrySize]byte
}

func journalDir(logDir, topic string, partition int32) string {
	return filepath.Join(topicJournalsDir(logDir, topic), names.PartitionDir(int(partition)))
}

func topicJournalsDir(logDir, topic string) string {
	return filepath.Join(logDir, stateDir, producersDir, topic)
}

// openJournal opens a partition's journal, for the topic with the given
// id, and returns what the files of stopped servers say, now in its own.
// Files left by an earlier topic of the same name are not believed, and
// removed. Entries that do not check out are skipped, each reported
// through warn with the file and position.
func openJournal(dir, topicID string, warn func(msg string, args ...any)) (*producerJournal, []journalEntry, error) {
	j := &producerJournal{dir: dir, topicID: topicIDBytes(topicID), warn: warn}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("kafka: producer journal: %w", err)
	}
	dead, deadFiles, err := j.stopped(true)
	defer closeAll(deadFiles)
	if err != nil {
		return nil, nil, err
	}
	if err := j.replace(dead); err != nil {
		return nil, nil, err
	}
	// Ours holds the dead servers' entries now: their files can go.
	if err := removeAll(deadFiles); err != nil {
		j.close()
		return nil, nil, err
	}
	return j, dead, nil
}

// takeOverStopped takes into our file what the files of servers stopped
// since we opened the journal say, hands it to load, and removes the
// files: a producer this server does not know may be retrying a batch
// such a server stored. load runs before the journal is let go, so that
// a batch of such a producer that comes meanwhile (and finds the files
// gone) waits for it. A closed journal takes over nothing.
func (j *producerJournal) takeOverStopped(load func([]journalEntry)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	// Files of another topic ID (this server's handle may be of a topic
	// deleted since) are left for a server that can use them.
	dead, deadFiles, err := j.stopped(false)
	defer closeAll(deadFiles)
	if err != nil || len(deadFiles) == 0 {
		return err
	}
	switch n := int64(entrySize * len(dead)); {
	case n == 0:
	case j.size+n >= j.compactAt:
		// Written with ours, compacted, as a compaction would have.
		err = j.compact(dead...)
	default:
		err = j.write(encodeEntries(dead))
	}
	if err != nil {
		// Their files stay, for another server or the next try.
		return err
	}
	if len(dead) > 0 {
		load(dead)
	}
	return removeAll(deadFiles)
}

// write appends whole entries to our file. A write that fails part way is
// cut off, so that later entries stay aligned.
func (j *producerJournal) write(data []byte) error {
	if _, err := j.f.Write(data); err != nil {
		j.f.Truncate(j.size)
		return fmt.Errorf("kafka: producer journal %s: %w", j.path, err)
	}
	j.size += int64(len(data))
	return nil
}

func encodeEntries(entries []journalEntry) []byte {
	data := make([]byte, entrySize*len(entries))
	for i := range entries {
		entries[i].encode(data[entrySize*i:])
	}
	return data
}

// stopped reads the files of the journal whose lock it can take, stopped
// servers' (ours is locked through another open file, and so skipped),
// and returns what is still needed of their entries, with the files,
// locked, for the caller to remove once it holds their entries, and to
// close. Damaged files are among them (no server can use them), and
// files of another topic ID only if removeOtherTopics.
func (j *producerJournal) stopped(removeOtherTopics bool) ([]journalEntry, []*os.File, error) {
	names, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: producer journal: %w", err)
	}
	var dead []journalEntry
	var deadFiles []*os.File
	for _, de := range names {
		if !de.Type().IsRegular() {
			continue
		}
		if strings.HasPrefix(de.Name(), newPrefix) {
			removeAbandoned(filepath.Join(j.dir, de.Name()))
			continue
		}
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		path := filepath.Join(j.dir, de.Name())
		f, err := regfile.Open(path, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // folded by another server just now
		}
		if err != nil {
			return nil, deadFiles, fmt.Errorf("kafka: producer journal: %w", err)
		}
		if flock(f, syscall.LOCK_EX|syscall.LOCK_NB) != nil || !sameFile(f, path) {
			// A running server's (or one it has just compacted away).
			f.Close()
			continue
		}
		entries, use, err := j.read(f, path)
		if err != nil {
			f.Close()
			return nil, deadFiles, err
		}
		if use == fileOtherTopic && !removeOtherTopics {
			f.Close()
			continue
		}
		deadFiles = append(deadFiles, f)
		if use == fileUsable {
			dead = append(dead, entries...)
		}
	}
	return compactEntries(dead, time.Now()), deadFiles, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// removeAll removes stopped servers' files, whose entries are in ours.
func removeAll(files []*os.File) error {
	for _, f := range files {
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kafka: producer journal: %w", err)
		}
	}
	return nil
}

// fileTopicID returns the topic id in the header of the journal file at
// path, or a zero one (which no topic made with an id has) for a file
// without a header that checks out.
func fileTopicID(path string) [16]byte {
	f, err := regfile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return [16]byte{}
	}
	defer f.Close()
	var b [entrySize]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return [16]byte{}
	}
	if hdr, ok := decodeEntry(b[:]); ok && hdr.kind == entryHeader {
		return hdr.topicID
	}
	return [16]byte{}
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}

// newPrefix starts the name of a file being written, before its rename.
const newPrefix = ".new-"

// removeAbandoned removes a file a server died writing: unlocked, and
// older than any server takes between making it and locking it.
func removeAbandoned(path string) {
	f, err := regfile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && time.Since(fi.ModTime()) > time.Minute && flock(f, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		os.Remove(path)
	}
}

// flock applies op to f's lock, again if a signal interrupted it.
func flock(f *os.File, op int) error {
	for {
		if err := syscall.Flock(int(f.Fd()), op); err != syscall.EINTR {
			return err
		}
	}
}

// maxJournalBytes bounds what is read of a journal file: one compacted at
// journalCompactAt never gets near it, so a larger file is damage.
const maxJournalBytes = 16 << 20

// fileUse is what a journal file is to the journal reading it.
type fileUse int

const (
	fileUsable     fileUse = iota
	fileDamaged            // too large, or without a header: no server can use it
	fileOtherTopic         // another topic ID's (the name was deleted and made again)
)

// read reads f's entries that check out, and says whether the file can
// be used at all.
func (j *producerJournal) read(f *os.File, path string) ([]journalEntry, fileUse, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, maxJournalBytes+1))
	if err != nil {
		return nil, fileDamaged, fmt.Errorf("kafka: producer journal %s: %w", path, err)
	}
	if len(data) > maxJournalBytes {
		j.warn("kafka: producer journal file larger than any the server writes, not used", "file", path, "limit", maxJournalBytes)
		return nil, fileDamaged, nil
	}
	if len(data) < entrySize {
		return nil, fileDamaged, nil // a file is named only once its header is written
	}
	hdr, hok := decodeEntry(data)
	if !hok || hdr.kind != entryHeader {
		j.warn("kafka: producer journal file has no header, not used", "file", path, "position", 0)
		return nil, fileDamaged, nil
	}
	if hdr.topicID != j.topicID {
		return nil, fileOtherTopic, nil
	}
	var entries []journalEntry
	for pos := entrySize; pos+entrySize <= len(data); pos += entrySize {
		e, eok := decodeEntry(data[pos:])
		if !eok || e.kind == entryHeader {
			j.warn("kafka: producer journal entry damaged, skipped", "file", path, "position", pos)
			continue
		}
		entries = append(entries, e)
	}
	if rest := len(data) % entrySize; rest != 0 {
		// A write cut short by a crash: the entry was never whole.
		j.warn("kafka: producer journal ends in a partial entry, ignored", "file", path, "position", len(data)-rest)
	}
	return entries, fileUsable, nil
}

// replace makes a new file of ours holding a header and entries, locked
// before it gets its name so that no other server takes it for a stopped
// one's, and removes the one we had.
func (j *producerJournal) replace(entries []journalEntry) error {
	hdr := journalEntry{kind: entryHeader, topicID: j.topicID, time: time.Now().UnixNano()}
	data := encodeEntries(append([]journalEntry{hdr}, entries...))
	// Written under another name, which other servers skip, and renamed.
	path := filepath.Join(j.dir, randomName())
	tmp := filepath.Join(j.dir, newPrefix+randomName())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory went with a deleted topic (dropJournals)
		// while the topic was made again: make it again too.
		if err = os.MkdirAll(j.dir, 0o755); err == nil {
			f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("kafka: producer journal: %w", err)
	}
	err = flock(f, syscall.LOCK_EX)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("kafka: producer journal %s: %w", path, err)
	}
	if j.f != nil {
		// Everything in it is in the new one. A server that opened it
		// meanwhile and takes its lock once it is closed finds its name
		// gone (or takes in entries it already has).
		os.Remove(j.path)
		j.f.Close()
	}
	j.f, j.path, j.size = f, path, int64(len(data))
	j.compactAt = max(journalCompactAt, 2*j.size)
	return nil
}

// randomName is 16 hexadecimal digits, for a file no other server makes.
func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// append adds one entry to our file, and compacts it if it is due.
func (j *producerJournal) append(e journalEntry) error {
	if err := j.add(e); err != nil {
		return err
	}
	j.compactIfDue()
	return nil
}

// add adds one entry to our file: one write, quick enough for the
// partition's writer lock, under which the server calls it.
func (j *producerJournal) add(e journalEntry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return fmt.Errorf("kafka: producer journal %s: %w", j.path, ErrServerClosed)
	}
	e.encode(j.buf[:])
	return j.write(j.buf[:])
}

// compactIfDue writes what is still needed into a new file once ours is
// past compactAt: the next compaction waits until the file has doubled,
// so that a journal with many producers is not rewritten at every batch.
func (j *producerJournal) compactIfDue() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.size < j.compactAt {
		return
	}
	if err := j.compact(); err != nil {
		// The file stays as it is, and is tried again a while later.
		j.compactAt = j.size + journalCompactAt/16
		j.warn("kafka: producer journal not compacted", "file", j.path, "err", err)
	}
}

// compact replaces our file with what is still needed of it and of
// extra, entries not in it.
func (j *producerJournal) compact(extra ...journalEntry) error {
	r, err := regfile.Open(j.path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	entries, use, err := j.read(r, j.path)
	r.Close()
	switch {
	case err != nil:
		return err
	case use != fileUsable:
		return errors.New("it no longer reads as a journal of this topic")
	}
	return j.replace(compactEntries(append(entries, extra...), time.Now()))
}

// close closes our file, which the next server to open the journal folds
// into its own; later appends fail.
func (j *producerJournal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}
