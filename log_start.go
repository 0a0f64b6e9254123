package runnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// A partition's log start offset (Kafka's logStartOffset) is the first
// offset a reader is given. Retention moves it by removing whole segments,
// so that it is the first segment's base; DeleteRecords moves it to any
// offset up to the end, inside a segment too, and records that in the
// partition's log-start file (docs/FORMAT.md, Log start file). The
// partition's start is the larger of the two: partStart.
//
// The file is the truth and is read wherever the start is looked up
// rarely (DescribeTopic, PartitionOffsets, a seek, retention, Verify,
// Backup). A Consumer checks its position against it before every read
// instead through partition.meta's log start word (byte 240), which
// DeleteRecords raises once the file is on disk and every process that
// maps the partition for a Consumer raises to the file's value first
// (after a reboot the mapping starts from what the disk holds): one atomic
// load per read, however many processes read. A Consumer whose mapping is
// a private copy (a partition.meta missing or short in a directory it may
// only read), which no store of another process reaches, reads the file
// before each read instead.

const (
	logStartFileName = "log-start"
	logStartMagic    = "runnelLS"
	logStartSize     = 24 // magic, i64 start, u64 xxhash64 of the 16 bytes before
)

// testHookLogStart, if set, is called at the steps of DeleteRecords'
// write of the log-start file ("written", "renamed", "synced") and
// once the meta word is raised ("published"), so that crash tests can kill
// a process there.
var testHookLogStart func(step string)

func logStartPath(dir string) string { return filepath.Join(dir, logStartFileName) }

func encodeLogStart(start int64) []byte {
	b := make([]byte, logStartSize)
	copy(b, logStartMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(start))
	binary.LittleEndian.PutUint64(b[16:], xxhash.Sum64(b[:16]))
	return b
}

// decodeLogStart checks a log-start file's bytes, read from path. Damage
// is a *CorruptError naming the file and the byte where it is: a start
// that does not check out is never used, neither as 0 nor as its value.
func decodeLogStart(path string, b []byte) (int64, error) {
	bad := func(pos int64, why string) (int64, error) {
		return 0, &CorruptError{Path: path, Pos: pos, Offset: -1, Err: errors.New(why)}
	}
	if len(b) != logStartSize {
		return bad(min(int64(len(b)), logStartSize), fmt.Sprintf("log start file of %d bytes, want %d", len(b), logStartSize))
	}
	if !bytes.Equal(b[:8], []byte(logStartMagic)) {
		return bad(0, "not a log start file")
	}
	if xxhash.Sum64(b[:16]) != binary.LittleEndian.Uint64(b[16:]) {
		return bad(16, "log start checksum mismatch")
	}
	start := int64(binary.LittleEndian.Uint64(b[8:]))
	if start < 0 {
		return bad(8, fmt.Sprintf("negative log start %d", start))
	}
	return start, nil
}

// readLogStart returns the start DeleteRecords recorded in partition
// directory dir, 0 if it recorded none.
func readLogStart(dir string) (int64, error) {
	path := logStartPath(dir)
	b, err := readSmallFile(path, logStartSize)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if errors.Is(err, errFileTooLarge) {
		return decodeLogStart(path, make([]byte, logStartSize+1))
	}
	if errors.Is(err, ErrCorrupt) {
		return 0, err // not a regular file (openRegular)
	}
	if err != nil {
		return 0, fmt.Errorf("runnel: read %s: %w", path, err)
	}
	return decodeLogStart(path, b)
}

// writeLogStart records start in dir's log-start file so that a crash or
// a power loss leaves the old file or the new one, whole: temporary file,
// fsync, rename, fsync of the directory.
func writeLogStart(dir string, start int64) error {
	if err := writeFileAtomicSteps(logStartPath(dir), encodeLogStart(start), testHookLogStart); err != nil {
		return fmt.Errorf("runnel: record log start in %s: %w", dir, err)
	}
	return nil
}

// partStart is the start of a partition whose first segment is first and
// whose log-start file says recorded, no later than its end next (a start
// the end fell behind, as a restore of an older copy of the segments
// beside a newer log-start file leaves, stops at the end).
func partStart(first, recorded, next int64) int64 {
	return min(max(first, recorded), next)
}

