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
// (README, Performance): it pays off only when many frames share a page.
const commitMapMax = 512

// commitMap is a segment's mapped window. It is used under the writer
// lock (p.wmu) only.
type commitMap struct {
	fd  int
	mem []byte
	off int64 // file offset of mem[0]
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

// remap maps the window that holds the byte at.
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
