package runnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// partition.meta is a small file every process maps shared. Byte 0 is the
// writer lock and byte 84 the sync lock (byte-range locks; the bytes' values
// are unused). The rest is state that processes share through the mapping
// rather than by messages (docs/FORMAT.md has the full table):
//
//	  64  u32  append sequence: bumped after every commit; readers sleep on it
//	  68  u32  sleeping readers, counted through the slots at 1024
//	  72  u32  deleted: set under the writer lock by DeleteTopic
//	  76  u32  processes waiting for the writer lock, counted through the
//	           slots at 1536: the holder keeps the lock between appends
//	           only while it is zero
//	  80  u32  durable sequence: bumped after every advance of the durable
//	           point; appenders waiting for durability sleep on it
//	  88  u32  tail sequence: odd while the writer-lock holder updates the
//	           published tail (a sequence lock)
//	  92  u32  kept: 1 while a writer keeps the writer lock between
//	           appends (waiters wake its watcher only then)
//	  96  i64  published tail: segment base,
//	 104  i64  byte position and
//	 112  i64  next offset after the last committed frame
//	 120  u32  processes the last shared fdatasync woke, and
//	 124  u32  the append sequence when it woke them: the next syncer
//	           gives them a moment to commit again (commit.go)
//	 128  [16] boot id of the machine run that last wrote the durable point
//	 144  i64  segment base of the durable point ("durable up to")
//	 152  i64  byte position of the durable point in that segment
//	 160  i64  offset of the first record at or after the durable point
//	 168  u64  xxhash64 of bytes 128-167: a point torn by a crash mid-update
//	           is recognised and ignored
//	 176  i64  newest record timestamp in the published tail's segment
//	 184  u64  tail check: xxhash64 of the published tail (96-119), that
//	           timestamp and the boot id, so a writer may start its tail
//	           search there (tail.go) only from a tail of this machine run
//	           that a runnel with this field published whole
//	 192  i64  zeros left at a hand-over: segment base,
//	 200  i64  byte position where they start (the tail then) and
//	 208  i64  where they end (the file's size, or where the zeros the
//	           holder wrote for real end: zerowrite.go)
//	 216  u64  xxhash64 of 192-215 and the boot id; the next holder of the
//	           writer lock takes the statement and zeroes this word at once
//	           (zerosLeft)
//	 224  u32  partition 0's file only: the topic's partition count, stored
//	           (and woken) by AlterTopic once topic.json has it, so other
//	           processes' handles notice a growth at once (topic_hint.go).
//	           A hint: only topic.json says the count
//	 240  i64  log start word: the start DeleteRecords recorded in the
//	           log-start file, once it is on disk (log_start.go)
//	1024 [128]u32 sleeping-reader slots (presence.go)
//	1536 [64]u32  writer-lock waiter slots
//
// The durable point says that every frame before it is on disk: it only
// moves after an fdatasync that covered it completed, and only the holder
// of the sync lock moves it. After a reboot, recovery re-verifies every
// frame after it (DESIGN §3). The published tail is live state only: it
// tells a syncer what its fdatasync will cover and a writer where to start
// looking for the tail, and recovery never reads it.
const (
	metaSize        = 4096
	metaSeqOff      = 64
	metaSleepersOff = 68
	metaDeletedOff  = 72
	metaWaitersOff  = 76
	metaDurSeqOff   = 80
	metaTailSeqOff  = 88
	metaKeptOff     = 92
	metaTailBaseOff = 96
	metaTailPosOff  = 104
	metaTailNextOff = 112
	metaWokeOff     = 120
	metaWokeSeqOff  = 124
	metaBootOff     = 128
	metaDurBaseOff  = 144
	metaDurPosOff   = 152
	metaDurNextOff  = 160
	metaDurSumOff   = 168
	metaTailTimeOff = 176
	metaTailSumOff  = 184
	metaZerosOff    = 192
	metaZerosSumOff = 216
	metaPartsOff    = 224
	metaLogStartOff = 240

	metaSleeperSlotsOff = 1024
	metaSleeperSlots    = 128
	metaWaiterSlotsOff  = 1536
	metaWaiterSlots     = 64
)

