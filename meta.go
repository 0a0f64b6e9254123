package runnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// partition.meta is a small file every process maps shared. Byte 0 is the
// writer lock (a byte-range lock; its content is unused). The rest is
// state that processes share through the mapping rather than by messages:
//
//	 64  u32  append sequence: bumped after every commit; readers sleep on it
//	 68  u32  sleeping readers: writers wake only when it is non-zero
//	 72  u32  deleted: set under the writer lock by DeleteTopic
//	128  [16] boot id of the machine run that last wrote the durable point
//	144  i64  segment base of the last durable point
//	152  i64  byte position of the last durable point in that segment
//	160  i64  offset of the first record at or after the durable point
//	168  u64  xxhash64 of bytes 128-167: a point torn by a crash mid-update
//	          is recognised and ignored
//
// The durable point is where fdatasync last completed: after a reboot,
// recovery re-verifies every frame after it (DESIGN §3).
const (
	metaSize        = 4096
	metaSeqOff      = 64
	metaSleepersOff = 68
	metaDeletedOff  = 72
	metaBootOff     = 128
	metaDurBaseOff  = 144
	metaDurPosOff   = 152
	metaDurNextOff  = 160
	metaDurSumOff   = 168
)

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
}

var errMetaReadOnly = errors.New("partition meta is read-only here")

// openMeta maps dir/partition.meta, creating it at its full size. The file
// is opened through openLockFile, never directly: with classic fcntl locks
// (off Linux) closing any descriptor of the file would drop this process's
// writer lock on it, and the lock table shares one descriptor instead.
//
// A process that may only read the partition gets a read-only mapping; if
// the file is missing or short there, a private zeroed copy (see
// metaMap.private).
func openMeta(dir string) (*metaMap, error) {
	path := filepath.Join(dir, metaFileName)
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
	} else if st.Size() < metaSize {
		// Growing is idempotent, so racing processes agree; nothing ever
		// shrinks the file, so the mapping can never fault.
		if err := f.Truncate(metaSize); err != nil {
			return nil, fmt.Errorf("runnel: size %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, metaSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("runnel: map %s: %w", path, err)
	}
	return &metaMap{mem: mem, path: path, readOnly: lf.readOnly}, nil
}

// privateMeta is a metaMap over this process's own memory, holding data.
func privateMeta(path string, data []byte) *metaMap {
	mem := make([]byte, metaSize)
	copy(mem, data)
	return &metaMap{mem: mem, path: path, readOnly: true, private: true}
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

func (m *metaMap) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&m.mem[off]))
}

func (m *metaMap) i64(off int) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(&m.mem[off]))
}

// seq is the append sequence word that readers sleep on.
func (m *metaMap) seq() *atomic.Uint32 { return m.u32(metaSeqOff) }

// sleepers counts readers asleep on seq, across processes.
func (m *metaMap) sleepers() *atomic.Uint32 { return m.u32(metaSleepersOff) }

// deleted reports whether the partition's topic was deleted, by any
// process: its files may live on, open, after the directory is gone.
func (m *metaMap) deleted() bool { return m.u32(metaDeletedOff).Load() != 0 }

// published bumps the append sequence and wakes sleeping readers.
func (m *metaMap) published() {
	m.seq().Add(1)
	if m.sleepers().Load() > 0 {
		wakeAll(m.seq())
	}
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
// on disk, and that next is the offset there. Only the writer-lock holder
// calls it. The fields are written without a lock against readers of the
// point, which only the next writer-lock holder is.
func (m *metaMap) setDurablePoint(boot [16]byte, base, pos, next int64) {
	if !bytes.Equal(m.mem[metaBootOff:metaBootOff+16], boot[:]) {
		copy(m.mem[metaBootOff:], boot[:])
	}
	m.i64(metaDurBaseOff).Store(base)
	m.i64(metaDurPosOff).Store(pos)
	m.i64(metaDurNextOff).Store(next)
	binary.LittleEndian.PutUint64(m.mem[metaDurSumOff:], xxhash.Sum64(m.mem[metaBootOff:metaDurSumOff]))
}

// currentBootID identifies this run of the machine (see machineBootID).
var currentBootID = machineBootID
