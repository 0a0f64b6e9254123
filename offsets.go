package runnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// groups/<group>/<topic>.offsets holds a consumer group's committed offsets
// for one topic, and is the file whose byte-range locks say who is in the
// group and who owns which partition. docs/FORMAT.md ("Group offsets file")
// is the reference for the layout; in short:
//
//	0        header, 64 bytes, checksummed, written once at creation
//	4096     control page, mapped shared by every member: wake-up words
//	8192     member table: 1024 records of 64 bytes, one per member slot
//	73728    partition blocks, 128 bytes each: two commit slots, the
//	         owner record and a reset request
//
// A commit writes the slot that does not hold the latest commit, with the
// next sequence number and a checksum, in one pwrite: a torn write leaves
// at worst an invalid slot, and the other slot still holds the previous
// commit. Both slots start out valid ("no commit"), so a file in which
// neither slot of a partition verifies is damage, reported as a
// *CorruptError, never read as "no commit".
//
// Locks (one byte each, far past the data; lock bytes need no file data):
//
//	1<<30 + p            ownership of partition p
//	1<<30 + 1<<17 + s    member slot s, held while the member lives
//	1<<30 + 1<<18        admin lock: serializes ResetGroupOffsets,
//	                     DeleteGroup and DeleteGroupOffsets
const (
	offsetsMagic   = "RUNNELOF"
	offsetsVersion = 1
	offsetsExt     = ".offsets"

	offHeaderSize = 64
	offCtlOff     = 4096 // control page
	offMembersOff = 8192 // member table
	maxMembers    = 1024
	memberRecSize = 64
	offBlocksOff  = offMembersOff + maxMembers*memberRecSize // 73728
	blockSize     = 128

	// Within a partition block.
	slotSize     = 40
	slotAOff     = 0
	slotBOff     = slotSize
	ownerRecOff  = 2 * slotSize // 80
	ownerRecSize = 24
	reqRecOff    = ownerRecOff + ownerRecSize // 104
	reqRecSize   = 24

	// Within the control page.
	ctlGenOff   = 0  // u32: bumped on every join, leave and release
	ctlHWMOff   = 4  // u32: member slots ever used, an upper bound to probe
	ctlResetOff = 8  // u32: bumped when a forced reset asks owners to act
	ctlDeadOff  = 12 // u32: set by DeleteGroup before it removes the file
	ctlCountOff = 16 // u64: generation<<32 | live members, at the last shared count
	ctlCountAt  = 24 // u64: Unix ns the last shared count began

	lockBase      = 1 << 30
	memberLockOff = lockBase + 1<<17
	adminLockOff  = lockBase + 1<<18

	noCommit = -1

	maxFileName = 255 // NAME_MAX of common file systems
)

func partLock(p int) int64   { return lockBase + int64(p) }
func memberLock(s int) int64 { return memberLockOff + int64(s) }

func blockPos(p int) int64 { return offBlocksOff + int64(p)*blockSize }

func offsetsFileSize(nparts int) int64 { return blockPos(nparts) }

// commitState is a partition's latest valid commit slot, as read from the
// file or last written by its owner.
type commitState struct {
	slot    int    // 0 or 1: which slot holds it
	seq     uint64 // its sequence number; the next commit uses seq+1
	offset  int64  // committed offset (next to read), or noCommit
	time    int64  // when it was committed, Unix ns; 0 if never
	applied uint64 // the last reset request this commit took into account
}

// resetRequest asks a partition's owner to move to offset (a forced
// ResetGroupOffsets); seq orders requests.
type resetRequest struct {
	seq    uint64
	offset int64
}

// ownerRecord says which member (slot and incarnation) took a partition,
// and the lease its death leaves on it (group_lease.go). Who owns the
// partition is advisory (the lock, not the record, is ownership); the
// lease is not.
type ownerRecord struct {
	slot   int
	pid    int
	joined int64
	lease  time.Duration // 0: none
}

