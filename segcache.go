package runnel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// The segment cache bounds the descriptors that readers hold. Every
// reader of the Log (consumers, the Kafka server's fetches, Describe)
// reads segment files through it: a reader keeps a handle (segHandle) on
// the file it is in, and holds the file's descriptor only for the length
// of one read or stat. So however many readers of however many
// partitions a Log has, at most the cache's capacity of segment
// descriptors are open: a handle whose file was closed to make room opens
// it again on its next read, and a reader that finds the cache full of
// files being read at this instant waits for one of those reads to end.
//
// A file idle through a whole sweep of the Log's (every idleRelease, as
// for partitions: openparts.go) is closed too, whatever room there is, so
// a reader that stops reading without closing (a consumer whose
// application polls no more for now) holds no segment open past that:
// one that retention removes meanwhile frees its space within 10 to 20
// seconds, and the reader's next read finds it removed, as after a close
// for room.
//
// A reader must see the file it opened, not whatever bears its name later
// (retention removes segments; a topic deleted and created again reuses
// the names), so a handle remembers the file's identity and a reopened
// file that is another, or gone, is reported as errSegmentGone: the
// reader then re-reads the directory, as after any removal. Identity is
// the device and inode number: a file created after the remembered one was
// removed and closed may be given the same inode number, and is then taken
// for it. That needs a segment replaced under its name while a reader is
// in it, which only a topic deleted and created again does (its readers
// then fail with ErrTopicNotFound at the first bytes that do not follow
// on) or a salvage (which keeps every offset where it was).

// errSegmentGone says that the segment file a reader was reading was
// removed (or replaced) while the cache had closed it, for room or idle.
var errSegmentGone = errors.New("segment removed while the cache had its file closed")

// segCache is a Log's bounded set of open segment files, shared by its
// readers, closed least recently used first.
type segCache struct {
	mu     sync.Mutex
	freed  sync.Cond // a read ended: a file may be closed for room now
	limit  int       // open files at most
	open   int       // files open, referenced or not
	idle   cachedSeg // sentinel of the files open and not referenced: idle.next most recent
	closed bool
	opens  int64 // files opened so far
	peak   int   // the most files open at once
}

// cachedSeg is one reader's segment file as the cache knows it: each
// handle has its own, so two readers of one segment hold a descriptor each
// while both read (sharing one per file is left for later).
type cachedSeg struct {
	path string
	id   os.FileInfo // the file first opened: a reopen must be the same
	f    *os.File    // nil while closed for room
	refs int         // reads in progress
	// prev, next: its neighbours in the cache's idle list, while parked
	// there. The list is linked through the entries, not a
	// container/list, so that parking allocates nothing: a consumer
	// woken for each record parks its file after every read and stat.
	prev, next *cachedSeg
	done       bool // its handle was closed: the file closes with the last read
	used       bool // parked since the last sweep
}

// parked reports whether cs is in the idle list.
func (cs *cachedSeg) parked() bool { return cs.next != nil }

// unpark takes cs out of the idle list, if it is there.
func (cs *cachedSeg) unpark() {
	if cs.parked() {
		cs.prev.next, cs.next.prev = cs.next, cs.prev
		cs.prev, cs.next = nil, nil
	}
}

func newSegCache(limit int) *segCache {
	c := &segCache{limit: limit}
	c.idle.prev, c.idle.next = &c.idle, &c.idle
	c.freed.L = &c.mu
	return c
}

// segHandle is a reader's hold on one segment file: it implements the
// cursor's segmentFile, opening the file only for each read.
type segHandle struct {
	c  *segCache
	cs *cachedSeg
}

// openSegmentFile opens the segment at path for reading through the
// cache. It fails as os.Open does (fs.ErrNotExist for a missing file),
// and with openRegular's *CorruptError for anything but a regular file.
func (c *segCache) openSegmentFile(path string) (*segHandle, error) {
	f, err := c.openFile(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		c.closeFile(f)
		return nil, err
	}
	cs := &cachedSeg{path: path, id: st, f: f}
	c.mu.Lock()
	c.parkLocked(cs)
	c.mu.Unlock()
	return &segHandle{c: c, cs: cs}, nil
}

// openFile opens path read-only, counted, first closing the least
// recently used idle file if the cache is full (and waiting if every file
// is being read).
func (c *segCache) openFile(path string) (*os.File, error) {
	c.mu.Lock()
	for !c.closed && c.open >= c.limit {
		if !c.evictLocked() {
			c.freed.Wait()
		}
	}
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.open++
	c.opens++
	c.peak = max(c.peak, c.open)
	c.mu.Unlock()
	f, err := openRegularRead(path)
	if err != nil {
		c.mu.Lock()
		c.open--
		c.freed.Signal()
		c.mu.Unlock()
		return nil, err
	}
	return f, nil
}

