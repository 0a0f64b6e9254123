package runnel

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkMappedPages measures what the first store into each page of a
// shared mapping of a file costs, by how the file was made to reach that
// far: fallocated (unwritten blocks), fallocated with the pages then
// populated in one call (MADV_POPULATE_WRITE), or fallocated and written
// with zeros by a pwrite a chunk at a time (the pwrite counted). It is
// the reason a writer that copies frames through the segment's mapping
// writes zeros ahead of them (zerowrite.go). One op is one 4 KiB page.
//
//	go test -run '^$' -bench MappedPages -benchtime 20000x -count 3 .
func BenchmarkMappedPages(b *testing.B) {
	const window = 1 << 20
	for _, how := range []string{"fallocated", "populated", "zeros-written"} {
		b.Run("ahead="+how, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "pages"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			fd := int(f.Fd())
			page := os.Getpagesize()
			b.ResetTimer()
			for off := int64(0); off < int64(b.N)*int64(page); off += window {
				if err := extendFile(fd, off, window); err != nil {
					b.Skipf("fallocate: %v", err)
				}
				if how == "zeros-written" {
					for at := off; at < off+window; at += zeroChunk {
						if err := pwriteFull(fd, zeroBuf[:], at); err != nil {
							b.Fatal(err)
						}
					}
				}
				mem, err := unix.Mmap(fd, off, window, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
				if err != nil {
					b.Fatal(err)
				}
				if how == "populated" {
					if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); err != nil {
						b.Skipf("MADV_POPULATE_WRITE: %v", err)
					}
				}
				// A 128-byte frame's store after another, as one Send
				// at a time makes them.
				for i := 0; i < window; i += 128 {
					mem[i] = 1
				}
				if err := unix.Munmap(mem); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
