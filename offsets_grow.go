package runnel

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
)

// An offsets file grows with its topic (docs/FORMAT.md, Group offsets
// file, Growth). The header, written once, keeps the count P the file was
// made for; the count it covers now, F, is in two checksummed growth
// slots, written as commit slots are (the one not holding the latest,
// with the next sequence number), so that a torn write leaves the other.
// The new partitions' blocks are written and synced past the old end
// before a slot names them.
//
// A new partition's block starts with committed offset 0, not "none": the
// group existed before the partition did, so every record in it is new to
// the group, and a member whose Start is Latest must read those sent
// before it took the partition (the partition is empty when the block is
// written: topic.json names it only after). Blocks an older runnel wrote
// with "none" stay as they are, valid; a retried growth does not write
// again the blocks a dead one wrote.
const (
	growSlotOff  = 1024 // slot A; slot B follows
	growSlotSize = 40
)

// growth is a file's latest valid growth slot.
type growth struct {
	slot   int // 0 (A) or 1 (B)
	seq    uint64
	parts  int    // F
	idHash uint64 // topicIDHash of the topic grown
}

// topicIDHash is what a growth slot records of a topic's ID: 0 for a
// topic without one.
func topicIDHash(id string) uint64 {
	if id == "" {
		return 0
	}
	return xxhash.Sum64String(id)
}

func encodeGrowth(b []byte, g growth, now int64) {
	clear(b[:growSlotSize])
	binary.LittleEndian.PutUint64(b[0:], g.seq)
	binary.LittleEndian.PutUint32(b[8:], uint32(g.parts))
	binary.LittleEndian.PutUint64(b[16:], g.idHash)
	binary.LittleEndian.PutUint64(b[24:], uint64(now))
	binary.LittleEndian.PutUint64(b[32:], xxhash.Sum64(b[:32]))
}

// decodeGrowth parses a growth slot of a file made for p partitions,
// reporting whether it is valid.
func decodeGrowth(b []byte, p int) (growth, bool) {
	if xxhash.Sum64(b[:32]) != binary.LittleEndian.Uint64(b[32:]) {
		return growth{}, false
	}
	g := growth{
		seq:    binary.LittleEndian.Uint64(b[0:]),
		parts:  int(binary.LittleEndian.Uint32(b[8:])),
		idHash: binary.LittleEndian.Uint64(b[16:]),
	}
	if g.seq == 0 || g.parts < p || g.parts > maxPartitions || binary.LittleEndian.Uint32(b[12:]) != 0 {
		return growth{}, false
	}
	return g, true
}

// readGrowth returns the latest valid growth slot of the file, made for p
// partitions; ok is false if neither slot is valid (never grown).
func (o *offsetsFile) readGrowth(p int) (g growth, ok bool, err error) {
	var b [2 * growSlotSize]byte
	if _, err := o.f.ReadAt(b[:], growSlotOff); err != nil {
		return growth{}, false, fmt.Errorf("runnel: read %s: %w", o.path, err)
	}
	a, okA := decodeGrowth(b[:], p)
	c, okB := decodeGrowth(b[growSlotSize:], p)
	a.slot, c.slot = 0, 1
	switch {
	case okA && okB && c.seq > a.seq, !okA && okB:
		return c, true, nil
	case okA:
		return a, true, nil
	}
	return growth{}, false, nil
}

// fits checks that the file, made for p partitions, is one for the topic
// of n partitions whose ID hashes to idHash; g is its latest growth slot,
// if ok (then the file covers g.parts).
func (o *offsetsFile) fits(p, n int, g growth, ok bool, idHash uint64) error {
	switch {
	case !ok && p != n:
		return o.corrupt(12, "the file covers %d partitions but the topic has %d (was the topic deleted and created again?)", p, n)
	case ok && g.idHash != idHash:
		return o.corrupt(growSlotOff+int64(g.slot)*growSlotSize, "the file was grown to %d partitions for another topic of the name (topic ID hash %#x, the topic's is %#x: was the topic deleted and created again?)", g.parts, g.idHash, idHash)
	case ok && (n < p || n > g.parts):
		return o.corrupt(growSlotOff+int64(g.slot)*growSlotSize, "the file covers partitions up to %d (made for %d) but the topic has %d (was the topic deleted and created again?)", g.parts, p, n)
	}
	return nil
}

// grow makes the file cover n partitions, more than it covers now, for
// the topic whose ID is id: blocks past the end, committed at 0 as of
// the growth, synced, then a growth slot, synced. The caller holds the
// file's admin lock and the topic's.
func (o *offsetsFile) grow(n int, id string) error {
	g, ok, err := o.readGrowth(o.made)
	if err != nil {
		return err
	}
	from := o.made
	if ok {
		from = g.parts
	}
	if n <= from {
		return nil
	}
	now := time.Now().UnixNano()
	data := make([]byte, blockPos(n)-blockPos(from))
	putInitialBlocks(data, from, n, commitState{offset: 0, time: now})
	if _, err := o.f.WriteAt(data, blockPos(from)); err != nil {
		return fmt.Errorf("runnel: grow %s: %w", o.path, err)
	}
	if err := o.sync(); err != nil {
		return err
	}
	next := growth{slot: 1 - g.slot, seq: g.seq + 1, parts: n, idHash: topicIDHash(id)}
	if !ok {
		next.slot = 0
	}
	var b [growSlotSize]byte
	encodeGrowth(b[:], next, now)
	if _, err := o.f.WriteAt(b[:], growSlotOff+int64(next.slot)*growSlotSize); err != nil {
		return fmt.Errorf("runnel: grow %s: %w", o.path, err)
	}
	return o.sync()
}

// covers returns how many partitions the file covers now (F).
func (o *offsetsFile) covers() (int, error) {
	g, ok, err := o.readGrowth(o.made)
	if err != nil || !ok {
		return o.made, err
	}
	return g.parts, nil
}