// memberRecord describes the member in a slot, for DescribeGroup.
type memberRecord struct {
	pid    int
	joined int64
	name   string
}

const maxMemberName = 39

// offsetsFile is one holder's handle on an offsets file: its own lockFile
// (so its own set of locks, as if it were another process), the file for
// reads and writes, and the shared control page.
type offsetsFile struct {
	path   string
	lf     *lockFile
	f      *os.File // lf.File(): never closed here
	fd     int
	nparts int    // the partitions used: the topic's, at most the file's
	made   int    // the partitions the file was made for (its header's P)
	mem    []byte // the file's first two pages, mapped shared
	ctl    []byte // mem's control page

	wbuf [slotSize]byte // the commit being written: no allocation per commit
	rbuf [blockSize]byte
}

func offsetsPath(dir, group, topic string) string {
	return filepath.Join(groupDir(dir, group), topic+offsetsExt)
}

// openOffsets opens the offsets file of group for a topic of nparts
// partitions whose ID is id (nparts -1: as many as the file covers, for
// whatever topic), creating it if create is set and it does not exist. A
// missing file without create is fs.ErrNotExist.
func openOffsets(dir, group, topic string, nparts int, id string, create bool) (*offsetsFile, error) {
	if len(topic)+len(offsetsExt) > maxFileName {
		return nil, fmt.Errorf("%w: topic name %.20q... is too long for a group offsets file (at most %d characters)", ErrInvalidName, topic, maxFileName-len(offsetsExt))
	}
	path := offsetsPath(dir, group, topic)
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := createOffsetsFile(path, nparts); err != nil {
			return nil, fmt.Errorf("runnel: create offsets of group %s: %w", group, err)
		}
		_, err = os.Stat(path)
	}
	if err != nil {
		return nil, err
	}
	// Without create, a file removed since the Stat stays removed.
	open := openLockFile
	if !create {
		open = openExistingLockFile
	}
	lf, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("runnel: %w", err)
	}
	// Looked at once open: anything but a regular file (which has no
	// size) is refused by the open, naming what it is.
	if st, err := lf.File().Stat(); err == nil && st.Size() == 0 {
		lf.Close()
		// Never a state this package leaves (files appear by link, whole).
		return nil, &CorruptError{Path: path, Pos: 0, Offset: -1, Err: errors.New("empty offsets file")}
	}
	o := &offsetsFile{path: path, lf: lf, f: lf.File(), nparts: nparts}
	o.fd = int(o.f.Fd())
	if err := o.checkHeader(id); err != nil {
		lf.Close()
		return nil, err
	}
	// Map from 0, not from the control page: 4096 is not a page boundary
	// everywhere (16 KiB pages on Apple silicon).
	prot := unix.PROT_READ | unix.PROT_WRITE
	if lf.readOnly {
		prot = unix.PROT_READ // to read commits, as Verify and DescribeGroup do
	}
	mem, err := unix.Mmap(o.fd, 0, offMembersOff, prot, unix.MAP_SHARED)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("runnel: map %s: %w", path, err)
	}
	o.mem, o.ctl = mem, mem[offCtlOff:offMembersOff]
	return o, nil
}

