package runnel

import (
	"context"
	"testing"
)

// TestDeleteRecordsPrivateMetaReader: a Consumer of a read-only mount
// whose partition had no partition.meta when it began (so its mapping is
// a private copy, which no other process's store reaches) learns of a
// DeleteRecords made through a writable path before its next read, as
// every other Consumer does: it went on from where it was, delivering
// records below the start after the call returned.
func TestDeleteRecordsPrivateMetaReader(t *testing.T) {
	dir := t.TempDir()
	roLog(t, dir) // partition 1 of "t" has no partition.meta yet
	mnt := readOnlyMount(t, dir)
	ro := openTest(t, mnt, &Options{RetentionInterval: -1})
	c := mustConsumer(t, ro, "t", &ConsumerOptions{Partitions: []int{1}, MaxPollRecords: 5, OutOfRange: OutOfRangeEarliest})
	if !c.parts[0].meta.private {
		t.Fatal("the reader's partition.meta is mapped shared: the case is not made")
	}
	rw := openTest(t, dir, &Options{RetentionInterval: -1})
	p := mustProducer(t, rw, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for i := range 20 {
		if _, err := p.Send(context.Background(), Record{Partition: 1, Value: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if recs := pollUntil(t, c, 5, patience); recs[0].Offset != 0 {
		t.Fatalf("first poll from %d", recs[0].Offset)
	}
	if _, err := rw.DeleteRecords(context.Background(), "t", 1, 15); err != nil {
		t.Fatal(err)
	}
	if recs := pollUntil(t, c, 1, patience); recs[0].Offset != 15 {
		t.Errorf("the read-only reader's poll after DeleteRecords(15) from %d, want 15", recs[0].Offset)
	}
}
