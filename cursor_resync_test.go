package runnel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
)

// A crafted segment: every 64 bytes a committed header whose frame claims
// 512 KiB (within the file) and whose checksum fails. Checking each
// candidate in full would read gigabytes; resync stops at its budget and
// says it could not tell (so the bytes are damage, never a torn tail to
// cut), and a header whose frame would run past the end of the file is
// not read at all.
func TestResyncWorkIsBounded(t *testing.T) {
	big := committedFrame(0, string(make([]byte, 512<<10)))
	header := big[:frame.HeaderSize]
	data := make([]byte, 1<<20)
	for p := 0; p+frame.HeaderSize <= len(data); p += 64 {
		copy(data[p:], header)
	}
	path := filepath.Join(t.TempDir(), "00000000000000000000"+logExt)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := newCursor(f, path, 0, 0)
	v, err := c.judgeTail(tailRules{})
	if err != nil {
		t.Fatal(err)
	}
	if v.kind != tailDamage || !v.unsure || v.found {
		t.Fatalf("verdict %v (unsure %v, found %v), want damage that resync could not place", v.kind, v.unsure, v.found)
	}
	// Past the first half every header's frame runs past the end of the
	// file: those are passed over unread.
	budget := int64(resyncBudget)
	if _, ok, err := c.candidate(int64(len(data))-64*4, 0, int64(len(data)), &budget); err != nil || ok || budget != resyncBudget {
		t.Fatalf("candidate past the end: ok %v, %v, checked %d bytes; want it passed over unread", ok, err, resyncBudget-budget)
	}
}
