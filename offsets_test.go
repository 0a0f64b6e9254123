package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// commitWrite commits offset for partition p through a fresh handle (as a
// member would, under p's lock) and returns the bytes written and where.
func commitWrite(t *testing.T, dir string, nparts, p int, offset int64) (pos int64, data []byte) {
	t.Helper()
	off, err := openOffsets(dir, "g", "t", nparts, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer off.close()
	if ok, err := off.lf.TryLock(partLock(p)); !ok || err != nil {
		t.Fatalf("lock partition %d: %v %v", p, ok, err)
	}
	st, err := off.readCommit(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.writeCommit(p, &st, offset, 1e18+offset); err != nil {
		t.Fatal(err)
	}
	if err := off.sync(); err != nil {
		t.Fatal(err)
	}
	pos = blockPos(p) + slotAOff
	if st.slot == 1 {
		pos = blockPos(p) + slotBOff
	}
	return pos, bytes.Clone(off.wbuf[:])
}

func readCommitted(dir string, nparts, p int) (int64, error) {
	off, err := openOffsets(dir, "g", "t", nparts, "", false)
	if err != nil {
		return 0, err
	}
	defer off.close()
	st, err := off.readCommit(p)
	return st.offset, err
}

// A commit torn at any byte — its first k bytes written, or its last k,
// or any mix of old and new bytes — leaves either the previous commit or
// the new one, never anything else and never an error.
func TestOffsetsTornCommit(t *testing.T) {
	const nparts = 3
	for _, history := range []int{0, 1, 2, 5} { // commits before the torn one
		dir := t.TempDir()
		path := offsetsPath(dir, "g", "t")
		off, err := openOffsets(dir, "g", "t", nparts, "", true)
		if err != nil {
			t.Fatal(err)
		}
		off.close()
		prev := int64(noCommit)
		for i := range history {
			prev = int64(100 + i)
			commitWrite(t, dir, nparts, 1, prev)
		}
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pos, data := commitWrite(t, dir, nparts, 1, 999)
		after, _ := os.ReadFile(path)
		check := func(what string, want ...int64) {
			t.Helper()
			got, err := readCommitted(dir, nparts, 1)
			if err != nil {
				t.Fatalf("history %d, %s: %v", history, what, err)
			}
			for _, w := range want {
				if got == w {
					return
				}
			}
			t.Fatalf("history %d, %s: committed %d, want one of %v", history, what, got, want)
		}
		torn := bytes.Clone(before)
		for k := 0; k <= len(data); k++ {
			copy(torn, before)
			copy(torn[pos:], data[:k])
			os.WriteFile(path, torn, 0o644)
			if k < len(data) {
				check("first "+strconv.Itoa(k)+" bytes written", prev)
			} else {
				check("whole commit", 999)
			}
			copy(torn, before)
			copy(torn[pos+int64(k):], data[k:])
			os.WriteFile(path, torn, 0o644)
			if k > 0 {
				check("last "+strconv.Itoa(len(data)-k)+" bytes written", prev)
			}
		}
		rng := rand.New(rand.NewPCG(uint64(history), 1))
		for range 200 {
			copy(torn, before)
			for i := range data {
				if rng.IntN(2) == 0 {
					torn[pos+int64(i)] = data[i]
				}
			}
			os.WriteFile(path, torn, 0o644)
			check("a mix of old and new bytes", prev, 999)
		}
		// The other partitions never move.
		os.WriteFile(path, after, 0o644)
		for _, p := range []int{0, 2} {
			if got, err := readCommitted(dir, nparts, p); err != nil || got != noCommit {
				t.Fatalf("partition %d: %d, %v", p, got, err)
			}
		}
	}
}

// Damage that a torn write cannot explain is reported, never read as "no
// commit" or offset 0.
func TestOffsetsCorrupt(t *testing.T) {
	const nparts = 4
	base := t.TempDir()
	commitWrite(t, base, nparts, 2, 42)
	pristine, err := os.ReadFile(offsetsPath(base, "g", "t"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		open   error // from opening the file
		read   error // from reading partition 2's commit
	}{
		{"truncated to nothing", func(b []byte) []byte { return b[:0] }, ErrCorrupt, nil},
		{"truncated in the header", func(b []byte) []byte { return b[:20] }, ErrCorrupt, nil},
		{"truncated in the blocks", func(b []byte) []byte { return b[:blockPos(3)+10] }, ErrCorrupt, nil},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCorrupt, nil},
		{"header bit flip", func(b []byte) []byte { b[13] ^= 1; return b }, ErrCorrupt, nil},
		{"newer version", func(b []byte) []byte {
			b[8] = 2
			rehashHeader(b)
			return b
		}, ErrUnsupportedFormat, nil},
		{"other partition count", func(b []byte) []byte {
			b[12] = 5
			rehashHeader(b)
			return b
		}, ErrCorrupt, nil},
		{"both slots damaged", func(b []byte) []byte {
			b[blockPos(2)+3] ^= 0x10
			b[blockPos(2)+slotSize+3] ^= 0x10
			return b
		}, nil, ErrCorrupt},
		{"both slots zeroed", func(b []byte) []byte {
			clear(b[blockPos(2) : blockPos(2)+2*slotSize])
			return b
		}, nil, ErrCorrupt},
		{"slots swapped between partitions", func(b []byte) []byte {
			copy(b[blockPos(1):blockPos(1)+2*slotSize], b[blockPos(2):blockPos(2)+2*slotSize])
			clear(b[blockPos(2) : blockPos(2)+2*slotSize])
			return b
		}, nil, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := offsetsPath(dir, "g", "t")
			os.MkdirAll(filepath.Dir(path), 0o755)
			os.WriteFile(path, tc.mutate(bytes.Clone(pristine)), 0o644)
			off, err := openOffsets(dir, "g", "t", nparts, "", false)
			if tc.open != nil {
				if !errors.Is(err, tc.open) {
					t.Fatalf("open: %v, want %v", err, tc.open)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer off.close()
			_, err = off.readCommit(2)
			if !errors.Is(err, tc.read) {
				t.Fatalf("read: %v, want %v", err, tc.read)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("read: %v, want a *CorruptError for %s", err, path)
			}
			t.Log(err)
		})
	}
}

func rehashHeader(b []byte) {
	binary.LittleEndian.PutUint64(b[56:], xxhash.Sum64(b[:56]))
}

// A group member that takes over a damaged partition gets the
// *CorruptError from Poll; nothing is read from offset 0.
func TestGroupCorruptOffsets(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	produceSpread(t, l, "t", 2, 3)
	if _, err := l.ResetGroupOffsets(context.Background(), "g", "t", Latest, nil); err != nil {
		t.Fatal(err)
	}
	path := offsetsPath(l.Dir(), "g", "t")
	b, _ := os.ReadFile(path)
	clear(b[blockPos(1) : blockPos(1)+2*slotSize])
	os.WriteFile(path, b, 0o644)

	c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs, err := c.TryPoll()
	if !errors.Is(err, ErrCorrupt) || len(recs) != 0 {
		t.Fatalf("TryPoll: %d records, %v; want ErrCorrupt", len(recs), err)
	}
	if _, err := l.DescribeGroup("g"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DescribeGroup: %v, want ErrCorrupt", err)
	}
}