// continueAtLogStart moves a writer whose tail p.w is below the start the
// log-start file records to that start, as Kafka's broker goes on at its
// log start offset on loading such a log. Only a restore of older segments
// beside a newer log-start file leaves one; appended at the tail, records
// would be given offsets below the start, which readers never give once
// the end passes it: acknowledged and lost. Every segment holds records
// below the start only, so a segment is begun at the start and then the
// others are removed, the last too. Segments wholly below the start that
// a crash in between left, or a DeleteRecords that died, are removed here
// too: the last of those a crash left ends unsealed, which Verify would
// take for records lost. A damaged file is left to the readers, as
// retention does. The caller holds the writer lock.
func (p *partition) continueAtLogStart() error {
	recorded, err := readLogStart(p.dir)
	if err != nil || recorded == 0 {
		return nil
	}
	bases, err := p.segmentBases()
	if err != nil {
		return err
	}
	if recorded <= p.w.next {
		if plan := segmentsBelow(bases, recorded); len(plan) > 0 {
			_, err = p.removeSegments(plan)
		}
		return err
	}
	p.log.opts.Logger.Warn("runnel: log start past the end (a restore of older segments?): appends go on at the start, the segments below it are removed",
		"partition", p.dir, "end", p.w.next, "log_start", recorded)
	plan := make([]removedSegment, len(bases))
	for i, base := range bases {
		plan[i] = removedSegment{base: base, next: recorded, reason: "log start past the end"}
		if i+1 < len(bases) {
			plan[i].next = bases[i+1]
		}
	}
	if err := p.openActive(recorded); err != nil {
		return err
	}
	if err := p.segmentCreated(); err != nil {
		return err
	}
	if _, err := p.removeSegments(plan); err != nil {
		return err
	}
	return p.walkTail(0, recorded, true, p.knownCommitted(evidence{}))
}

// logStart is the log start word: the start DeleteRecords recorded, as
// far as the processes mapping the partition know (see the top of this
// file). It may lag the file, never lead it.
func (m *metaMap) logStart() *atomic.Int64 { return m.i64(metaLogStartOff) }

// lowerLogStart sets a log start word that damage put above start, the
// log-start file's, back to it, and returns what the word held; lowered
// is false if the word was not above start. The caller holds the writer
// lock, under which DeleteRecords writes the file and raises the word.
func (m *metaMap) lowerLogStart(start int64) (was int64, lowered bool) {
	w := m.logStart()
	for {
		cur := w.Load()
		if cur <= start || m.readOnly {
			return cur, false
		}
		if w.CompareAndSwap(cur, start) {
			return cur, true
		}
	}
}

// raiseLogStart raises the log start word to start; a mapping this
// process may only read is left as it is.
func (m *metaMap) raiseLogStart(start int64) {
	if m.readOnly {
		return
	}
	raiseTo(m.logStart(), start)
}

// raiseTo raises a to v if it is below, and returns what a holds then:
// a start only ever rises, whoever else raises it meanwhile.
func raiseTo(a *atomic.Int64, v int64) int64 {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return max(cur, v)
		}
	}
}

// recordedStart returns the start DeleteRecords recorded, as far as r
// knows: through the log start word if r has one, else from the file.
// A word above what r knows is checked against the file once, as the word
// never leads the file but damage to partition.meta may raise it: a word
// past the file's start would move readers past records nothing deleted.
// Such a word is not believed, and costs a read of the file each time.
func (r *partReader) recordedStart() (int64, error) {
	if r.startWord == nil {
		return readLogStart(r.p.dir)
	}
	known := r.knownStart.Load()
	if w := r.startWord.Load(); w > known {
		recorded, err := readLogStart(r.p.dir)
		if err != nil {
			return 0, err
		}
		known = raiseTo(&r.knownStart, min(w, recorded))
	}
	return known, nil
}

// checkStart, before a Consumer's read, moves a reader that DeleteRecords
// overtook (in any process: its position is below the log start word, or
// the file for a private mapping) to the start if it resets, and fails
// with ErrOutOfRange otherwise, as retention overtaking a reader does.
func (r *partReader) checkStart() error {
	if r.startWord == nil && !r.startInFile {
		return nil
	}
	start, err := r.recordedStart()
	if err != nil || r.next >= start {
		return err
	}
	if !r.resetOutOfRange {
		start, err := r.startUpToEnd(0, start)
		if err != nil || r.next >= start {
			return err
		}
		return r.p.outOfRange(r.next)
	}
	return r.seek(r.next) // segmentFor moves it to the start
}

// startUpToEnd is partStart for a reader: the start recorded, unless the
// end is below it (a restore of older segments beside a newer log-start
// file), where the partition starts at its end, as describe, Verify and
// Backup say, and a reader waits there instead of failing. It walks to the
// end, so it is called only for a reader below recorded.
func (r *partReader) startUpToEnd(first, recorded int64) (int64, error) {
	end, err := r.p.endOffset()
	if err != nil {
		return 0, err
	}
	return partStart(first, recorded, end), nil
}

// upToStart moves a reader that a lookup by time placed below the start
// DeleteRecords recorded to the start, still skipping the records older
// than the time.
func (r *partReader) upToStart() error {
	recorded, err := r.recordedStart()
	if err != nil || r.next >= recorded {
		return err
	}
	byTime, minTime := r.byTime, r.minTime
	// segmentFor moves it to the start (or the end, below it).
	if err := r.resetting(func() error { return r.seek(r.next) }); err != nil {
		return err
	}
	r.byTime, r.minTime = byTime, minTime
	return nil
}
