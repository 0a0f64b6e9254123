package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/runnel-log/runnel/internal/frame"
)

// A frame whose checksum is good but whose records break the frame rules
// (a record timestamped after the frame's max_time: a writer's mistake
// the checksum cannot catch) is judged alike by readers, Verify and
// salvage: readers report it, Verify finds it, salvage makes a gap of it,
// and then Verify finds nothing.
func TestBadRecordsOneRule(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "topics", "t", "0")
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	sendSeq(t, mustProducer(t, l, "t", nil), 0, seqRecords(0, 3))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := segmentPath(pdir, 0, logExt)
	fr := parseSegment(t, path, 0).Frames[1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// max_time (header bytes 40..48) one below the record's timestamp,
	// and the checksum made good again (frame.checksum's rule: the body
	// from byte 16 hashed, then bytes 0..8 with the state byte zeroed
	// followed by that hash).
	f := data[fr.Pos : fr.Pos+fr.Meta.Checked()]
	binary.LittleEndian.PutUint64(f[40:], uint64(fr.Meta.MaxTime-1))
	var head [16]byte
	copy(head[:8], f[:8])
	head[frame.OffState] = 0
	binary.LittleEndian.PutUint64(head[8:], xxhash.Sum64(f[16:]))
	binary.LittleEndian.PutUint64(f[8:], xxhash.Sum64(head[:]))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := frame.ParseMeta(f); err != nil || frame.Verify(f, m) != nil {
		t.Fatalf("test setup: the frame does not check out: %v", err)
	}

	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	var ce *CorruptError
	got := 0
	for {
		recs, err := c.TryPoll()
		if errors.As(err, &ce) {
			break
		}
		if err != nil || len(recs) == 0 {
			t.Fatalf("reader: %d records, then %v; want a *CorruptError at offset 1", got, err)
		}
		got += len(recs)
	}
	c.Close()
	if got > 1 || ce.Offset != 1 {
		t.Fatalf("reader: %d records, then %v; want a *CorruptError at offset 1 after record 0 at most", got, ce)
	}
	if vr, err := l.Verify(context.Background(), "t", nil); err != nil || vr.OK() {
		t.Fatalf("Verify: %v, problems %v; want the bad record found", err, vr.Problems)
	}
	rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
	if err != nil || len(rep.Actions) != 1 || rep.Actions[0].From != 1 || rep.Actions[0].To != 2 {
		t.Fatalf("salvage: %+v, %v; want one gap for offset 1", rep.Actions, err)
	}
	if n := readAllClean(t, l); n != 2 {
		t.Fatalf("after salvage read %d records, want 2", n)
	}
}