// syncLockByte is the byte of partition.meta whose byte-range lock the
// process running a shared fdatasync holds (commit.go).
const syncLockByte = 84

// metaMap is one process's shared mapping of a partition.meta file.
type metaMap struct {
	mem  []byte
	lf   *lockFile
	path string
	// readOnly: the process may only read the file, so the mapping is
	// read-only (or private, below): it never writes a word, and never
	// counts itself as a sleeper.
	readOnly bool
	// private: the file could not be mapped shared (it is missing or
	// short, and may not be written), so mem is this process's own copy:
	// no writer's wake-up or append reaches it, and waits must poll.
	private bool

	sleeping presence // readers asleep on seq
	waiting  presence // processes waiting for the writer lock

	// The sleeping-reader slot of the Consumer that owns this mapping,
	// claimed at its first sleep and kept until close.
	sleepSlot   presenceSlot
	slotClaimed bool
}

var errMetaReadOnly = errors.New("partition meta is read-only here")

// openMeta maps dir/partition.meta, creating it at its full size with its
// blocks allocated (createMeta). The file is opened through openLockFile,
// never directly: with classic fcntl locks (off Linux) closing any
// descriptor of the file would drop this process's writer lock on it, and
// the lock table shares one descriptor instead.
//
// A process that may only read the partition gets a read-only mapping; if
// the file is missing or short there, a private zeroed copy (see
// metaMap.private).
func openMeta(dir string) (*metaMap, error) {
	path := filepath.Join(dir, metaFileName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		// Where it may not be created (no permission, or the topic was
		// deleted), opening says so, as it always has.
		if err := createMeta(path); err != nil && !isPermission(err) && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("runnel: create %s: %w", path, err)
		}
	}
	lf, err := openLockFile(path)
	if isPermission(err) {
		return privateMeta(path, nil), nil
	}
	if err != nil {
		return nil, fmt.Errorf("runnel: open %s: %w", path, err)
	}
	m, err := mapMeta(lf, path)
	if err != nil {
		lf.Close()
		return nil, err
	}
	m.lf = lf
	return m, nil
}