// createOffsetsFile writes a complete offsets file under a temporary name
// and links it into place: the path exists only with its whole content,
// and a concurrent creator's file is never replaced (a rename would swap
// the inode under members that already lock it).
func createOffsetsFile(path string, nparts int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := make([]byte, offsetsFileSize(nparts))
	h := data[:offHeaderSize]
	copy(h, offsetsMagic)
	binary.LittleEndian.PutUint32(h[8:], offsetsVersion)
	binary.LittleEndian.PutUint32(h[12:], uint32(nparts))
	binary.LittleEndian.PutUint32(h[16:], maxMembers)
	binary.LittleEndian.PutUint64(h[24:], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(h[56:], xxhash.Sum64(h[:56]))
	putInitialBlocks(data[offBlocksOff:], 0, nparts, commitState{offset: noCommit})
	tmp, err := writeTempSynced(dir, ".offsets.tmp-*", data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// putInitialBlocks writes into data, which starts at partition from's
// block, the blocks of partitions from … to-1 with both commit slots
// valid and holding initial (seq 0): no commit in a new file, offset 0
// in a growth (offsets_grow.go).
func putInitialBlocks(data []byte, from, to int, initial commitState) {
	for p := from; p < to; p++ {
		b := data[blockPos(p)-blockPos(from):]
		encodeSlot(b[slotAOff:slotAOff+slotSize], p, &initial)
		encodeSlot(b[slotBOff:slotBOff+slotSize], p, &initial)
	}
}

func (o *offsetsFile) corrupt(pos int64, format string, args ...any) error {
	return &CorruptError{Path: o.path, Pos: pos, Offset: -1, Err: fmt.Errorf(format, args...)}
}

// checkHeader verifies the header, that the file fits the topic of
// o.nparts partitions whose ID is id, and that it is long enough for the
// partitions it covers.
func (o *offsetsFile) checkHeader(id string) error {
	var h [offHeaderSize]byte
	n, err := o.f.ReadAt(h[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("runnel: read %s: %w", o.path, err)
	}
	if n < offHeaderSize {
		return o.corrupt(0, "truncated header: %d of %d bytes", n, offHeaderSize)
	}
	if string(h[:8]) != offsetsMagic {
		return o.corrupt(0, "not an offsets file (magic %q)", h[:8])
	}
	if got, want := binary.LittleEndian.Uint64(h[56:]), xxhash.Sum64(h[:56]); got != want {
		return o.corrupt(0, "header checksum %#x, want %#x", got, want)
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != offsetsVersion {
		return fmt.Errorf("%w: %s has offsets format %d; this version reads %d", ErrUnsupportedFormat, o.path, v, offsetsVersion)
	}
	if m := binary.LittleEndian.Uint32(h[16:]); m != maxMembers {
		return o.corrupt(16, "%d member slots, want %d", m, maxMembers)
	}
	p := int(binary.LittleEndian.Uint32(h[12:]))
	if p < 1 || p > 1<<16 {
		return o.corrupt(12, "%d partitions", p)
	}
	o.made = p
	st, err := o.f.Stat()
	if err != nil {
		return fmt.Errorf("runnel: stat %s: %w", o.path, err)
	}
	// The file was made whole for P partitions, and a growth only adds
	// to it: a shorter one is cut, maybe through the growth slots read
	// next.
	if err := o.checkLength(st.Size(), p); err != nil {
		return err
	}
	g, grown, err := o.readGrowth(p)
	if err != nil {
		return err
	}
	covers := p
	if grown {
		covers = g.parts
	}
	if o.nparts < 0 {
		o.nparts = covers
	} else if err := o.fits(p, o.nparts, g, grown, topicIDHash(id)); err != nil {
		return err
	}
	return o.checkLength(st.Size(), covers)
}

// checkLength checks that a file of size bytes holds the blocks of the
// partitions it covers.
func (o *offsetsFile) checkLength(size int64, covers int) error {
	if want := offsetsFileSize(covers); size < want {
		return o.corrupt(size, "truncated: %d bytes, want %d for %d partitions", size, want, covers)
	}
	return nil
}

// close unmaps the control page and closes the lockFile, releasing every
// lock this holder has.
func (o *offsetsFile) close() error {
	var err error
	if o.mem != nil {
		err = unix.Munmap(o.mem)
		o.mem, o.ctl = nil, nil
	}
	return errors.Join(err, o.lf.Close())
}

func (o *offsetsFile) ctlWord(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&o.ctl[off]))
}

func (o *offsetsFile) ctlWord64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&o.ctl[off]))
}

// gen is the word members sleep on; every join, leave and release bumps it.
func (o *offsetsFile) gen() *atomic.Uint32 { return o.ctlWord(ctlGenOff) }

