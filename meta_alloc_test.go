package runnel

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fullDisk makes every allocation of partition.meta fail as a full disk
// would, for the rest of the test. Tests that call it do not run in
// parallel: metaAllocate is the package's.
func fullDisk(t *testing.T) {
	t.Helper()
	saved := metaAllocate
	metaAllocate = func(*os.File, int64) error { return syscall.ENOSPC }
	t.Cleanup(func() { metaAllocate = saved })
}

// mapped reports whether this process maps path, where /proc says (Linux);
// elsewhere it reports false.
func mapped(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasSuffix(s.Text(), " "+path) {
			return true
		}
	}
	return false
}

// metaTestLog opens a Log with a one-partition topic "t" and returns it,
// the partition's directory and its partition.meta path.
func metaTestLog(t *testing.T) (l *Log, pdir, path string) {
	t.Helper()
	dir := t.TempDir()
	l = openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	pdir = filepath.Join(dir, "topics", "t", "0")
	return l, pdir, filepath.Join(pdir, metaFileName)
}

// TestMetaFullDiskOnCreate: when partition.meta cannot get its blocks, the
// partition fails to open with an error that names the file and says
// ENOSPC, and neither the file nor a mapping of it is left behind: a store
// into the mapping would otherwise have raised SIGBUS later.
func TestMetaFullDiskOnCreate(t *testing.T) {
	l, pdir, path := metaTestLog(t)
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists before the partition is first used; this test expects its creation on first use", path)
	}
	fullDisk(t)

	m, err := openMeta(pdir)
	if err == nil {
		m.close()
		t.Fatal("openMeta succeeded with the disk full")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("openMeta: %v; want ENOSPC naming %s", err, path)
	}

	p := mustProducer(t, l, "t", nil)
	_, err = p.Send(context.Background(), Record{Value: []byte("x")})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Send: %v; want ENOSPC naming %s", err, path)
	}

	entries, err := os.ReadDir(pdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), metaFileName) {
			t.Errorf("%s left in the partition after the failed creation", e.Name())
		}
	}
	if mapped(t, path) {
		t.Errorf("%s is mapped after the failed open", path)
	}
}

// TestMetaFullDiskOnOpen: an existing partition.meta is allocated again by
// every process that maps it writable (one that an older version grew
// sparse has holes), and a failure is the open's error, with no mapping.
func TestMetaFullDiskOnOpen(t *testing.T) {
	_, pdir, path := metaTestLog(t)
	m, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	m.close()
	fullDisk(t)

	m, err = openMeta(pdir)
	if err == nil {
		m.close()
		t.Fatal("openMeta succeeded with the disk full")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("openMeta: %v; want ENOSPC naming %s", err, path)
	}
	if mapped(t, path) {
		t.Errorf("%s is mapped after the failed open", path)
	}
}

// TestMetaZeroFill: the fallback for file systems without fallocate
// writes zeros past the end of a short file and keeps what is there.
func TestMetaZeroFill(t *testing.T) {
	saved := metaAllocate
	metaAllocate = zeroFill
	t.Cleanup(func() { metaAllocate = saved })

	dir := t.TempDir()
	m, err := openMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.close()
	path := filepath.Join(dir, metaFileName)
	checkAllocated(t, path)

	short := filepath.Join(t.TempDir(), metaFileName)
	head := []byte("written before")
	if err := os.WriteFile(short, head, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = openMeta(filepath.Dir(short))
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.mem[:len(head)])
	m.close()
	if got != string(head) {
		t.Errorf("the mapping starts %q after the zero fill; want %q", got, head)
	}
	checkAllocated(t, short)
}

// TestMetaSparseAllocated: a partition.meta grown sparse, as older versions
// did by truncation, has its blocks once opened writable, where the file
// system allocates (fallocate on Linux).
func TestMetaSparseAllocated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, metaFileName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(metaSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := allocateBlocks(-1, 0, 1); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no block allocation here: sparse files stay sparse (allocateFile)")
	}
	m, err := openMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.close()
	checkAllocated(t, path)
}

// checkAllocated fails t unless path is metaSize bytes long with a block
// behind each, where the system reports blocks.
func checkAllocated(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != metaSize {
		t.Errorf("%s is %d bytes, want %d", path, st.Size(), metaSize)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 < metaSize {
		t.Errorf("%s has %d bytes of blocks, want at least %d", path, sys.Blocks*512, metaSize)
	}
}
