package runnel

import (
	"errors"
	"io/fs"
	"os"
)

// Block reservation for the active segment. An append that grows a file
// makes the file system allocate blocks for the new bytes, and a
// 100-byte pwrite+fdatasync appending to a file took about 1.3-1.4x as
// long as one into blocks reserved beforehand, measured on a loaded
// machine (BenchmarkSyncedAppend; docs/PERFORMANCE.md: a later run on a
// quiet one found no gain, and a loss for 8.7 KiB writes: reserved
// blocks are unwritten, and a write reaching new ones turns them written,
// as zerowrite.go explains). So a writer that does not extend the file
// with zeros (below) reserves blocks ahead of the tail in large steps,
// keeping the file's size: what readers, Verify and recovery see is
// unchanged, and a reservation nobody filled is invisible. Roll hands back
// what the sealed segment did not use; a segment that a closed Log was
// writing keeps its reservation for the next writer. (An append still
// changes the file's size, which its fdatasync must write too; only writes
// inside the file's size avoid that: the zeros a writer extends the file
// by, below.)

// reserveStep is how far ahead of the tail blocks are reserved at most;
// reserveMin at least. In between, a step is as long as the segment's data
// so far: reserved blocks are disk space taken, and a partition that has
// little data must not take 4 MiB of it (10,000 partitions written once
// each took 40 GB: TestManyPartitionsUnderFileLimit filled the disk).
const (
	reserveStep = 4 << 20
	reserveMin  = 64 << 10
)

// reserve makes sure blocks are reserved for the active segment up to end,
// reserving a step ahead (at most up to limit, the segment's size) when
// they are not. It is an optimization: where reserving fails or the file
// system cannot, the segment is appended to as before.
func (a *activeSeg) reserve(end, limit int64) {
	if end <= a.reserved || a.noReserve {
		return
	}
	step := min(max(a.pos, reserveMin), reserveStep)
	upto := max(end, min(a.pos+step, limit))
	from := max(a.pos, a.reserved)
	if err := reserveBlocks(a.fd, from, upto-from); err != nil {
		a.noReserve = true
		return
	}
	a.reserved = upto
}

// releaseReserve gives back the blocks reserved past end, where the data of
// a sealed segment ends. The caller holds the writer lock, so nothing can
// be appended past end meanwhile. It truncates whatever this process
// reserved: the blocks may be another writer's, which reserved them before
// this one took the segment over and rolled it with its first frame (one
// ftruncate per segment).
func (p *partition) releaseReserve(end int64) {
	if err := p.w.truncate(end); err != nil {
		p.log.opts.Logger.Warn("runnel: release reserved blocks", "path", p.w.path, "err", err)
	}
	p.w.reserved = 0
}

// allocateFile gives f real blocks for its first size bytes, growing it to
// size if it is shorter, and changes no byte that is there: after it, a
// store through a shared mapping of those bytes needs no new block, so a
// full disk is its error here, not a SIGBUS at the store. Where the file
// system cannot allocate (allocateBlocks is unsupported), the bytes past
// the end are written as zeros; bytes inside the file are taken to have
// their blocks, because this package writes whole the files it maps
// (createMeta).
func allocateFile(f *os.File, size int64) error {
	err := allocateBlocks(int(f.Fd()), 0, size)
	if !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return zeroFill(f, size)
}

// zeroFill writes zeros from the end of f up to size, if f is shorter.
func zeroFill(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	_, err = f.WriteAt(make([]byte, size-st.Size()), st.Size())
	return err
}

// Zeros ahead of the tail (FORMAT.md). A writer that copies frames through
// the segment's mapping (commitmap_linux.go) needs the file to reach past
// them, and a durable writer's fdatasync is cheaper when its frame lands
// inside the file's size (partition.extendsAhead), so both extend the file
// for real, with zeros, ahead of the tail: readers, Verify and recovery
// take zeros from the end of the last good frame to the end of the file as
// the end of the data (cursor.zerosToEnd). The extension starts at
// extendMin and doubles with each step up to extendMax, so that a
// partition with little data stays small.
//
// Writers that take turns hand the zeros on: the holder letting the lock
// go to another writer leaves them, with a statement in partition.meta of
// where they are (leaveZeros), and the next holder writes into them
// without reading them first (adoptZeros). Cutting them at every hand-over
// cost each turn an ftruncate and a fallocate, and left the turn-takers'
// fdatasyncs making a new file size durable each time. The zeros are cut
// back to the tail when the lock goes with nobody else wanting it (a
// writer idle, or closing: cutLeftZeros), before a roll seals the segment,
// and by whoever finds zeros no statement vouches for, which a dead writer
// (or a machine that stopped) left (repairTail).
const (
	extendMin = reserveMin
	extendMax = reserveStep
)