// resetEpoch is bumped by a forced reset that left requests for owners.
func (o *offsetsFile) resetEpoch() *atomic.Uint32 { return o.ctlWord(ctlResetOff) }

// deleted reports whether DeleteGroup removed (or is removing) the file:
// whoever still has it open must stop using it, and a joiner opens the
// path again.
func (o *offsetsFile) deleted() bool { return o.ctlWord(ctlDeadOff).Load() != 0 }

// gone is asked of a file whose deleted word is set, by a caller that
// holds its admin lock: DeleteGroup sets the word and removes the file
// while it holds that lock, so a file its path still names was left so by
// a DeleteGroup that died in between (or the word is damage). Such a
// file's word is cleared, and it stays, commits and all: that DeleteGroup
// never returned. gone reports whether the file was removed (open the
// path again).
func (o *offsetsFile) gone() (bool, error) {
	removed, err := o.removed()
	if err != nil || removed {
		return removed, err
	}
	o.ctlWord(ctlDeadOff).Store(0)
	return false, nil
}

// goneToReader is gone for a reader (Backup), which takes no lock and
// writes nothing: a file whose deleted word is set is gone if a
// DeleteGroup is at work on it (it holds the admin lock from before it
// sets the word until the file is removed; one stopped in between keeps
// it) or removed it. With the admin lock free, a file its path still
// names is kept, as gone keeps it, and its word is left for the next
// joiner or admin call to clear.
func (o *offsetsFile) goneToReader() (bool, error) {
	held, err := o.lf.HeldByOther(adminLockOff)
	if err != nil || held {
		return held, err
	}
	return o.removed()
}

// removed reports whether the path no longer names the file (it may name
// a newer one): a DeleteGroup removed it.
func (o *offsetsFile) removed() (bool, error) {
	st, err := os.Stat(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	fst, err := o.f.Stat()
	if err != nil {
		return false, err
	}
	return !os.SameFile(st, fst), nil
}

// hwm returns how many member slots may be in use: slots at or past it
// have never been taken. A damaged value only costs extra probes.
func (o *offsetsFile) hwm() int {
	return int(min(o.ctlWord(ctlHWMOff).Load(), maxMembers))
}

func (o *offsetsFile) raiseHWM(n int) {
	w := o.ctlWord(ctlHWMOff)
	for {
		old := w.Load()
		if old >= uint32(n) || w.CompareAndSwap(old, uint32(n)) {
			return
		}
	}
}

// bump tells every member that the group changed.
func (o *offsetsFile) bump(word *atomic.Uint32) {
	word.Add(1)
	wakeAll(word)
}

// encodeSlot writes st as partition p's slot into b (slotSize bytes). The
// checksum covers the partition number too, so a slot is only ever valid
// in its own block.
func encodeSlot(b []byte, p int, st *commitState) {
	binary.LittleEndian.PutUint64(b[0:], st.seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(st.offset))
	binary.LittleEndian.PutUint64(b[16:], uint64(st.time))
	binary.LittleEndian.PutUint64(b[24:], st.applied)
	binary.LittleEndian.PutUint64(b[32:], uint64(p))
	binary.LittleEndian.PutUint64(b[32:], xxhash.Sum64(b[:40]))
}

// decodeSlot parses a slot of partition p, reporting whether it verifies.
func decodeSlot(b []byte, p int) (commitState, bool) {
	var tmp [slotSize]byte
	copy(tmp[:], b[:32])
	binary.LittleEndian.PutUint64(tmp[32:], uint64(p))
	if xxhash.Sum64(tmp[:]) != binary.LittleEndian.Uint64(b[32:]) {
		return commitState{}, false
	}
	st := commitState{
		seq:     binary.LittleEndian.Uint64(b[0:]),
		offset:  int64(binary.LittleEndian.Uint64(b[8:])),
		time:    int64(binary.LittleEndian.Uint64(b[16:])),
		applied: binary.LittleEndian.Uint64(b[24:]),
	}
	if st.offset < noCommit {
		return commitState{}, false
	}
	return st, true
}

// pickSlot chooses the latest of a block's two commit slots: the valid one
// with the higher sequence number. A slot that fails its checksum is a
// torn write, and the other one holds the commit before it; when both
// fail the block is damaged.
func pickSlot(block []byte, p int) (commitState, bool) {
	a, okA := decodeSlot(block[slotAOff:], p)
	b, okB := decodeSlot(block[slotBOff:], p)
	a.slot, b.slot = 0, 1
	switch {
	case okA && okB:
		if b.seq > a.seq {
			return b, true
		}
		return a, true
	case okA:
		return a, true
	case okB:
		return b, true
	}
	return commitState{}, false
}

// readBlock reads partition p's block into o.rbuf.
func (o *offsetsFile) readBlock(p int) ([]byte, error) {
	n, err := o.f.ReadAt(o.rbuf[:], blockPos(p))
	if n < blockSize {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, o.corrupt(blockPos(p)+int64(n), "partition %d: block cut short (truncated file)", p)
		}
		return nil, fmt.Errorf("runnel: read %s: %w", o.path, err)
	}
	return o.rbuf[:], nil
}

