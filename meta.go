package runnel

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// partition.meta is a small file every process maps shared. Byte 0 is the
// writer lock (a byte-range lock; its content is unused). The rest is
// state that processes share through the mapping rather than by messages:
//
//	 64  u32  append sequence: bumped after every commit; readers sleep on it
//	 68  u32  sleeping readers: writers wake only when it is non-zero
//	128  [16] boot id of the machine run that last wrote the durable point
//	144  i64  segment base of the last durable point
//	152  i64  byte position of the last durable point in that segment
//	160  i64  offset of the first record at or after the durable point
//
// The durable point is where fdatasync last completed: after a reboot,
// recovery re-verifies every frame after it (DESIGN §3).
const (
	metaSize        = 4096
	metaSeqOff      = 64
	metaSleepersOff = 68
	metaBootOff     = 128
	metaDurBaseOff  = 144
	metaDurPosOff   = 152
	metaDurNextOff  = 160
)

// metaMap is one process's shared mapping of a partition.meta file.
type metaMap struct {
	mem []byte
}

// openMeta maps dir/partition.meta, creating it at its full size.
func openMeta(dir string) (*metaMap, error) {
	path := dir + string(os.PathSeparator) + metaFileName
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runnel: open %s: %w", path, err)
	}
	defer f.Close() // the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Growing is idempotent, so racing processes agree; nothing ever
	// shrinks the file, so the mapping can never fault.
	if st.Size() < metaSize {
		if err := f.Truncate(metaSize); err != nil {
			return nil, fmt.Errorf("runnel: size %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, metaSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("runnel: map %s: %w", path, err)
	}
	return &metaMap{mem: mem}, nil
}

func (m *metaMap) close() error {
	if m == nil || m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem = nil
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

// published bumps the append sequence and wakes sleeping readers.
func (m *metaMap) published() {
	m.seq().Add(1)
	if m.sleepers().Load() > 0 {
		wakeAll(m.seq())
	}
}

// durablePoint returns the boot id and position of the last fdatasync.
func (m *metaMap) durablePoint() (boot [16]byte, base, pos, next int64) {
	copy(boot[:], m.mem[metaBootOff:])
	return boot, m.i64(metaDurBaseOff).Load(), m.i64(metaDurPosOff).Load(), m.i64(metaDurNextOff).Load()
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
}

// currentBootID identifies this run of the machine, so that a writer can
// tell a reboot (page cache lost: re-verify) from a process crash (page
// cache intact). Where the kernel offers none it is all zeros, and every
// first append re-verifies from the durable point.
var currentBootID = func() [16]byte {
	var id [16]byte
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(data)), "-", ""))
	if err != nil || len(raw) != len(id) {
		return id
	}
	copy(id[:], raw)
	return id
}()
