package runnel

import (
	"context"
	"testing"
	"time"
)

// sealChecksHeld counts the seal checks l holds, over every topic it has
// a handle on.
func sealChecksHeld(l *Log) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.topics {
		for _, p := range t.parts() {
			p.sealChecks.Range(func(_, _ any) bool {
				n++
				return true
			})
		}
	}
	return n
}

// clearSealChecks makes l forget every seal check, as a new Log would
// have none.
func clearSealChecks(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.topics {
		for _, p := range t.parts() {
			p.sealChecks.Clear()
		}
	}
}

// TestSealChecksForgotten: a lookup by time past every sealed segment
// leaves the Log one seal check per segment; the Log forgets those of
// segments another Log's retention removed (at its next lookup by time),
// those its own retention removes, and a topic's once it learns the
// topic was deleted. It kept them all, growing for as long as it ran.
func TestSealChecksForgotten(t *testing.T) {
	const size = 1000
	dir := t.TempDir()
	opts := &Options{Durability: Buffered, MaxBatchBytes: retBatch, RetentionInterval: -1}
	l := openTest(t, dir, opts)
	other := openTest(t, dir, opts) // as another process
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	at := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Millisecond) }
	n := 0
	produce := func(k int) {
		retProduce(t, l, "t", n, k, size, at)
		n += k
	}
	passOver := func() {
		t.Helper()
		if _, err := lookup(l, "t", AtTime(at(n-1)), 1); err != nil {
			t.Fatal(err)
		}
	}
	want := func(when string, bases []int64) {
		t.Helper()
		if got := sealChecksHeld(l); got != len(bases)-1 {
			t.Errorf("%s: the Log holds %d seal checks, want %d (segments %v)", when, got, len(bases)-1, bases)
		}
	}
	retain := func(by *Log) {
		t.Helper()
		if err := by.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = 3 * minSegmentBytes }); err != nil {
			t.Fatal(err)
		}
		if err := by.EnforceRetention(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	produce(1000)
	passOver()
	before := retBases(t, l, "t")
	if len(before) < 10 {
		t.Fatalf("test setup: only %d segments", len(before))
	}
	want("after a lookup past every segment", before)

	retain(other)
	after := retBases(t, l, "t")
	if after[0] == before[0] {
		t.Fatalf("test setup: retention removed nothing: %v", after)
	}
	passOver()
	want("after another Log's retention and a lookup", after)

	produce(1000)
	passOver()
	before = retBases(t, l, "t")
	want("after more records and a lookup", before)
	retain(l)
	after = retBases(t, l, "t")
	if after[0] == before[0] {
		t.Fatalf("test setup: retention removed nothing: %v", after)
	}
	want("after this Log's retention", after)

	if err := other.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DescribeTopic("t"); err == nil {
		t.Fatal("DescribeTopic after another Log deleted the topic: no error")
	}
	if got := sealChecksHeld(l); got != 0 {
		t.Errorf("after the topic was deleted: the Log holds %d seal checks, want 0", got)
	}
}