// readCommit returns partition p's latest commit.
func (o *offsetsFile) readCommit(p int) (commitState, error) {
	b, err := o.readBlock(p)
	if err != nil {
		return commitState{}, err
	}
	st, ok := pickSlot(b, p)
	if !ok {
		return st, o.corrupt(blockPos(p), "partition %d: neither commit slot verifies", p)
	}
	return st, nil
}

// readRequest returns partition p's reset request; seq 0 means none (a
// request torn by a crash is none: its sender never saw it applied).
func (o *offsetsFile) readRequest(p int) (resetRequest, error) {
	b, err := o.readBlock(p)
	if err != nil {
		return resetRequest{}, err
	}
	return decodeRequest(b[reqRecOff:reqRecOff+reqRecSize], p), nil
}

func decodeRequest(b []byte, p int) resetRequest {
	var tmp [reqRecSize]byte
	copy(tmp[:], b[:16])
	binary.LittleEndian.PutUint64(tmp[16:], uint64(p))
	if xxhash.Sum64(tmp[:]) != binary.LittleEndian.Uint64(b[16:]) {
		return resetRequest{}
	}
	r := resetRequest{seq: binary.LittleEndian.Uint64(b[0:]), offset: int64(binary.LittleEndian.Uint64(b[8:]))}
	if r.offset < 0 {
		return resetRequest{}
	}
	return r
}

// writeRequest stores a reset request for partition p's owner.
func (o *offsetsFile) writeRequest(p int, r resetRequest) error {
	var b [reqRecSize]byte
	binary.LittleEndian.PutUint64(b[0:], r.seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(r.offset))
	binary.LittleEndian.PutUint64(b[16:], uint64(p))
	binary.LittleEndian.PutUint64(b[16:], xxhash.Sum64(b[:]))
	if _, err := o.f.WriteAt(b[:], blockPos(p)+reqRecOff); err != nil {
		return fmt.Errorf("runnel: write %s: %w", o.path, err)
	}
	return nil
}

// writeCommit records offset as partition p's commit, in the slot that
// does not hold st (the latest), and advances st. The caller owns p. It
// does not sync. It allocates nothing.
func (o *offsetsFile) writeCommit(p int, st *commitState, offset int64, now int64) error {
	next := commitState{slot: 1 - st.slot, seq: st.seq + 1, offset: offset, time: now, applied: st.applied}
	encodeSlot(o.wbuf[:], p, &next)
	pos := blockPos(p) + slotAOff
	if next.slot == 1 {
		pos = blockPos(p) + slotBOff
	}
	if _, err := o.f.WriteAt(o.wbuf[:], pos); err != nil {
		return fmt.Errorf("runnel: commit to %s: %w", o.path, err)
	}
	*st = next
	return nil
}

