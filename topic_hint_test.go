package runnel

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestPublishedCountIsAHint: garbage in partition 0's published partition
// count (a stray write) neither adds partitions nor stops the handle from
// taking a real growth published after it, also once partition 0 has
// released its files.
func TestPublishedCountIsAHint(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{RetentionInterval: -1})
	other := openTest(t, dir, &Options{RetentionInterval: -1})
	mustCreate(t, l, "q", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "q", nil)
	meta, err := openMeta(filepath.Join(dir, "topics", "q", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.close()
	sendKeys := func(n int) {
		t.Helper()
		for i := range 32 {
			key := fmt.Appendf(nil, "key-%d", i)
			pos, err := p.Send(context.Background(), Record{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if want := int(xxhash.Sum64(key) % uint64(n)); pos.Partition != want {
				t.Fatalf("key %s went to partition %d, want %d of %d", key, pos.Partition, want, n)
			}
		}
	}
	for _, garbage := range []uint32{0xdeadbeef, 7, 1} {
		meta.u32(metaPartsOff).Store(garbage)
		sendKeys(2)
		if n := len(p.topic.parts()); n != 2 {
			t.Fatalf("after garbage %d in the word, the handle has %d partitions, want 2", garbage, n)
		}
	}
	// Partition 0 closing its files (Options.MaxOpenFiles) leaves the
	// word mapped: the handle's mapping is its own.
	waitFor(t, patience, "partition 0 to release its files", p.topic.parts()[0].releaseFiles)
	growTo(t, other, "q", 3)
	sendKeys(3)
}
