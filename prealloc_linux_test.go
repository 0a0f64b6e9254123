package runnel

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
	for _, d := range []Durability{Durable, Buffered, Periodic} {
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

// TestReserveReleasedByNextWriter: a segment reserved by one writer and
// rolled by another whose first frame there seals it gives the blocks back
// too (the second writer never reserved any itself).
func TestReserveReleasedByNextWriter(t *testing.T) {
	dir := t.TempDir()
	if err := reserveBlocks(probeFile(t, dir), 0, 1<<20); err != nil {
		t.Skipf("the file system under %s reserves no blocks: %v", dir, err)
	}
	first := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, first, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	value := make([]byte, 25000)
	send := func(l *Log) {
		t.Helper()
		if _, err := mustProducer(t, l, "t", nil).Send(context.Background(), Record{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	// Two records fit in the segment; the first writer reserved it whole.
	send(first)
	send(first)
	seg := segmentPath(partDir(first, "t", 0), 0, logExt)
	if _, allocated := segmentBlocks(t, seg); allocated < minSegmentBytes {
		t.Fatalf("segment holds %d bytes of blocks, want %d reserved", allocated, minSegmentBytes)
	}
	// The third, the second writer's first, rolls it.
	second := openTest(t, dir, &Options{Durability: Buffered})
	send(second)
	if bases, err := listSegments(partDir(second, "t", 0)); err != nil || len(bases) != 2 {
		t.Fatalf("segments %v, %v: want the third record to roll the first", bases, err)
	}
	size, allocated := segmentBlocks(t, seg)
	if slack := allocated - (size+4095)/4096*4096; slack > 0 {
		t.Errorf("sealed segment of %d bytes holds %d bytes of blocks: %d reserved bytes not given back", size, allocated, slack)
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

// BenchmarkSyncedAppend: a pwrite+fdatasync at consecutive positions of
// a file, by where the write lands (docs/PERFORMANCE.md).
func BenchmarkSyncedAppend(b *testing.B) {
	// Where a synced write lands: past the end of the file (appended),
	// past it into blocks reserved with FALLOC_FL_KEEP_SIZE (reserved,
	// what writers taking turns do), or inside the file's size, into
	// zeros it was extended by (extended, what a writer keeping the lock
	// does: partition.extendsAhead), or into such zeros written for real
	// and synced beforehand (written, what a Durable writer of small
	// frames does: writeZerosAhead). Sizes: a one-record frame, and a
	// frame of 64 senders' records.
	for _, size := range []int{152, 8704} {
		for _, where := range []string{"appended", "reserved", "extended", "written"} {
			b.Run(fmt.Sprintf("size=%d/%s", size, where), func(b *testing.B) {
				f, err := os.Create(b.TempDir() + "/seg")
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				span := int64(b.N+1) * int64(size)
				switch where {
				case "reserved":
					err = reserveBlocks(int(f.Fd()), 0, span)
				case "extended":
					err = extendFile(int(f.Fd()), 0, span)
				case "written":
					if err = extendFile(int(f.Fd()), 0, span); err == nil {
						for off := int64(0); off < span && err == nil; off += zeroChunk {
							err = pwriteFull(int(f.Fd()), zeroBuf[:min(zeroChunk, span-off)], off)
						}
					}
				}
				if err != nil {
					b.Skipf("%s: not on this file system: %v", where, err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				rec := make([]byte, size)
				b.ResetTimer()
				for i := range b.N {
					if _, err := f.WriteAt(rec, int64(i)*int64(size)); err != nil {
						b.Fatal(err)
					}
					if err := syscall.Fdatasync(int(f.Fd())); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestReserveGrowsWithData: a partition with little data reserves little
// (a step as long as its data, reserveMin at least), and one that grows
// reserves further ahead, up to reserveStep: 10,000 partitions written
// once each must not take 4 MiB of disk apiece.
func TestReserveGrowsWithData(t *testing.T) {
	dir := t.TempDir()
	if err := reserveBlocks(probeFile(t, dir), 0, 1<<20); err != nil {
		t.Skipf("the file system under %s reserves no blocks: %v", dir, err)
	}
	// A Buffered writer that takes turns with others (here: one that met
	// contention, for an hour) lets the lock go after each append, and
	// appends into the reservation; one that keeps the lock, and a
	// Durable one taking turns, extend the file with zeros instead
	// (extend).
	stretchHold(t)
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: 64 << 20})
	p := mustProducer(t, l, "t", nil)
	l.topics["t"].parts()[0].contended = time.Now()
	seg := segmentPath(partDir(l, "t", 0), 0, logExt)
	if _, err := p.Send(context.Background(), Record{Value: []byte("one small record")}); err != nil {
		t.Fatal(err)
	}
	if _, allocated := segmentBlocks(t, seg); allocated > reserveMin+4096 {
		t.Fatalf("one small record: %d bytes of blocks held, want at most reserveMin (%d) and a block", allocated, reserveMin)
	}
	// 12 MiB of data: the reservation ahead reaches a full step, never
	// more.
	value := make([]byte, 64<<10)
	var most int64
	for range 192 {
		if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
			t.Fatal(err)
		}
		size, allocated := segmentBlocks(t, seg)
		if ahead := allocated - size; ahead > reserveStep+4096 {
			t.Fatalf("segment of %d bytes holds %d bytes of blocks: more than reserveStep (%d) ahead", size, allocated, reserveStep)
		} else {
			most = max(most, ahead)
		}
	}
	if most < reserveStep*3/4 {
		t.Fatalf("at most %d bytes reserved ahead of 12 MiB of data; want a step near reserveStep (%d)", most, reserveStep)
	}
}

// BenchmarkSyncedAppendThreads: threads each doing a 152-byte
// pwrite+fdatasync at the next position of one file, into zeros written
// and synced beforehand: whether fdatasyncs in flight at once overlap on
// this disk (docs/PERFORMANCE.md: 64 senders against one). ns/op is per
// fdatasync of any thread.
func BenchmarkSyncedAppendThreads(b *testing.B) {
	const size = 152
	for _, threads := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			f, err := os.Create(b.TempDir() + "/seg")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			fd := int(f.Fd())
			span := int64(b.N+threads) * size
			if err := extendFile(fd, 0, span); err != nil {
				b.Skipf("not on this file system: %v", err)
			}
			for off := int64(0); off < span; off += zeroChunk {
				if err := pwriteFull(fd, zeroBuf[:min(zeroChunk, span-off)], off); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, threads)
			rec := make([]byte, size)
			b.ResetTimer()
			for range threads {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						if err := pwriteFull(fd, rec, i*size); err != nil {
							errs <- err
							return
						}
						if err := syscall.Fdatasync(fd); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}