// extend makes the file reach at least end, extending it with zeros a
// step ahead (at most to limit, the segment's size) when it does not, and
// tells the mapping how far it may write. Where the file system cannot
// allocate (a full disk), nothing is extended and frames are pwritten.
func (a *activeSeg) extend(end, limit int64) {
	if end <= a.extended || a.noExtend {
		return
	}
	a.extendStep = min(max(2*a.extendStep, extendMin), extendMax)
	upto := max(end, min(a.pos+a.extendStep, limit))
	if err := extendFileFn(a.fd, a.pos, upto-a.pos); err != nil {
		// A failed fallocate may have allocated (and sized) part of the
		// range: cut it back to the data.
		a.noExtend = true
		a.truncate(a.pos)
		return
	}
	a.extended = upto
	a.cm.setLimit(upto)
}

// extendFileFn is extendFile; tests make it fail as a full disk does.
var extendFileFn = extendFile

// truncate cuts the segment file at pos, forgetting any extension past it.
// The caller holds the writer lock.
func (a *activeSeg) truncate(pos int64) error {
	a.extended, a.extendStep, a.zeroed = 0, 0, 0
	a.cm.setLimit(0)
	return a.f.Truncate(pos)
}

// leaveZeros lets the zeros this writer extended the segment by stay as it
// hands the writer lock over, and says so in partition.meta for the next
// holder. This Log forgets them: when it holds the lock again, it learns
// afresh from the statement what lies past the tail. The caller holds the
// writer lock.
func (p *partition) leaveZeros() {
	if p.w == nil || p.w.extended <= p.w.pos {
		p.trimExtension()
		return
	}
	p.shm.leaveZeros(zeroRun{base: p.w.base, from: p.w.pos, to: p.w.zerosHandedOn()})
	p.w.extended, p.w.zeroed = 0, 0
	p.w.cm.setLimit(0)
}

// adoptZeros takes over the zeros the last holder left past pos, the tail
// of the active segment, when its statement (taken with the lock) names
// them and the probe of the file around pos, end being where it ended,
// agrees: the frames of this holder go into them. It reports whether it
// did; if not, the bytes past pos are walked as any writer's tail is.
func (p *partition) adoptZeros(pos, end int64) bool {
	z := p.zerosLeft
	if !p.zerosOK || z.base != p.w.base || z.from != pos || end <= pos || !p.w.probedZeros(pos, end) {
		return false
	}
	p.zerosOK = false
	p.w.extended, p.w.zeroed = z.to, z.to
	p.w.cm.setLimit(z.to)
	return true
}

// cutLeftZeros cuts zeros that this Log (or another) left past the tail at
// a hand-over and that nobody took over since, as the partition closes or
// its files are released: a directory nobody writes to has files that end
// where their data does. It only tries the writer lock: while another
// writer holds it, the zeros are that writer's to use. The caller holds
// p.wmu, not the writer lock.
func (p *partition) cutLeftZeros() {
	if p.held || p.meta == nil || p.shm == nil || p.shm.readOnly || p.broken != nil || p.poisoned.Load() {
		return
	}
	if got, err := p.meta.TryLock(writerLockByte); err != nil || !got {
		return
	}
	defer p.meta.Unlock(writerLockByte)
	if p.shm.deleted() {
		// The topic was deleted (flagged under this lock, before its
		// directory went): the path may name a new topic's segment now.
		return
	}
	z, ok := p.shm.takeZeros()
	if !ok {
		return
	}
	path := segmentPath(p.dir, z.base, logExt)
	if err := os.Truncate(path, z.from); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.opts.Logger.Warn("runnel: cut the zeros past the tail", "path", path, "err", err)
	}
}

// trimExtension cuts the zeros this writer extended the segment by back
// to the tail (letting the lock go with nobody waiting, before a seal,
// dropping the active segment), so that the file ends where its data
// does. The caller holds the writer lock.
func (p *partition) trimExtension() {
	if p.w == nil || p.w.extended == 0 {
		return
	}
	if err := p.w.truncate(p.w.pos); err != nil {
		p.log.opts.Logger.Warn("runnel: cut the zeros past the tail", "path", p.w.path, "err", err)
	}
}