func mapMeta(lf *lockFile, path string) (*metaMap, error) {
	f := lf.File()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if lf.readOnly {
		if st.Size() < metaSize {
			// Mapping past the end would fault, and growing the file
			// needs write permission: read what there is instead.
			buf := make([]byte, metaSize)
			n, _ := f.ReadAt(buf, 0)
			return privateMeta(path, buf[:n]), nil
		}
		prot = unix.PROT_READ
	} else if err := metaAllocate(f, metaSize); err != nil {
		// Every writable mapping gets here, not only the creator's: a
		// file that an older version grew sparse (by truncation) gets
		// its blocks now, before any store into it.
		return nil, fmt.Errorf("runnel: allocate %s: %w", path, err)
	}
	if !lf.readOnly {
		// Give the page blocks now: the first store into a sparse page of
		// a shared mapping allocates them, and on a full disk that store
		// is a SIGBUS, which nothing can recover from. Here a full disk
		// is an error.
		if err := reserveBlocks(int(f.Fd()), 0, metaSize); errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
			return nil, fmt.Errorf("runnel: allocate %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, metaSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("runnel: map %s: %w", path, err)
	}
	return newMetaMap(mem, path, lf.readOnly, false), nil
}

// Every store into the shared mapping must land on a block the file
// system already holds: a store into a hole needs a block at fault time,
// and when the disk is full the kernel can only answer with SIGBUS, which
// kills the process (TestManyPartitionsUnderFileLimit did that on a full
// disk). So partition.meta is created whole, with real blocks, under a
// temporary name and linked into place (a concurrent creator's file, which
// others may already map, is never replaced), and every process that maps
// it writable first makes sure of its blocks (metaAllocate). A full disk
// is then an error from opening the partition, naming the file.

// metaAllocate gives f real blocks for its first size bytes, growing it to
// size if it is shorter, without changing a byte that is there. Tests
// replace it to see a full disk.
var metaAllocate = allocateFile

// createMeta creates path as a whole partition.meta of zeros. It is not
// synced: a power loss may leave it short or sparse, and the next process
// to map it allocates it again (mapMeta); nothing in it counts after a
// power loss unless its checksum says so.
func createMeta(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+metaFileName+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o644) // as openLockFile would create it
	if err == nil {
		err = metaAllocate(tmp, metaSize)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// newMetaMap is a metaMap over mem.
func newMetaMap(mem []byte, path string, readOnly, private bool) *metaMap {
	m := &metaMap{mem: mem, path: path, readOnly: readOnly, private: private}
	m.sleeping = presence{m: m, countOff: metaSleepersOff, slotsOff: metaSleeperSlotsOff, slots: metaSleeperSlots}
	m.waiting = presence{m: m, countOff: metaWaitersOff, slotsOff: metaWaiterSlotsOff, slots: metaWaiterSlots}
	return m
}

// privateMeta is a metaMap over this process's own memory, holding data.
func privateMeta(path string, data []byte) *metaMap {
	mem := make([]byte, metaSize)
	copy(mem, data)
	return newMetaMap(mem, path, true, true)
}

// shared reports whether writers' wake-ups reach sleepers on this mapping:
// it is mapped shared, and a sleeper may count itself in it.
func (m *metaMap) shared() bool { return !m.readOnly }

func (m *metaMap) close() error {
	if m == nil || m.mem == nil {
		return nil
	}
	var err error
	if !m.private {
		err = unix.Munmap(m.mem)
	}
	m.mem = nil
	if m.lf != nil {
		err = errors.Join(err, m.lf.Close())
	}
	return err
}

// blank replaces the mapping, in place, by private zero memory of its
// size: words loaded through it read zero from then on, and the file is
// no longer mapped. close unmaps it.
func (m *metaMap) blank() error {
	if m.private || m.mem == nil {
		return nil
	}
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&m.mem[0]), uintptr(len(m.mem)), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("runnel: unmap %s: %w", m.path, err)
	}
	return nil
}

func (m *metaMap) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&m.mem[off]))
}

func (m *metaMap) i64(off int) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(&m.mem[off]))
}

// seq is the append sequence word that readers sleep on.
func (m *metaMap) seq() *atomic.Uint32 { return m.u32(metaSeqOff) }

// deleted reports whether the partition's topic was deleted, by any
// process: its files may live on, open, after the directory is gone.
func (m *metaMap) deleted() bool { return m.u32(metaDeletedOff).Load() != 0 }

// metaDeleted is deleted, read from the partition.meta at path without
// mapping it (and without creating it: no file, no mark).
func metaDeleted(path string) (bool, error) {
	// Through the lock table, never a descriptor of its own: off Linux,
	// closing one would drop this process's locks on the file.
	lf, err := openExistingLockFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("runnel: read %s: %w", path, err)
	}
	defer lf.Close()
	var word [4]byte
	if _, err := lf.File().ReadAt(word[:], metaDeletedOff); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("runnel: read %s: %w", path, err)
	}
	return word != [4]byte{}, nil
}

// published bumps the append sequence and wakes sleeping readers. A
// wake-up that finds nobody asleep while readers are counted may mean a
// reader was killed in its sleep: the count heals itself.
func (m *metaMap) published() {
	m.seq().Add(1)
	if m.sleeping.count().Load() > 0 && wakeAll(m.seq()) == 0 {
		m.sleeping.heal(m.lf)
	}
}

// sleepIn counts the mapping's owner among the partition's sleeping
// readers, before it sleeps on seq. Its slot is claimed on the first
// sleep, through a lock file opened then if detach closed the mapping's
// (a byte-range lock lives only as long as its descriptor); if that
// cannot be opened, the owner is counted without a slot this time.
func (m *metaMap) sleepIn() {
	if !m.slotClaimed {
		if m.lf == nil {
			m.lf, _ = openLockFile(m.path)
		}
		if m.lf != nil {
			m.sleepSlot, m.slotClaimed = m.sleeping.claim(m.lf), true
		} else {
			m.sleepSlot = presenceSlot{i: -1}
		}
	}
	m.sleeping.enter(m.sleepSlot)
}

