package runnel

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holeAt says where the first hole at or after off is in the file at path,
// and where data starts at or after off (-1: none). ext4 and XFS report
// fallocated blocks nobody wrote as a hole, written ones as data.
func holeAt(t *testing.T, path string, off int64) (hole, data int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if hole, err = unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE); err != nil {
		t.Fatal(err)
	}
	data, err = unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if err == unix.ENXIO {
		return hole, -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return hole, data
}

// skipUnlessUnwrittenShows skips a test whose evidence is the file
// system's block map when fallocated blocks read as data under dir, as on
// tmpfs.
func skipUnlessUnwrittenShows(t *testing.T, dir string) {
	t.Helper()
	path := dir + "/probe-unwritten"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = extendFile(int(f.Fd()), 0, 1<<20)
	f.Close()
	defer os.Remove(path)
	if err != nil {
		t.Skipf("the file system under %s cannot fallocate: %v", dir, err)
	}
	if _, data := holeAt(t, path, 0); data != -1 {
		t.Skipf("the file system under %s shows fallocated blocks as data", dir)
	}
}

// TestWritesZerosAhead: a writer of small frames has zeros written for
// real past its tail (the file system shows them as data), and fallocated
// ones past those (a hole): a Durable one once it wrote past its first
// extension, and none in a short burst; a Buffered one, which copies its
// frames through the segment's mapping, from its first frame on.
func TestWritesZerosAhead(t *testing.T) {
	for _, d := range []Durability{Durable, Buffered} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			skipUnlessUnwrittenShows(t, dir)
			stretchHold(t)
			l := openTest(t, dir, &Options{Durability: d, Backend: BackendPwrite})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: 64 << 20})
			p := mustProducer(t, l, "t", nil)
			part := l.topics["t"].parts()[0]
			send := func(n, size int) {
				t.Helper()
				for range n {
					if _, err := p.Send(context.Background(), Record{Value: make([]byte, size)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			check := func(when string) {
				t.Helper()
				part.wmu.Lock()
				pos, zeroed, extended := part.w.pos, part.w.zeroed, part.w.extended
				part.wmu.Unlock()
				if extended <= pos {
					t.Fatalf("%s: tail at byte %d, extended to %d: the test needs zeros extended ahead", when, pos, extended)
				}
				if zeroed < pos+zeroLead || zeroed > extended {
					t.Fatalf("%s: tail at byte %d, extended to %d: zeros written to %d, want at least zeroLead past the tail", when, pos, extended, zeroed)
				}
				// The block holding zeroed is partly written: the hole,
				// if any, starts at the next block.
				hole, _ := holeAt(t, segmentPath(partDir(l, "t", 0), 0, logExt), pos)
				if hole < zeroed || hole > (zeroed+4095)/4096*4096 {
					t.Fatalf("%s: zeros written to %d, but the first hole past the tail %d is at %d", when, zeroed, pos, hole)
				}
			}
			send(10, 100)
			if d == Durable {
				part.wmu.Lock()
				z := part.w.zeroed
				part.wmu.Unlock()
				if z != 0 {
					t.Fatalf("a burst of ten records wrote zeros to %d", z)
				}
			} else {
				check("after ten records")
			}
			// Past the first extension and the first chunk of zeros: 200
			// KiB for Durable; for Buffered 300 KiB of frames small
			// enough for the mapping (larger ones are pwritten, and get
			// no zeros written ahead).
			if d == Durable {
				send(100, 2<<10)
			} else {
				send(2400, 100)
			}
			check("past the first chunk")
		})
	}
}

