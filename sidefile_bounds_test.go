package runnel

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The small files beside the segments (runnel.format, topic.json) are
// read with a bound: their size on disk, or an endless file where one
// should be (a symlink to /dev/zero), never decides what is allocated.
// Both were read whole.

// sparseFile replaces path by a sparse file of size zero bytes.
func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// allocatedBy returns how many bytes fn allocated.
func allocatedBy(fn func()) uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.TotalAlloc
	fn()
	runtime.ReadMemStats(&m)
	return m.TotalAlloc - before
}

func TestFormatFileBounded(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil).Close()
	sparseFile(t, filepath.Join(dir, formatFileName), 80<<20)
	var err error
	got := allocatedBy(func() {
		var l *Log
		if l, err = Open(dir, nil); err == nil {
			l.Close()
		}
	})
	if !errors.Is(err, ErrUnsupportedFormat) || len(err.Error()) > 1024 {
		t.Errorf("Open with an 80 MiB runnel.format: %.200q (%d bytes), want a short ErrUnsupportedFormat", err, len(err.Error()))
	}
	if got > 8<<20 {
		t.Errorf("Open with an 80 MiB runnel.format allocated %d MiB", got>>20)
	}
}

func TestTopicFileBounded(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	sparseFile(t, filepath.Join(dir, "topics", "t", topicFileName), 80<<20)
	var err error
	got := allocatedBy(func() { _, err = l.DescribeTopic("t") })
	var ce *CorruptError
	if !errors.As(err, &ce) || filepath.Base(ce.Path) != topicFileName {
		t.Errorf("DescribeTopic with an 80 MiB topic.json: %v, want a CorruptError naming it", err)
	}
	if got > 8<<20 {
		t.Errorf("DescribeTopic with an 80 MiB topic.json allocated %d MiB", got>>20)
	}
}
