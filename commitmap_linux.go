package runnel

import (
	"encoding/binary"
	"runtime/debug"
	"sync/atomic"
	"unsafe"

	"github.com/runnel-log/runnel/internal/frame"
	"golang.org/x/sys/unix"
)

// The pwrite backend writes a frame with one pwrite and its commit byte
// through a shared mapping of the segment: a store into the page cache,
// which every process's reads see, instead of a second system call. The
// order the protocol asks for holds: the store happens strictly after the
// pwrite of the frame returned, and it is an atomic (release) store, so no
// process sees the commit before the frame. The mapping is a window of the
// file around the tail, moved as the tail moves.
//
// The store is only ever made inside the frame that the pwrite just
// wrote, under the writer lock, so the file is never shorter than the
// byte (nobody else may truncate it meanwhile). Should the store fault all
// the same (a file system that cannot back the page), the fault becomes a
// panic that commit recovers from, and the caller falls back to pwrite.

// commitWindow is the size of the mapped window: one mmap per this many
// bytes of log.
const commitWindow = 1 << 20

// commitMapMax is the largest frame whose commit byte goes through the
// mapping. The first store into each page of the file faults, and on ext4
// that fault (page_mkwrite) cost about ten pwrites on the machine measured
// (docs/PERFORMANCE.md): it pays off only when many frames share a page.
const commitMapMax = 512

// A writer that keeps the writer lock across appends in Buffered or
// Periodic mode writes whole frames of up to mapWriteMax bytes through the
// mapping too (write): a copy into the page cache instead of a pwrite. The
// mapping can only store within the file's size, so such a writer first
// extends the file with zeros ahead of the tail (activeSeg.extend,
// prealloc.go), and stores go only below limit, the size an fallocate
// succeeded for: blocks are allocated there, so a full disk is an
// fallocate error (the writer then pwrites), never a fault in a store.
// The writer also writes zeros into those blocks ahead of its frames
// (zerowrite.go), as a Durable writer does: the first store into a page
// of fallocated blocks costs the kernel about 4 µs (ext4 turns the
// page's unwritten block at page_mkwrite), into a page of written zeros
// about 1 µs, the pwrite of the zeros included (docs/PERFORMANCE.md,
// Zeros for the mapping). Populating a window's pages ahead in one call
// (MADV_POPULATE_WRITE) cost as much as faulting them in store by store,
// and is not done.

// mapWriteMax is the largest frame written through the mapping. The copy
// into the mapping saves a pwrite's system call (two, with the commit
// byte's past commitMapMax) but costs more per byte than a pwrite's copy.
// In a Buffered stream of 100-byte records, with zeros written ahead, 1
// KiB frames cost 388-410 ns a record through the mapping against 675-678
// by pwrite, 2 KiB frames 323-334 against 501-513, 4 KiB frames 354-426
// against 361-364, and 64 KiB frames 278-287 against 210-263
// (BenchmarkFrameCopy, two runs of 2 s, load 4).
var mapWriteMax = 2 << 10 // a variable for BenchmarkFrameCopy

// commitMap is a segment's mapped window. It is used under the writer
// lock (p.wmu) only.
type commitMap struct {
	fd    int
	mem   []byte
	off   int64 // file offset of mem[0]
	limit int64 // frames may be written below this file offset (0: none)
}

func newCommitMap(fd int) *commitMap { return &commitMap{fd: fd} }

// commit sets the commit byte of frame, just written at pos, and reports
// whether it could.
func (c *commitMap) commit(pos int64, fr []byte) (ok bool) {
	if c == nil {
		return false
	}
	// The state byte (offset 5) shares an aligned 32-bit word with the
	// version, kind and reserved bytes, which the frame already holds.
	at := pos + frame.OffState - 1
	if at%4 != 0 || len(fr) < frame.HeaderSize || len(fr) > commitMapMax {
		return false
	}
	return c.store(at, fr)
}

// store sets the commit byte of fr, whose state word is at at, through the
// mapping.
func (c *commitMap) store(at int64, fr []byte) (ok bool) {
	if c.mem == nil || at < c.off || at+4 > c.off+int64(len(c.mem)) {
		if !c.remap(at) {
			return false
		}
	}
	var word [4]byte
	copy(word[:], fr[frame.OffState-1:frame.OffState+3])
	word[1] = frame.StateCommitted
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&c.mem[at-c.off])), binary.NativeEndian.Uint32(word[:]))
	return true
}

// write copies frame fr, uncommitted, to pos through the mapping and then
// commits it (commit), and reports whether it could; where it could not,
// nothing was stored, and the caller pwrites the frame.
func (c *commitMap) write(pos int64, fr []byte) (ok bool) {
	end := pos + int64(len(fr))
	if !c.copies(len(fr)) || end > c.limit || fr[frame.OffState] == frame.StateCommitted {
		return false
	}
	if c.mem == nil || pos < c.off || end > c.off+int64(len(c.mem)) {
		if !c.remap(pos) || end > c.off+int64(len(c.mem)) {
			return false // the frame crosses a window boundary
		}
	}
	stored := func() (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		copy(c.mem[pos-c.off:end-c.off], fr)
		return true
	}()
	// The frame is 8-aligned, so its state word is 4-aligned; it is in
	// the window, whose pages the copy just touched.
	return stored && c.store(pos+frame.OffState-1, fr)
}

// copies says whether a frame of n bytes is one that write copies
// through the mapping (given room below the limit), rather than one the
// caller pwrites.
func (c *commitMap) copies(n int) bool {
	return c != nil && n >= frame.HeaderSize && n <= mapWriteMax
}

// setLimit says that the file holds allocated bytes up to limit.
func (c *commitMap) setLimit(limit int64) {
	if c != nil {
		c.limit = limit
	}
}

// remap maps the window that holds the byte at. A write that fails there
// leaves nothing stored.
func (c *commitMap) remap(at int64) bool {
	c.close()
	off := at &^ (commitWindow - 1)
	mem, err := unix.Mmap(c.fd, off, commitWindow, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	c.mem, c.off = mem, off
	return true
}

func (c *commitMap) close() {
	if c != nil && c.mem != nil {
		unix.Munmap(c.mem)
		c.mem = nil
	}
}