// TestZerosHandOverKeepsWritten: writers taking turns hand on the zeros
// written ahead, so that each turn's small frame writes no zeros again:
// the mark stays where the second writer's first chunk ended.
func TestZerosHandOverKeepsWritten(t *testing.T) {
	dir := t.TempDir()
	stretchHold(t)
	opts := &Options{Durability: Durable, Backend: BackendPwrite}
	a, b := openTest(t, dir, opts), openTest(t, dir, opts)
	mustCreate(t, a, "t", TopicConfig{Partitions: 1, SegmentBytes: 64 << 20})
	logs := []*Log{a, b}
	// Both write past their first extension alone, so that they write
	// zeros, then take turns.
	for _, l := range logs {
		p := mustProducer(t, l, "t", nil)
		for range 40 {
			if _, err := p.Send(context.Background(), Record{Value: make([]byte, 4<<10)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mark int64
	writes := 0
	writeZerosFn = func(fd int, b []byte, off int64) error {
		writes++
		return pwriteFull(fd, b, off)
	}
	t.Cleanup(func() { writeZerosFn = pwriteFull })
	for i := range 20 {
		l := logs[i%2]
		tp, err := l.topic("t")
		if err != nil {
			t.Fatal(err)
		}
		part := tp.parts()[0]
		// Contended: each lets the lock go after its append, leaving its
		// zeros to the other (leaveZeros). (Under p.wmu: the goroutine
		// watching a kept lock sets it too.)
		part.wmu.Lock()
		part.contended = time.Now()
		part.wmu.Unlock()
		if _, err := mustProducer(t, l, "t", nil).Send(context.Background(), Record{Value: make([]byte, 100)}); err != nil {
			t.Fatal(err)
		}
		z, ok := part.shm.takeZeros()
		if !ok {
			t.Fatalf("turn %d: no zeros stated at the hand-over", i)
		}
		part.shm.leaveZeros(z)
		if i > 1 && writes != 0 {
			t.Fatalf("turn %d wrote zeros %d times: they were there", i, writes)
		}
		writes = 0
		if i == 1 {
			// The second Log's first append found the tail afresh
			// (discoverTail), not the first one's statement, and wrote
			// its own chunk; from then on each takes over the other's.
			mark = z.to
		}
		if i > 1 && z.to != mark {
			t.Fatalf("turn %d states zeros to %d, the first %d: a turn wrote zeros again", i, z.to, mark)
		}
	}
	if recs := readAll(t, a, "t", 100, &ConsumerOptions{Start: Earliest}); len(recs) != 100 {
		t.Fatalf("read %d records, want 100", len(recs))
	}
}

// TestZerosAheadMixedFrameSizes: a writer that keeps the lock writes
// zeros ahead of its small frames only; its larger frames (pwritten past
// mapWriteMax in Buffered and Periodic mode, past zeroFrameMax in Durable
// mode) write none and carry the tail past the zeros written. The small
// frames after them must write zeros past themselves, never from the old
// mark over the frames in between: every record reads back.
func TestZerosAheadMixedFrameSizes(t *testing.T) {
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		t.Run(d.String(), func(t *testing.T) {
			stretchHold(t)
			l := openTest(t, t.TempDir(), &Options{Durability: d, Backend: BackendPwrite})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			part := l.topics["t"].parts()[0]
			var values [][]byte
			send := func(n, size int) {
				t.Helper()
				for range n {
					v := bytes.Repeat([]byte{byte('a' + len(values)%26)}, size)
					pos, err := p.Send(context.Background(), Record{Value: v})
					if err != nil || pos.Offset != int64(len(values)) {
						t.Fatalf("send %d: %+v, %v", len(values), pos, err)
					}
					values = append(values, v)
				}
			}
			send(200, 1<<10) // past the first extension: zeros written ahead
			send(25, 20<<10) // none, and past them
			part.wmu.Lock()
			pos, zeroed := part.w.pos, part.w.zeroed
			part.wmu.Unlock()
			if zeroed == 0 || zeroed >= pos {
				t.Fatalf("test setup: tail at byte %d, zeros written to %d: want the tail past written zeros", pos, zeroed)
			}
			send(200, 1<<10)
			recs := readAll(t, l, "t", len(values), &ConsumerOptions{Start: Earliest})
			for i, r := range recs {
				if r.Offset != int64(i) || !bytes.Equal(r.Value, values[i]) {
					t.Fatalf("record %d: offset %d, %d bytes starting %q; want %d bytes of %q", i, r.Offset, len(r.Value), r.Value[:min(len(r.Value), 4)], len(values[i]), values[i][:1])
				}
			}
			rep, err := l.Verify(context.Background(), "t", nil)
			if err != nil || !rep.OK() {
				t.Fatalf("Verify: %+v, %v", rep.Problems, err)
			}
		})
	}
}