// detach closes the mapping's descriptor, which the mapping itself does
// not need: a consumer reading many partitions then holds a descriptor
// only for each partition it has slept on (sleepIn). The mapping must
// hold no lock through it yet.
func (m *metaMap) detach() {
	if m.lf != nil && !m.slotClaimed && !m.private {
		m.lf.Close()
		m.lf = nil
	}
}

// sleepOut counts it out again, after the sleep.
func (m *metaMap) sleepOut() { m.sleeping.leave(m.sleepSlot) }

// kept is 1 while a writer keeps the writer lock between appends.
func (m *metaMap) kept() *atomic.Uint32 { return m.u32(metaKeptOff) }

// durSeq is the word that appenders waiting for another process's
// fdatasync sleep on.
func (m *metaMap) durSeq() *atomic.Uint32 { return m.u32(metaDurSeqOff) }

// logPos is a place in a partition: a segment, a byte position in it, and
// the offset of the record that goes there.
type logPos struct {
	base, pos, next int64
}

// publishTail records where the committed data now ends, and the newest
// record timestamp in that segment. Only the writer-lock holder calls it.
// The sequence word is odd while the words change; a writer killed in
// between leaves it odd, and the next one makes it even again.
func (m *metaMap) publishTail(t logPos, maxTS int64) {
	s := m.u32(metaTailSeqOff)
	v := s.Load() | 1
	s.Store(v)
	m.i64(metaTailBaseOff).Store(t.base)
	m.i64(metaTailPosOff).Store(t.pos)
	m.i64(metaTailNextOff).Store(t.next)
	m.i64(metaTailTimeOff).Store(maxTS)
	m.i64(metaTailSumOff).Store(int64(tailCheck(t, maxTS, currentBootID)))
	s.Store(v + 1)
}

// tailCheck is the published tail's check word. The boot id in it makes a
// tail of an earlier machine run, which may name bytes a power loss took,
// fail the check; so does one that a runnel without the word published,
// whose timestamp is not the tail's.
func tailCheck(t logPos, maxTS int64, boot [16]byte) uint64 {
	var b [48]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(t.base))
	binary.LittleEndian.PutUint64(b[8:], uint64(t.pos))
	binary.LittleEndian.PutUint64(b[16:], uint64(t.next))
	binary.LittleEndian.PutUint64(b[24:], uint64(maxTS))
	copy(b[32:], boot[:])
	return xxhash.Sum64(b[:])
}

// heldTail reads the published tail and its segment's newest timestamp for
// the holder of the writer lock. Nobody else publishes while it holds the
// lock, so an odd sequence word is not a publish in progress but one a
// writer died in: ok is false then, without waiting, and when the check
// word does not match.
func (m *metaMap) heldTail() (t logPos, maxTS int64, ok bool) {
	s := m.u32(metaTailSeqOff)
	v := s.Load()
	if v&1 != 0 {
		return t, 0, false
	}
	t = logPos{m.i64(metaTailBaseOff).Load(), m.i64(metaTailPosOff).Load(), m.i64(metaTailNextOff).Load()}
	maxTS = m.i64(metaTailTimeOff).Load()
	sum := uint64(m.i64(metaTailSumOff).Load())
	return t, maxTS, s.Load() == v && sum == tailCheck(t, maxTS, currentBootID)
}

// tail reads the published tail. ok is false if it kept changing (or a
// dead writer left it half written) for a hundred reads in a row.
func (m *metaMap) tail() (t logPos, ok bool) {
	s := m.u32(metaTailSeqOff)
	for range 100 {
		v := s.Load()
		if v&1 == 0 {
			t = logPos{m.i64(metaTailBaseOff).Load(), m.i64(metaTailPosOff).Load(), m.i64(metaTailNextOff).Load()}
			if s.Load() == v {
				return t, true
			}
		}
		runtime.Gosched()
	}
	return logPos{}, false
}

