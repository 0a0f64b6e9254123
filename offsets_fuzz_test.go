package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// FuzzOffsetsFile damages a group's offsets file for a topic of two
// partitions (the fuzzer's bytes patched in at a position, the file cut
// or grown) and uses the group as processes would: DescribeGroup, Verify,
// a member joining, reading from the group's commits and committing, a
// forced reset. Whatever the bytes: nothing panics; no call waits (the
// join is bounded, generously); the topic's records are untouched; and
// each call either works, reading from the commits DescribeGroup
// reported, or fails with an error naming the offsets file (a
// *CorruptError with a byte in it, or ErrUnsupportedFormat), and Verify
// reports it there. With reseal the header and every record's checksum
// are made to check out, so the fuzzer's values are believed: commits
// anywhere, any partition count; then an offset past the partition's end
// may fail the read with ErrOutOfRange as well.
func FuzzOffsetsFile(f *testing.F) {
	pristine := f.TempDir()
	l := openTest(f, pristine, &Options{Durability: Buffered})
	mustCreate(f, l, "t", TopicConfig{Partitions: 2})
	produceSpread(f, l, "t", 2, 5)
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g", MemberName: "m", DisableAutoCommit: true})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := pollDry(c); err != nil { // takes both partitions
		f.Fatal(err)
	}
	if err := c.CommitOffsets(context.Background(), map[int]int64{0: 3, 1: 1}); err != nil {
		f.Fatal(err)
	}
	c.Close()
	l.Close()
	rel := filepath.Join("groups", "g", "t"+offsetsExt)

	f.Add(uint32(0), []byte{}, int32(-1), false)
	f.Add(uint32(0), []byte{}, int32(0), false)
	f.Add(uint32(0), []byte{}, int32(offHeaderSize-1), false)
	f.Add(uint32(0), []byte{}, int32(blockPos(1)+10), false)
	f.Add(uint32(8), []byte{2}, int32(-1), true)                                  // another version
	f.Add(uint32(12), []byte{0xff, 0xff, 0xff, 0x7f}, int32(-1), true)            // partitions
	f.Add(uint32(12), []byte{1}, int32(-1), true)                                 // one partition
	f.Add(uint32(16), []byte{0xff, 0xff, 0xff, 0xff}, int32(-1), true)            // member slots
	f.Add(uint32(blockPos(0)+8), []byte{0xff, 0xff, 0xff, 0x7f}, int32(-1), true) // a commit far ahead
	f.Add(uint32(blockPos(1)+8), []byte{0xfe}, int32(-1), true)                   // a negative commit
	f.Add(uint32(blockPos(0)), make([]byte, 2*slotSize), int32(-1), false)        // neither slot
	f.Add(uint32(blockPos(0)+reqRecOff), []byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, int32(-1), true)
	f.Add(uint32(offCtlOff+ctlDeadOff), []byte{1}, int32(-1), false)
	f.Add(uint32(offCtlOff), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int32(-1), false)
	f.Add(uint32(offMembersOff+16), []byte{200}, int32(-1), true) // a member name's length

	f.Fuzz(func(t *testing.T, at uint32, patch []byte, size int32, reseal bool) {
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		path := filepath.Join(dir, rel)
		data := damageBytes(t, path, at, patch, size)
		if reseal {
			resealOffsets(data)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		damaged := func(who string, err error) {
			t.Helper()
			var ce *CorruptError
			switch {
			case errors.As(err, &ce):
				if ce.Path != path || ce.Pos < 0 || ce.Pos > int64(len(data)) {
					t.Fatalf("%s: %v names %s at byte %d, want a byte of %s", who, err, ce.Path, ce.Pos, path)
				}
			case errors.Is(err, ErrUnsupportedFormat) && reseal:
			default:
				t.Fatalf("%s: %v, want damage to %s", who, err, path)
			}
		}

		info, derr := l.DescribeGroup("g")
		committed := map[int]int64{}
		if derr != nil {
			errs := GroupTopicErrors(derr)
			if len(errs) != 1 || errs[0].Topic != "t" || len(info.Topics) != 0 {
				t.Fatalf("DescribeGroup: %v, %+v", derr, info)
			}
			damaged("DescribeGroup", errs[0].Err)
		} else {
			if len(info.Topics) != 1 || len(info.Topics[0].Partitions) != 2 || len(info.Topics[0].Members) != 0 {
				t.Fatalf("DescribeGroup: %+v", info)
			}
			for _, p := range info.Topics[0].Partitions {
				committed[p.Partition] = p.Committed
			}
		}
		rep, err := l.Verify(ctx, "", nil)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		for _, p := range rep.Problems {
			if p.Path != path || p.Kind != ProblemOffsets {
				t.Errorf("Verify blames %v for damage to %s", p, path)
			}
		}
		if (len(rep.Problems) > 0) != (derr != nil) {
			t.Errorf("Verify found %v, DescribeGroup %v", rep.Problems, derr)
		}

		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := l.ConsumerContext(jctx, "t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a join waited 30 s on %s", path)
			}
			damaged("Consumer", err)
			if derr == nil {
				t.Errorf("Consumer: %v; DescribeGroup read the file", err)
			}
			return
		}
		defer c.Close()
		recs, rerr := pollDry(c)
		var oe *OutOfRangeError
		switch {
		case rerr == nil:
		case reseal && errors.As(rerr, &oe):
		default:
			damaged("Poll", rerr)
		}
		first := map[int]int64{}
		for _, r := range recs {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		}
		for p, off := range first {
			// (A resealed reset request, pending, moves the member on.)
			if want := max(committed[p], 0); derr == nil && !reseal && off != want {
				t.Errorf("partition %d read from offset %d, committed %d", p, off, committed[p])
			}
		}
		if rerr == nil {
			if err := c.Commit(ctx); err != nil {
				damaged("Commit", err)
			}
		}
		if err := c.Close(); err != nil {
			damaged("Close", err)
		}
		if _, err := l.ResetGroupOffsets(ctx, "g", "t", Earliest, &ResetOptions{Force: true}); err != nil {
			damaged("ResetGroupOffsets", err)
		}
	})
}

// resealOffsets makes the checksums of an offsets file's header, member
// records and partition blocks check out, whatever they hold.
func resealOffsets(data []byte) {
	le := binary.LittleEndian
	if len(data) < offHeaderSize {
		return
	}
	le.PutUint64(data[56:], xxhash.Sum64(data[:56]))
	for s := range maxMembers {
		b := data[min(len(data), offMembersOff+s*memberRecSize):min(len(data), offMembersOff+(s+1)*memberRecSize)]
		if len(b) == memberRecSize && le.Uint64(b[56:]) != 0 {
			le.PutUint32(b[4:], uint32(s))
			le.PutUint64(b[56:], xxhash.Sum64(b[:56]))
		}
	}
	for p := 0; blockPos(p+1) <= int64(len(data)); p++ {
		b := data[blockPos(p):blockPos(p+1)]
		for _, off := range []int{slotAOff, slotBOff} {
			st := commitState{seq: le.Uint64(b[off:]), offset: int64(le.Uint64(b[off+8:])), time: int64(le.Uint64(b[off+16:])), applied: le.Uint64(b[off+24:])}
			encodeSlot(b[off:off+slotSize], p, &st)
		}
		for _, r := range [][]byte{b[ownerRecOff : ownerRecOff+ownerRecSize], b[reqRecOff : reqRecOff+reqRecSize]} {
			le.PutUint64(r[16:], uint64(p))
			le.PutUint64(r[16:], xxhash.Sum64(r))
		}
	}
}
