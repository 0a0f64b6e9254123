package runnel

import (
	"errors"
	"os"
)

// Block reservation for the active segment. An append that grows a file
// makes the file system allocate blocks for the new bytes, and a
// 100-byte pwrite+fdatasync appending to a file took about 1.3-1.4x as
// long as one into blocks reserved beforehand (BenchmarkSyncedAppend;
// README, Performance). So the writer reserves blocks ahead of the tail in
// large steps, keeping the file's size: what readers, Verify and recovery
// see is unchanged, and a reservation nobody filled is invisible. Roll
// hands back what the sealed segment did not use; a segment that a closed
// Log was writing keeps its reservation for the next writer. (An append
// still changes the file's size, which its fdatasync must write too; only
// writes inside the file's size avoid that, and zeros past the data would
// need the tail rules changed, README, Performance.)

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
	if err := p.w.f.Truncate(end); err != nil {
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
