package runnel

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// The synced checkpoint (partition.meta bytes 256–319) is the one thing
// recovery trusts after a power loss. It is written only after everything
// it covers was fdatasync'd, and counts only once partition.meta itself was
// synced after it (until then the disk still holds the previous one, which
// was just as true):
//
//	256  [16] boot id of the machine run that wrote it
//	272  i64  base offset of a segment
//	280  i64  byte position in that segment: every byte before it, every
//	          segment before it, and their directory entries are on disk
//	288  i64  offset of the record at that position (the next offset)
//	296  [16] reserved, zero
//	312  u64  xxhash64 of bytes 256–311: a checkpoint that a crash tore, or
//	          damage changed, is no checkpoint
//
// The first writer that finds a checkpoint of another boot (or none)
// knows the machine may have lost unsynced pages since: it re-verifies
// every frame from the checkpoint to the true end of the data (recovery.go).
const (
	metaCkptOff     = 256
	metaCkptBaseOff = 272
	metaCkptPosOff  = 280
	metaCkptNextOff = 288
	metaCkptSumOff  = 312
	metaCkptEnd     = 320
)

// checkpoint is a synced position of a partition: everything before pos in
// segment base, and every segment before base, is on disk.
type checkpoint struct {
	boot [16]byte
	base int64 // segment
	pos  int64 // byte position in it
	next int64 // offset at pos
}

func (cp checkpoint) String() string {
	return fmt.Sprintf("segment %020d byte %d (offset %d)", cp.base, cp.pos, cp.next)
}

// checkpoint returns the checkpoint in the mapping; ok is false when there
// is none (a new partition) or it does not check out.
func (m *metaMap) checkpoint() (cp checkpoint, ok bool) {
	b := m.mem[metaCkptOff:metaCkptEnd]
	if binary.LittleEndian.Uint64(b[metaCkptSumOff-metaCkptOff:]) != xxhash.Sum64(b[:metaCkptSumOff-metaCkptOff]) {
		return cp, false
	}
	copy(cp.boot[:], b)
	cp.base = int64(binary.LittleEndian.Uint64(m.mem[metaCkptBaseOff:]))
	cp.pos = int64(binary.LittleEndian.Uint64(m.mem[metaCkptPosOff:]))
	cp.next = int64(binary.LittleEndian.Uint64(m.mem[metaCkptNextOff:]))
	if cp.base < 0 || cp.pos < 0 || cp.next < cp.base {
		return cp, false
	}
	return cp, true
}

// setCheckpoint records cp in the mapping and syncs partition.meta. Only the
// holder of the writer lock calls it, after syncing what cp covers.
func (m *metaMap) setCheckpoint(cp checkpoint) error {
	if err := m.setCheckpointBytes(cp); err != nil {
		return err
	}
	return m.syncCheckpoint()
}

// syncCheckpoint syncs partition.meta, after setCheckpointBytes: from then
// on the checkpoint counts after a power loss. The writer lock need not be
// held any more: what the disk may hold until then was just as true.
func (m *metaMap) syncCheckpoint() error {
	observeSync(m.path, syncMeta, false, nil)
	err := unix.Msync(m.mem, unix.MS_SYNC)
	observeSync(m.path, syncMeta, true, err)
	if err != nil {
		return fmt.Errorf("runnel: sync %s: %w", m.path, err)
	}
	return nil
}

// setCheckpointBytes writes cp's bytes into the mapping.
func (m *metaMap) setCheckpointBytes(cp checkpoint) error {
	var b [metaCkptEnd - metaCkptOff]byte
	copy(b[:], cp.boot[:])
	binary.LittleEndian.PutUint64(b[metaCkptBaseOff-metaCkptOff:], uint64(cp.base))
	binary.LittleEndian.PutUint64(b[metaCkptPosOff-metaCkptOff:], uint64(cp.pos))
	binary.LittleEndian.PutUint64(b[metaCkptNextOff-metaCkptOff:], uint64(cp.next))
	binary.LittleEndian.PutUint64(b[metaCkptSumOff-metaCkptOff:], xxhash.Sum64(b[:metaCkptSumOff-metaCkptOff]))
	if m.readOnly {
		return errMetaReadOnly
	}
	copy(m.mem[metaCkptOff:metaCkptEnd], b[:])
	return nil
}

// currentBootID identifies this run of the machine (see bootid_*.go), so
// that a writer can tell a reboot (page cache lost: re-verify) from a
// process crash (page cache intact). All zeros where the system offers
// nothing: then no reboot can be told, and only a partition without a
// checkpoint is re-verified. It is the one source of the boot id that
// checkpoints and durable points are written with and compared to; tests
// that simulate a restart replace it while no Log is open
// (setBootIDForTest).
var currentBootID = readBootID()
