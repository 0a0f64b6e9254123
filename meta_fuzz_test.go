package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// FuzzPartitionMeta writes the fuzzer's bytes as the partition.meta of a
// closed log of one partition, and uses it as a process would: a consumer
// reads it, Verify checks it, a producer appends (Buffered or Durable), a
// consumer reads again, and Repair mends it. partition.meta holds live
// state and checkpoints whose damage costs time, never records: whatever
// its bytes, nothing panics or waits, the records written are all read,
// Verify blames partition.meta alone, and after Repair nothing is wrong.
// The one word that stops the partition, the deleted word no DeleteTopic
// set, fails reads and appends with a *CorruptError naming the file until
// Repair clears it.
//
// With reseal, the checksummed words (checkpoint, durable point,
// published tail, zeros statement) are made to check out for this
// machine run, as no damage does: they are believed, so their lies may
// cost records, but nothing panics, allocates without bound or waits, and
// every error names a file of the partition.
func FuzzPartitionMeta(f *testing.F) {
	const n = 5
	pristine := f.TempDir()
	values := make([][]byte, n)
	for i := range values {
		values[i] = tornValue(i, 100)
	}
	buildTornLog(f, pristine, Buffered, TopicConfig{}, values)
	meta, err := os.ReadFile(filepath.Join(pristine, "topics", "t", "0", metaFileName))
	if err != nil {
		f.Fatal(err)
	}
	word := func(off int, v uint64) []byte {
		b := append([]byte(nil), meta...)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	f.Add(meta, uint8(0))
	f.Add([]byte{}, uint8(0))
	f.Add(meta[:100], uint8(0))
	f.Add(make([]byte, metaSize), uint8(2))
	f.Add(word(metaDeletedOff, 1), uint8(0))
	f.Add(word(metaTailSeqOff, 1), uint8(2))                     // a publish that never ended
	f.Add(word(metaSleepersOff, 0xffffffff_ffffffff), uint8(2))  // sleepers and deleted
	f.Add(word(metaWaitersOff-4, 0xffffffff_00000000), uint8(0)) // waiters
	f.Add(word(metaKeptOff-4, 1<<32|7), uint8(2))                // kept, odd tail sequence
	f.Add(word(metaCkptPosOff, 1<<40), uint8(1))                 // checkpoint past the file
	f.Add(word(metaCkptOff, 1), uint8(1))                        // checkpoint of another boot
	f.Add(word(metaDurNextOff, 1<<62), uint8(3))                 // durable point far ahead
	f.Add(word(metaTailNextOff, 1<<62), uint8(1))                // published tail far ahead
	zeros := word(metaZerosSumOff, 1)                            // a statement of zeros from the tail to far away
	copy(zeros[metaZerosOff:], meta[metaTailBaseOff:metaTailBaseOff+16])
	binary.LittleEndian.PutUint64(zeros[metaZerosOff+16:], 1<<40)
	f.Add(zeros, uint8(1))
	f.Add(word(metaWaiterSlotsOff, 0xffffffff_ffffffff), uint8(2))               // waiter slots
	f.Add(word(metaSleeperSlotsOff+8*60, 0xffffffff_ffffffff), uint8(0))         // sleeper slots
	f.Add(append(append([]byte(nil), meta...), make([]byte, 8192)...), uint8(0)) // longer than it is

	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		reseal, durable := mode&1 != 0, mode&2 != 0
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		pdir := filepath.Join(dir, "topics", "t", "0")
		path := filepath.Join(pdir, metaFileName)
		if reseal {
			data = resealMeta(data)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		stray := len(data) >= metaDeletedOff+4 && binary.LittleEndian.Uint32(data[metaDeletedOff:]) != 0
		d := Buffered
		if durable {
			d = Durable
		}
		ctx := context.Background()
		l := openTest(t, dir, &Options{Durability: d, RetentionInterval: -1})

		rep, err := l.Verify(ctx, "t", nil)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		checkProblemsNamed(t, rep.Problems, pdir)
		for _, p := range rep.Problems {
			if !reseal && p.Path != path {
				t.Errorf("Verify blames %s for damage to partition.meta: %v", p.Path, p)
			}
		}
		// checkMetaRead checks a read of the n records (and the one
		// appended, if any).
		checkMetaRead := func(who string, recs []Record, err error, want int) {
			t.Helper()
			checkPrefix(t, recs, values)
			switch {
			case checkReadErr(t, who, err, pdir):
				var ce *CorruptError
				if errors.As(err, &ce); !reseal && (!stray || ce.Path != path) {
					t.Fatalf("%s: %v, with only partition.meta damaged", who, err)
				}
			case len(recs) != want && !reseal:
				t.Fatalf("%s: %d records, want %d", who, len(recs), want)
			}
		}
		recs, rerr := readFuzzedLog(t, l)
		checkMetaRead("reader", recs, rerr, n)

		p := mustProducer(t, l, "t", nil)
		pos, serr := p.Send(ctx, Record{Key: []byte("k5"), Value: tornValue(n, 100), Time: tornTime(n)})
		var ce *CorruptError
		switch {
		case serr == nil:
			if !reseal && pos.Offset != n {
				t.Fatalf("Send: offset %d, want %d", pos.Offset, n)
			}
		case !errors.As(serr, &ce) || filepath.Dir(ce.Path) != pdir:
			t.Fatalf("Send: %v, want a *CorruptError naming a file of the partition", serr)
		case !reseal && !stray:
			t.Fatalf("Send: %v, with only partition.meta damaged", serr)
		}
		if err := p.Close(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Producer.Close: %v", err)
		}
		recs, rerr = readFuzzedLog(t, l)
		want := n
		if serr == nil {
			want++
		}
		checkMetaRead("reader after the append", recs, rerr, want)
		if rerr == nil && serr == nil && (len(recs) == 0 || recs[len(recs)-1].Offset != pos.Offset) {
			t.Fatalf("the record appended at offset %d is not read (%d records read, no error)", pos.Offset, len(recs))
		}

		if reseal {
			// Believed lies are not damage Repair can tell.
			return
		}
		rrep, err := l.Repair(ctx, "t", nil)
		if err != nil || len(rrep.Remaining) != 0 {
			t.Fatalf("Repair: %v, remaining %v (found %v)", err, rrep.Remaining, rrep.Found.Problems)
		}
		recs, rerr = readFuzzedLog(t, l)
		if rerr != nil || len(recs) != want {
			t.Fatalf("reader after Repair: %d records, %v; want %d", len(recs), rerr, want)
		}
		checkPrefix(t, recs, values)
	})
}

// resealMeta returns data as a whole partition.meta whose checksummed
// words check out for this machine run (the checkpoint for the boot id it
// names), whatever they say.
func resealMeta(data []byte) []byte {
	m := make([]byte, metaSize)
	copy(m, data)
	le := binary.LittleEndian
	i64 := func(off int) int64 { return int64(le.Uint64(m[off:])) }
	le.PutUint64(m[metaCkptSumOff:], xxhash.Sum64(m[metaCkptOff:metaCkptSumOff]))
	copy(m[metaBootOff:], currentBootID[:])
	le.PutUint64(m[metaDurSumOff:], xxhash.Sum64(m[metaBootOff:metaDurSumOff]))
	t := logPos{i64(metaTailBaseOff), i64(metaTailPosOff), i64(metaTailNextOff)}
	le.PutUint64(m[metaTailSumOff:], tailCheck(t, i64(metaTailTimeOff), currentBootID))
	if le.Uint64(m[metaZerosSumOff:]) != 0 {
		z := zeroRun{i64(metaZerosOff), i64(metaZerosOff + 8), i64(metaZerosOff + 16)}
		le.PutUint64(m[metaZerosSumOff:], zerosCheck(z, currentBootID))
	}
	return m
}
