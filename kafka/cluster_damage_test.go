package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/runnel-log/runnel"
)

// TestClusterIDFileBounded: kafka/cluster.id is 23 bytes; a damaged one
// of 80 MiB (or a symlink to /dev/zero: an endless read) is refused
// without reading it all, as it was read whole, and the error quoted it.
func TestClusterIDFileBounded(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, stateDir, clusterIDFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(80 << 20) // sparse: 80 MiB of zeros
	f.Close()
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.TotalAlloc
	_, err = NewServer(l, nil)
	runtime.ReadMemStats(&m)
	got := m.TotalAlloc - before
	if err == nil {
		t.Errorf("NewServer accepted an 80 MiB cluster.id of zeros")
	} else {
		t.Logf("NewServer: %.150s... (%d bytes)", err, len(err.Error()))
	}
	if got > 64<<20 {
		t.Errorf("NewServer with an 80 MiB cluster.id allocated %d MiB; want at most 64 MiB", got>>20)
	}
}

// TestProducerIDsNearTheTop: kafka/producer-ids near the top of int64 is
// refused: the block reserved after it would run past MaxInt64, and the
// server gave clients negative producer ids (-1 is Kafka's "no producer
// id").
func TestProducerIDsNearTheTop(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateDir, pidFile), []byte("09223372036854775806\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newPIDAllocator(dir)
	for i := 0; i < 4; i++ {
		id, err := a.allocate(context.Background())
		if err != nil {
			if i != 0 {
				t.Errorf("allocate %d: %v; want the first refused, or none", i, err)
			}
			return // refused, with the file named
		}
		if id < 0 {
			t.Fatalf("allocate %d handed out producer id %d", i, id)
		}
	}
}

// TestProducerIDsLongerThanWritten: a kafka/producer-ids longer than the
// 21 bytes a server writes there (a counter with more leading zeros) is
// read, and the server's next counter replaces all of it: it was written
// over the file's head, and the rest left after it made the file one the
// next server refused. Found by FuzzStateFiles.
func TestProducerIDsLongerThanWritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateDir, pidFile), []byte("0000000000000000000042\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int64{42, 42 + pidBlock} {
		if id, err := newPIDAllocator(dir).allocate(context.Background()); id != want || err != nil {
			t.Fatalf("a server's first producer id: %d, %v; want %d", id, err, want)
		}
	}
}

// TestProducerIDsPastTheRead: a kafka/producer-ids longer than the 32
// bytes the server read of it (a counter with yet more leading zeros) is
// read whole: its first 32 bytes were taken for the counter, 0 here, and
// the server handed out producer ids it had given before.
func TestProducerIDsPastTheRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	counter := fmt.Sprintf("%040d\n", 5000)
	if err := os.WriteFile(filepath.Join(dir, stateDir, pidFile), []byte(counter), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, err := newPIDAllocator(dir).allocate(context.Background()); id != 5000 || err != nil {
		t.Fatalf("a server's first producer id from %q: %d, %v; want 5000", counter, id, err)
	}
}
