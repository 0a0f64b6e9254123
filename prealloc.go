package runnel

// Block reservation for the active segment. An append that grows a file
// makes the file system allocate blocks for the new bytes, and on ext4 the
// fdatasync after it then also commits that allocation to the journal:
// a 100-byte pwrite+fdatasync appending to a file took about 1.3-1.4x as
// long as one into blocks reserved beforehand (BenchmarkSyncedAppend;
// README, Performance). So
// the writer reserves blocks ahead of the tail in steps that grow with the
// segment (up to reserveStep), keeping the
// file's size: what readers, Verify and recovery see is unchanged, and a
// reservation nobody filled is invisible. Roll hands back what the sealed
// segment did not use; a segment that a closed Log was writing keeps its
// reservation for the next writer. (The journal commit for the new size
// stays: only writes inside the file's size avoid it. The zeros a writer
// extends the file by, below, are for writes through a mapping in
// Buffered and Periodic mode; durable appends keep to pwrite.)

// reserveStep is how far ahead of the tail blocks are reserved at a time,
// at most.
const reserveStep = 4 << 20

// reserve makes sure blocks are reserved for the active segment up to end,
// reserving a step ahead (at most up to limit, the segment's size) when
// they are not. It is an optimization: where reserving fails or the file
// system cannot, the segment is appended to as before.
func (a *activeSeg) reserve(end, limit int64) {
	if end <= a.reserved || a.noReserve {
		return
	}
	// The step grows with the segment, up to reserveStep: a partition
	// with little data holds little disk (thousands of them may be open).
	upto := max(end, min(a.pos+min(max(a.pos, extendMin), reserveStep), limit))
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

// Zeros ahead of the tail (FORMAT.md). A writer that copies frames through
// the segment's mapping (commitmap_linux.go) needs the file to reach past
// them, so it extends the file for real, with zeros, ahead of the tail:
// readers, Verify and recovery take zeros from the end of the last good
// frame to the end of the file as the end of the data (cursor.zerosToEnd).
// The extension starts at extendMin and doubles with each step up to
// extendMax, so that a partition with little data stays small, and so does
// the cost of a hold that ends soon (writers that take turns); it is cut
// back whenever
// the writer lets the lock go (unlockWriter), before a roll seals the
// segment, and by whoever finds one a dead writer left (repairTail).
const (
	extendMin = 64 << 10
	extendMax = reserveStep
)

// extend makes the file reach at least end, extending it with zeros a
// step ahead (at most to limit, the segment's size) when it does not, and
// tells the mapping how far it may write. Where the file system cannot
// allocate (a full disk), nothing is extended and frames are pwritten.
func (a *activeSeg) extend(end, limit int64) {
	if end <= a.extended || a.noExtend || a.cm == nil {
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
	a.extended, a.extendStep = 0, 0
	a.cm.setLimit(0)
	return a.f.Truncate(pos)
}

// trimExtension cuts the zeros this writer extended the segment by back
// to the tail: while it does not hold the writer lock, other writers and
// readers find the file ending where its data does. The caller holds the
// writer lock.
func (p *partition) trimExtension() {
	if p.w == nil || p.w.extended == 0 {
		return
	}
	if err := p.w.truncate(p.w.pos); err != nil {
		p.log.opts.Logger.Warn("runnel: cut the zeros past the tail", "path", p.w.path, "err", err)
	}
}
