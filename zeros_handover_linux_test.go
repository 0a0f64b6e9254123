package runnel

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestDurableZerosHandedOver: Durable writers that take turns hand the
// zeros ahead of the tail on with the writer lock (prealloc.go): the next
// holder writes its frames into them, so the file's size stays where the
// first extension put it; readers and Verify see every record and no
// zeros; and once every Log has closed, the file ends where its data does.
func TestDurableZerosHandedOver(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	a := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, a, mapWriteTopic, TopicConfig{Partitions: 1})
	b := openTest(t, dir, &Options{Durability: Durable})
	var senders []*Producer
	for _, l := range []*Log{a, b} {
		senders = append(senders, mustProducer(t, l, mapWriteTopic, nil))
		// Met contention (for an hour): it lets the lock go after every
		// append, as writers in several processes do.
		l.topics[mapWriteTopic].parts()[0].contended = time.Now()
	}
	seg := segmentPath(partDir(a, mapWriteTopic, 0), 0, logExt)
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	send := func(i int) {
		t.Helper()
		if pos, err := senders[i%2].Send(context.Background(), Record{Value: mapWriteValue(i)}); err != nil || pos.Offset != int64(i) {
			t.Fatalf("record %d: %+v, %v", i, pos, err)
		}
	}
	// Each Log's first append finds the tail from the index, walking the
	// zeros the other left (and cutting them); from then on each takes
	// them over.
	send(0)
	send(1)
	extended := size()
	const n = 40
	for i := 2; i < n; i++ {
		send(i)
		if got := size(); got != extended {
			t.Fatalf("after record %d the segment is %d bytes, was %d: the zeros were not written into", i, got, extended)
		}
	}
	info, err := b.DescribeTopic(mapWriteTopic)
	if err != nil {
		t.Fatal(err)
	}
	data := info.Partitions[0].Bytes
	if data >= extended {
		t.Fatalf("segment of %d bytes holds %d bytes of data: no zeros ahead of the tail", extended, data)
	}
	if err := mapWriteCheck(b, n); err != nil {
		t.Fatal(err)
	}
	if rep, err := b.Verify(context.Background(), mapWriteTopic, nil); err != nil || !rep.OK() {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	for _, l := range []*Log{a, b} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := size(); got != data {
		t.Fatalf("after both Logs closed the segment is %d bytes, its data %d", got, data)
	}
}

// TestZerosStatement: the statement of the zeros left at a hand-over is
// taken once, by the next holder of the writer lock; one torn by a holder
// killed while writing it, or of another machine run, is no statement.
func TestZerosStatement(t *testing.T) {
	m := newMetaMap(make([]byte, metaSize), "", false, true)
	z := zeroRun{base: 100, from: 4096, to: 65536}
	if _, ok := m.takeZeros(); ok {
		t.Fatal("a fresh partition.meta states zeros")
	}
	m.leaveZeros(z)
	if got, ok := m.takeZeros(); !ok || got != z {
		t.Fatalf("takeZeros = %+v, %v; want %+v", got, ok, z)
	}
	if got, ok := m.takeZeros(); ok {
		t.Fatalf("the statement was taken twice: %+v", got)
	}

	m.leaveZeros(z)
	m.i64(metaZerosOff + 16).Store(1 << 20) // torn: the end moved, not the check word
	if got, ok := m.takeZeros(); ok {
		t.Fatalf("a torn statement was taken: %+v", got)
	}

	other := currentBootID
	other[0] ^= 1
	m.i64(metaZerosOff).Store(z.base)
	m.i64(metaZerosOff + 8).Store(z.from)
	m.i64(metaZerosOff + 16).Store(z.to)
	m.i64(metaZerosSumOff).Store(int64(zerosCheck(z, other)))
	if got, ok := m.takeZeros(); ok {
		t.Fatalf("another machine run's statement was taken: %+v", got)
	}
}

// TestZerosLeftInDeletedTopic: a Log that left zeros at a hand-over, in a
// topic another Log then deleted and created again, does not cut them at
// Close: its statement names the deleted topic's segment, and the path now
// names the new topic's, with records the cut would take.
func TestZerosLeftInDeletedTopic(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	a := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, a, mapWriteTopic, TopicConfig{Partitions: 1})
	pa := mustProducer(t, a, mapWriteTopic, nil)
	a.topics[mapWriteTopic].parts()[0].contended = time.Now() // hands the lock over after each append
	for i := range 3 {
		if _, err := pa.Send(context.Background(), Record{Value: mapWriteValue(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if a.topics[mapWriteTopic].parts()[0].shm.i64(metaZerosSumOff).Load() == 0 {
		t.Fatal("no zeros left at the hand-over: the test needs them")
	}

	b := openTest(t, dir, &Options{Durability: Durable})
	if err := b.DeleteTopic(mapWriteTopic); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, mapWriteTopic, TopicConfig{Partitions: 1})
	const n = 40
	if err := mapWriteSend(b, n); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mapWriteCheck(b, n); err != nil {
		t.Fatalf("after the Log that left zeros in the deleted topic closed: %v", err)
	}
}