// durableNext returns the offset below which every record is on disk, by
// the durable point recorded in this machine run; ok is false when there
// is none (or it is being updated right now).
func (m *metaMap) durableNext() (next int64, ok bool) {
	boot, _, _, next, ok := m.durablePoint()
	return next, ok && boot == currentBootID
}

// durablePoint returns the boot id and position of the last fdatasync.
// ok is false when the recorded point is torn (or was never written).
func (m *metaMap) durablePoint() (boot [16]byte, base, pos, next int64, ok bool) {
	copy(boot[:], m.mem[metaBootOff:])
	base, pos, next = m.i64(metaDurBaseOff).Load(), m.i64(metaDurPosOff).Load(), m.i64(metaDurNextOff).Load()
	ok = xxhash.Sum64(m.mem[metaBootOff:metaDurSumOff]) == binary.LittleEndian.Uint64(m.mem[metaDurSumOff:])
	return boot, base, pos, next, ok
}

// setDurablePoint records that everything before pos in segment base is
// on disk, and that next is the offset there. Only the holder of the sync
// lock calls it (partition.setDurablePoint), so no two writers interleave
// the fields; a reader that reads them mid-update sees a checksum that
// does not match, and ok false.
func (m *metaMap) setDurablePoint(boot [16]byte, base, pos, next int64) {
	if !bytes.Equal(m.mem[metaBootOff:metaBootOff+16], boot[:]) {
		copy(m.mem[metaBootOff:], boot[:])
	}
	m.i64(metaDurBaseOff).Store(base)
	m.i64(metaDurPosOff).Store(pos)
	m.i64(metaDurNextOff).Store(next)
	binary.LittleEndian.PutUint64(m.mem[metaDurSumOff:], xxhash.Sum64(m.mem[metaBootOff:metaDurSumOff]))
}

// zeroRun is a range of a segment file that holds nothing but zeros: the
// extension a writer left ahead of its tail when it let the writer lock go
// (prealloc.go), up to the file's end, or up to where the zeros it wrote
// for real end (zerowrite.go); any bytes past it are zeros too.
type zeroRun struct {
	base, from, to int64
}

// leaveZeros records, as the writer lock's holder lets it go, that segment
// base holds zeros from its tail, from, to its end, to: the next holder
// may write its frames into them without reading them first. The check
// word is written last, so a holder killed halfway leaves a statement that
// fails it.
func (m *metaMap) leaveZeros(z zeroRun) {
	m.i64(metaZerosOff).Store(z.base)
	m.i64(metaZerosOff + 8).Store(z.from)
	m.i64(metaZerosOff + 16).Store(z.to)
	m.i64(metaZerosSumOff).Store(int64(zerosCheck(z, currentBootID)))
}

// takeZeros reads the statement leaveZeros made, for a writer that has
// just taken the writer lock, and withdraws it: from now on only this
// holder knows what it writes past the tail, and if it dies holding the
// lock, the next one finds no statement and reads the bytes. ok is false
// when there is none, or one of another machine run (whose zeros a power
// loss may have half-filled).
func (m *metaMap) takeZeros() (z zeroRun, ok bool) {
	sum := uint64(m.i64(metaZerosSumOff).Load())
	if sum == 0 {
		return z, false
	}
	m.i64(metaZerosSumOff).Store(0)
	z = zeroRun{m.i64(metaZerosOff).Load(), m.i64(metaZerosOff + 8).Load(), m.i64(metaZerosOff + 16).Load()}
	return z, sum == zerosCheck(z, currentBootID) && z.from < z.to
}

// zerosCheck is the check word of a zeros statement of machine run boot.
func zerosCheck(z zeroRun, boot [16]byte) uint64 {
	var b [40]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(z.base))
	binary.LittleEndian.PutUint64(b[8:], uint64(z.from))
	binary.LittleEndian.PutUint64(b[16:], uint64(z.to))
	copy(b[24:], boot[:])
	return xxhash.Sum64(b[:])
}