// sync makes the commits written so far durable.
func (o *offsetsFile) sync() error {
	if err := fdatasync(o.fd); err != nil {
		return fmt.Errorf("runnel: sync %s: %w", o.path, err)
	}
	return nil
}

// writeOwner writes partition p's owner record. The slot word carries the
// lease in its high 16 bits (ownerSlotWord).
func (o *offsetsFile) writeOwner(p int, r ownerRecord) error {
	var b [ownerRecSize]byte
	binary.LittleEndian.PutUint32(b[0:], ownerSlotWord(r.slot, r.lease))
	binary.LittleEndian.PutUint32(b[4:], uint32(r.pid))
	binary.LittleEndian.PutUint64(b[8:], uint64(r.joined))
	binary.LittleEndian.PutUint64(b[16:], uint64(p))
	binary.LittleEndian.PutUint64(b[16:], xxhash.Sum64(b[:]))
	if _, err := o.f.WriteAt(b[:], blockPos(p)+ownerRecOff); err != nil {
		return fmt.Errorf("runnel: write %s: %w", o.path, err)
	}
	return nil
}

// readOwner reads partition p's owner record; ok is false when it does
// not verify (no member took p since the file was made).
func (o *offsetsFile) readOwner(p int) (r ownerRecord, ok bool, err error) {
	var b [ownerRecSize]byte
	if _, err := o.f.ReadAt(b[:], blockPos(p)+ownerRecOff); err != nil {
		return ownerRecord{}, false, fmt.Errorf("runnel: read %s: %w", o.path, err)
	}
	r, ok = decodeOwner(b[:], p)
	return r, ok, nil
}

func decodeOwner(b []byte, p int) (ownerRecord, bool) {
	var tmp [ownerRecSize]byte
	copy(tmp[:], b[:16])
	binary.LittleEndian.PutUint64(tmp[16:], uint64(p))
	if xxhash.Sum64(tmp[:]) != binary.LittleEndian.Uint64(b[16:]) {
		return ownerRecord{}, false
	}
	slot, lease := splitOwnerSlotWord(binary.LittleEndian.Uint32(b[0:]))
	return ownerRecord{
		slot:   slot,
		pid:    int(binary.LittleEndian.Uint32(b[4:])),
		joined: int64(binary.LittleEndian.Uint64(b[8:])),
		lease:  lease,
	}, true
}

func (o *offsetsFile) writeMember(s int, r memberRecord) error {
	var b [memberRecSize]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(r.pid))
	binary.LittleEndian.PutUint32(b[4:], uint32(s))
	binary.LittleEndian.PutUint64(b[8:], uint64(r.joined))
	name := r.name
	if len(name) > maxMemberName {
		// Cut at a character: the start of one not kept whole.
		n := maxMemberName
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n]
	}
	b[16] = byte(len(name))
	copy(b[17:56], name)
	binary.LittleEndian.PutUint64(b[56:], xxhash.Sum64(b[:56]))
	if _, err := o.f.WriteAt(b[:], offMembersOff+int64(s)*memberRecSize); err != nil {
		return fmt.Errorf("runnel: write %s: %w", o.path, err)
	}
	return nil
}

// readMember returns slot s's record; ok is false when it does not verify
// (a member that has not written it yet).
func (o *offsetsFile) readMember(s int) (memberRecord, bool, error) {
	var b [memberRecSize]byte
	if _, err := o.f.ReadAt(b[:], offMembersOff+int64(s)*memberRecSize); err != nil {
		return memberRecord{}, false, fmt.Errorf("runnel: read %s: %w", o.path, err)
	}
	if xxhash.Sum64(b[:56]) != binary.LittleEndian.Uint64(b[56:]) || int(binary.LittleEndian.Uint32(b[4:])) != s || b[16] > maxMemberName {
		return memberRecord{}, false, nil
	}
	return memberRecord{
		pid:    int(binary.LittleEndian.Uint32(b[0:])),
		joined: int64(binary.LittleEndian.Uint64(b[8:])),
		name:   string(b[17 : 17+int(b[16])]),
	}, true, nil
}
