package runnel

// Zeros written ahead of the tail. The zeros a Durable writer extends the
// segment by (extend) are fallocated: the file system marks their blocks
// unwritten, and the first write into a block must turn it written, a
// change to the file's block map that the next fdatasync must write with
// the data (to the journal, on a file system that has one; this machine's
// ext4 has none). A frame of one small record turns a new block once per
// 4 KiB of frames; a frame of 64 senders' records (8-9 KiB) turns two or
// three with every fdatasync, which then takes about 1.4x as long: an 8.7 KiB
// pwrite+fdatasync took 209-221 µs into fallocated zeros against 153 µs
// into zeros written beforehand, where a 152-byte one took 149-163 µs
// either way (BenchmarkSyncedAppend; docs/PERFORMANCE.md). So a Durable
// writer of small frames writes the zeros for real a chunk at a time,
// ahead of its frames: the next fdatasync writes them back and turns
// their blocks once for the chunk, and the fdatasyncs after it only
// overwrite.
//
// Large frames are left to the fallocated zeros: zeros take the disk as
// long to write back as data does, and a frame of zeros for every frame
// of data would cost a stream whose fdatasyncs carry hundreds of KiB
// more than the one block-map change per fdatasync it saves: only the
// writers of frames up to zeroFrameMax, a few blocks, write zeros.
//
// Nor does a short burst gain: a Durable writer extends the segment from
// its second append on, and lets the lock go, cutting the zeros, after
// holdIdle without one. With 64 KiB of zeros written there (a trial
// build), a burst's second Send took a median 554-560 µs against 304-320
// µs without, the later ones 113-129 µs either way (BenchmarkDurableBurst).
// So zeros are written only once the writer has filled its first
// extension (its step has grown past extendMin): 64 KiB of frames without
// a pause.
//
// A writer that copies frames through the segment's mapping (Buffered or
// Periodic, commitmap_linux.go) writes zeros ahead from its first frame
// on, for the page cache rather than the disk: its first store into a page
// of fallocated zeros makes ext4 turn the page's block at page_mkwrite,
// about 4 µs a page on the machine measured, against about 1 µs for a page
// of zeros written by a pwrite a chunk at a time, that pwrite included
// (BenchmarkMappedPages). One buffered Send at a time went from 633-655 to
// 512-528 ns (BenchmarkProduce; docs/PERFORMANCE.md, Zeros for the
// mapping). The burst above does not apply, as no Send waits for these
// zeros' write-back; a writer that goes idle cuts them (cutLeftZeros), and
// after a pause its first extension caps them at 64 KiB. Where a Periodic
// sync, a Buffered checkpoint or the page cache's expiry comes before
// frames cover them, they are written back once, up to a chunk and a lead
// a partition, and their pages again with the frames: for a slow stream,
// whose pages are written back with every sync as records trickle in, one
// write a page more. Smaller chunks cost the fast stream: 32 KiB ones took
// its kernel CPU from 0.65-0.73 s to 0.90-0.96 s for 3,000,000 Sends, 128
// KiB ones 0.71-0.78 s, 1 MiB ones no less than 256 KiB (BenchmarkProduce,
// alternated runs; docs/PERFORMANCE.md).

// zeroChunk is how much is written at a time; zeroLead how far ahead of
// the frame being written the written zeros must reach before the next
// chunk is written; zeroFrameMax the largest frame whose writer keeps
// writing zeros ahead.
const (
	zeroChunk    = 256 << 10
	zeroLead     = 64 << 10
	zeroFrameMax = 16 << 10
)

// zeroBuf is the source of the zeros written: read-only, so it stays the
// kernel's zero page and costs no memory.
var zeroBuf [zeroChunk]byte

// writeZerosAhead writes zeros past the frame of n bytes about to be
// written at the tail, up to a chunk at a time, when the written zeros do
// not reach zeroLead beyond it, extending the file first where it does
// not reach that far (limit is the segment's size). It writes only past
// the frame, under the writer lock, so no frame is ever overwritten, and
// never past the extension; a failure only stops it for this segment, as
// the zeros are there already (fallocated). mapped says that the frame is
// copied through the mapping, which wants written zeros from the first
// frame on; a frame that is pwritten instead makes its own page cache
// pages, and zeros written ahead of it would only be copied twice. The
// caller holds the writer lock.
func (a *activeSeg) writeZerosAhead(n int, limit int64, mapped bool) {
	if n > zeroFrameMax || a.noZeroWrite || !mapped && a.extendStep <= extendMin {
		return
	}
	end := a.pos + int64(n)
	if a.zeroed >= end+zeroLead {
		return
	}
	a.extend(min(end+zeroLead, limit), limit)
	from := max(a.zeroed, end)
	to := min(from+zeroChunk, a.extended)
	if to <= from {
		return
	}
	if err := writeZerosFn(a.fd, zeroBuf[:to-from], from); err != nil {
		a.noZeroWrite = true
		return
	}
	a.zeroed = to
}

// writeZerosFn is pwriteFull; tests count its writes, or make it fail as
// a full disk does.
var writeZerosFn = pwriteFull

// zerosHandedOn is where the zeros this writer leaves at a hand-over end,
// as its statement says (leaveZeros): where the zeros it wrote end, if it
// wrote any, so that the next holder, which takes all the stated zeros as
// written (adoptZeros), does not write them again with each turn. The
// fallocated zeros past them stay in the file until an extension covers
// them again; a statement may name less than the file holds, never more.
func (a *activeSeg) zerosHandedOn() int64 {
	if a.zeroed > a.pos {
		return a.zeroed
	}
	return a.extended
}
