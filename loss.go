package runnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"
)

// Loss: offsets that something says were committed, but that the data no
// longer holds. What says so, and may refuse appends: the synced
// checkpoint and the durable point (both in partition.meta, both written
// only after a sync covered them), a later segment (created after every
// offset below its base was committed), and what the process itself
// appended. A tail found before any of them is damage, never a torn tail,
// and it is reported: a logged error, Stats.RecordsLost, a Recoveries
// entry, and a Verify problem. Index entries are caches that damage may
// fill with anything, so they never refuse an append; after a power loss
// they only help recovery report which acknowledged records the unsynced
// pages took.

// evidence is one more thing that says offsets below next were committed.
type evidence struct {
	next int64
	by   string
}

// knownCommitted gathers the evidence of which offsets were committed into
// the rules a tail is judged by: partition.meta's, and extra.
func (p *partition) knownCommitted(extra evidence) tailRules {
	rules, _, _ := knownCommittedIn(p.shm)
	rules.add(extra)
	return rules
}

// knownCommittedIn is knownCommitted from a partition's mapping m (nil:
// none), for readers and Verify too. It returns the checkpoint it found.
func knownCommittedIn(m *metaMap) (rules tailRules, cp checkpoint, cpOK bool) {
	if m == nil {
		return rules, cp, false
	}
	if cp, cpOK = m.checkpoint(); cpOK {
		rules.add(evidence{cp.next, "the synced checkpoint in partition.meta"})
	}
	if next, ok := durableHint(m); ok {
		rules.add(evidence{next, "the durable point in partition.meta"})
	}
	return rules, cp, cpOK
}

// readMetaCopy reads the partition.meta of partition directory dir into a
// private copy, for judging what it says was committed without changing
// anything: it needs only read permission, creates nothing, and holds no
// lock. A file shorter than its size reads as zeros past its end, as
// writers grow it. m is nil when there is no file. A checkpoint that does
// not check out is read again a few times (a writer may be recording one
// this moment); ckptOK is false when it never did, which is damage, and
// true for a valid checkpoint or none at all.
func readMetaCopy(dir string) (m *metaMap, ckptOK bool, err error) {
	path := filepath.Join(dir, metaFileName)
	read := func() (*metaMap, error) {
		// Through the lock table, never a descriptor of its own: off
		// Linux, closing one would drop this process's locks on the file.
		lf, err := openExistingLockFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		buf := make([]byte, metaSize)
		n, err := lf.File().ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("runnel: read %s: %w", path, err)
		}
		return privateMeta(path, buf[:n]), nil
	}
	for try := 0; ; try++ {
		if m, err = read(); err != nil || m == nil {
			return nil, true, err
		}
		if _, ok := m.checkpoint(); ok || allZero(m.mem[metaCkptOff:metaCkptEnd]) {
			return m, true, nil
		}
		if try == 2 {
			return m, false, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// addSegment adds the evidence of a later segment, whose base every record
// before it had, and which makes a seal due.
func (r *tailRules) addSegment(base int64) {
	r.add(evidence{base, fmt.Sprintf("segment %020d%s follows", base, logExt)})
	r.nextSegment = base
}

// add raises knownEnd to what ev says, if that is more.
func (r *tailRules) add(ev evidence) {
	if ev.next > r.knownEnd {
		r.knownEnd, r.knownBy = ev.next, ev.by
	}
}

// durableHint returns the offset after the last record the durable point
// in partition.meta says was synced: a value it held was true when it was
// written, whatever the boot.
func durableHint(m *metaMap) (next int64, ok bool) {
	_, _, _, next, ok = m.durablePoint()
	return next, ok && next > 0
}

// indexHint returns one past the offset of the last entry of the last
// segment's offset index, when the time index holds an entry for the same
// offset (they are written together, so a damaged entry shows as a
// disagreement). Entries past the end of the log count: that is the point.
func indexHint(dir string) (next int64, ok bool) {
	bases, err := listSegments(dir)
	if err != nil || len(bases) == 0 {
		return 0, false
	}
	base := bases[len(bases)-1]
	last := func(ext string, size int64, n int) []byte {
		f, err := openRegularRead(segmentPath(dir, base, ext))
		if err != nil {
			return nil
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil
		}
		entries := st.Size() / size
		if entries == 0 {
			return nil
		}
		k := min(entries, int64(n))
		b := make([]byte, k*size)
		if _, err := f.ReadAt(b, (entries-k)*size); err != nil && err != io.EOF {
			return nil
		}
		return b
	}
	idx := last(indexExt, indexEntrySize, 1)
	tim := last(timeIndexExt, timeIndexEntrySize, 2)
	if idx == nil || tim == nil {
		return 0, false
	}
	rel := binary.LittleEndian.Uint32(idx)
	for i := 0; i+timeIndexEntrySize <= len(tim); i += timeIndexEntrySize {
		if binary.LittleEndian.Uint32(tim[i+8:]) == rel {
			return base + int64(rel) + 1, true
		}
	}
	return 0, false
}

// reportLoss reports offsets known committed that are gone: a logged
// error, Stats.RecordsLost and a Recoveries entry. rep says where; v and
// rules say what was lost.
func (p *partition) reportLoss(rep RecoveryReport, v tailVerdict, rules tailRules) {
	from, to := v.lost(rules)
	if to <= from {
		return
	}
	rep.LostFrom, rep.LostTo, rep.LostReason = from, to, rules.knownBy
	p.log.stats.recordsLost.Add(to - from)
	p.log.opts.Logger.Error("runnel: committed records lost",
		"partition", p.dir, "from_offset", from, "to_offset", to-1, "count", to-from, "known_from", rules.knownBy)
	p.log.recordRecovery(rep)
}

// lossText describes a lost range for messages.
func lossText(from, to int64) string {
	if to-from == 1 {
		return fmt.Sprintf("offset %d", from)
	}
	return fmt.Sprintf("offsets %d to %d", from, to-1)
}

// unsyncedAfterReboot reports whether the bytes at pos of segment base may
// have been lost to a power loss that no writer has recovered from yet:
// the synced checkpoint cp (ok: there is one) is of another boot, and they
// follow it. Readers, Verify and salvage judge them by the power-loss rules
// then, as recovery will. A later segment is evidence all the same (its
// writer synced every segment before it), so in practice only the last
// segment's bytes are in question.
func unsyncedAfterReboot(cp checkpoint, ok bool, base, pos int64) bool {
	return ok && cp.boot != currentBootID && pastCheckpoint(cp, base, pos)
}

// pastCheckpoint reports whether byte pos of segment base is at or after
// checkpoint cp.
func pastCheckpoint(cp checkpoint, base, pos int64) bool {
	return base > cp.base || base == cp.base && pos >= cp.pos
}
