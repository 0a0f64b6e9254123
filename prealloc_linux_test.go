package runnel

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// segmentBlocks returns a segment file's size and the bytes of disk
// blocks it holds.
func segmentBlocks(t *testing.T, path string) (size, allocated int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestReserveBlocks: the active segment holds blocks reserved past its
// end, which no reader sees (its size is where the data ends), and a
// segment sealed by a roll gives back what it did not use.
func TestReserveBlocks(t *testing.T) {
	for _, d := range []Durability{Durable, Buffered} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			if err := reserveBlocks(probeFile(t, dir), 0, 1<<20); err != nil {
				t.Skipf("the file system under %s reserves no blocks: %v", dir, err)
			}
			l := openTest(t, dir, &Options{Durability: d})
			const segBytes = minSegmentBytes
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: segBytes})
			p := mustProducer(t, l, "t", nil)
			// Two records fill most of a segment and a third rolls it,
			// leaving blocks reserved past the seal.
			value := make([]byte, 25000)
			send := func(i int) {
				t.Helper()
				copy(value, fmt.Sprintf("record %d", i))
				if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
					t.Fatal(err)
				}
			}
			send(0)
			pdir := partDir(l, "t", 0)
			first := segmentPath(pdir, 0, logExt)
			size, allocated := segmentBlocks(t, first)
			if size < 25000 || size > 26000 {
				t.Fatalf("segment size %d after one 25000-byte record: the reservation shows", size)
			}
			if allocated < segBytes {
				t.Fatalf("active segment of %d bytes holds %d bytes of blocks, want the segment's %d reserved", size, allocated, segBytes)
			}

			n := 1
			for ; ; n++ {
				send(n)
				bases, err := listSegments(pdir)
				if err != nil {
					t.Fatal(err)
				}
				if len(bases) > 1 {
					break
				}
				if n > 10 {
					t.Fatal("no roll after 10 records")
				}
			}
			size, allocated = segmentBlocks(t, first)
			if slack := allocated - (size+4095)/4096*4096; slack > 0 {
				t.Errorf("sealed segment of %d bytes holds %d bytes of blocks: %d reserved bytes not given back", size, allocated, slack)
			}
			recs := readAll(t, l, "t", n+1, &ConsumerOptions{Start: Earliest})
			for i, r := range recs {
				if want := fmt.Sprintf("record %d", i); string(r.Value[:len(want)]) != want {
					t.Fatalf("record %d reads %q", i, r.Value[:len(want)])
				}
			}
			rep, err := l.Verify(context.Background(), "t", nil)
			if err != nil || !rep.OK() {
				t.Fatalf("Verify: %v %+v", err, rep.Problems)
			}
		})
	}
}

// probeFile creates a file in dir for a capability check and returns its
// descriptor.
func probeFile(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
	return int(f.Fd())
}