// closeFile closes a file openFile opened that the cache does not keep.
func (c *segCache) closeFile(f *os.File) {
	f.Close()
	c.mu.Lock()
	c.open--
	c.freed.Signal()
	c.mu.Unlock()
}

// evictLocked closes the least recently used file that no read uses, and
// reports whether there was one. The caller holds c.mu.
func (c *segCache) evictLocked() bool {
	cs := c.idle.prev
	if cs == &c.idle {
		return false
	}
	c.closeIdleLocked(cs)
	return true
}

// closeIdleLocked closes the file of cs, which no read uses: its handle
// opens it again on its next read. The caller holds c.mu.
func (c *segCache) closeIdleLocked(cs *cachedSeg) {
	cs.unpark()
	cs.f.Close()
	cs.f = nil
	c.open--
}

// parkLocked makes an open file with no reads in progress the most
// recently used one. The caller holds c.mu.
func (c *segCache) parkLocked(cs *cachedSeg) {
	if c.closed {
		cs.f.Close()
		cs.f = nil
		c.open--
		return
	}
	cs.prev, cs.next = &c.idle, c.idle.next
	cs.next.prev, c.idle.next = cs, cs
	cs.used = true
	c.freed.Signal()
}

// sweep closes the idle files not read since the last sweep, and
// unmarks the others.
func (c *segCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for cs := c.idle.next; cs != &c.idle; {
		next := cs.next
		if cs.used {
			cs.used = false
		} else {
			c.closeIdleLocked(cs)
			c.freed.Signal()
		}
		cs = next
	}
}

// acquire returns the handle's file for one read, opening it again if it
// was closed for room. release must follow.
func (h *segHandle) acquire() (*os.File, error) {
	c, cs := h.c, h.cs
	c.mu.Lock()
	if cs.f != nil {
		cs.unpark()
		cs.refs++
		f := cs.f
		c.mu.Unlock()
		return f, nil
	}
	c.mu.Unlock()
	// Closed for room: open it again. A handle is one reader's, so no
	// other goroutine reopens it meanwhile.
	f, err := c.openFile(cs.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("runnel: %s: %w", cs.path, errSegmentGone)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !os.SameFile(st, cs.id) {
		c.closeFile(f)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("runnel: %s: %w", cs.path, errSegmentGone)
	}
	c.mu.Lock()
	cs.f = f
	cs.refs++
	c.mu.Unlock()
	return f, nil
}

// release ends a read that acquire began.
func (h *segHandle) release() {
	c, cs := h.c, h.cs
	c.mu.Lock()
	cs.refs--
	switch {
	case cs.refs > 0 || cs.f == nil:
	case cs.done:
		cs.f.Close()
		cs.f = nil
		c.open--
		c.freed.Signal()
	default:
		c.parkLocked(cs)
	}
	c.mu.Unlock()
}

// letGo closes the handle's file now, unless a read uses it, as if for
// room: its next read opens it again, or finds it removed. A reader that
// will not read for a while (a paused partition) lets its file go, so
// that a segment retention removes meanwhile frees its space.
func (h *segHandle) letGo() {
	c, cs := h.c, h.cs
	c.mu.Lock()
	if cs.f != nil && cs.refs == 0 {
		c.closeIdleLocked(cs)
		c.freed.Signal()
	}
	c.mu.Unlock()
}

// ReadAt reads from the segment file (io.ReaderAt).
func (h *segHandle) ReadAt(b []byte, off int64) (int, error) {
	f, err := h.acquire()
	if err != nil {
		return 0, err
	}
	defer h.release()
	return f.ReadAt(b, off)
}

// Stat returns the segment file's FileInfo now.
func (h *segHandle) Stat() (os.FileInfo, error) {
	f, err := h.acquire()
	if err != nil {
		return nil, err
	}
	defer h.release()
	return f.Stat()
}

// Close lets the handle's file go: closed now, as its reader is done
// with it. The handle must not be used after.
func (h *segHandle) Close() error {
	c, cs := h.c, h.cs
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.done = true
	if cs.f == nil || cs.refs > 0 {
		return nil
	}
	cs.unpark()
	err := cs.f.Close()
	cs.f = nil
	c.open--
	c.freed.Signal()
	return err
}

// close closes every idle file; files being read are closed when their
// read ends, and later opens fail with ErrClosed.
func (c *segCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for c.evictLocked() {
	}
	c.freed.Broadcast()
}

// stats returns the files open now, the most open at once, and how many
// were opened so far.
func (c *segCache) stats() (open, peak int, opens int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.peak, c.opens
}

// segmentFile is what a cursor reads a segment through: an *os.File, or
// a reader's handle on the Log's segment cache.
type segmentFile interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}
