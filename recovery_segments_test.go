package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rolledPartition writes 200 records of 1000 bytes to topic t in mode,
// over several segments, closes the Log, and makes partition.meta say
// what a power loss right after an early checkpoint leaves: a checkpoint
// and durable point of another boot at the start. The process then runs
// as after a reboot. It returns the partition directory and its segments.
func rolledPartition(t *testing.T, dir string, mode Durability) (string, []int64) {
	t.Helper()
	pdir := filepath.Join(dir, "topics", "t", "0")
	l := openTest(t, dir, &Options{Durability: mode, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", nil)
	for range 200 {
		if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	bases, err := listSegments(pdir)
	if err != nil || len(bases) < 3 {
		t.Fatalf("segments %v, %v: want at least 3", bases, err)
	}
	writeMeta(t, pdir, [16]byte{0xee, 0xee, 0xee}, 0, 0, 0)
	setBootIDForTest(t, [16]byte{1, 2, 3})
	return pdir, bases
}

// A sealed segment was synced before the next one was created, in every
// mode: after a reboot, a bad frame in it is damage, not bytes the power
// loss took. Recovery must not cut it and remove every later segment
// (reusing their offsets): appends are refused, and salvage then loses
// only the damaged frame's offsets.
func TestRecoveryKeepsSealedSegmentsAfterReboot(t *testing.T) {
	for _, mode := range []Durability{Buffered, Periodic} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			pdir, bases := rolledPartition(t, dir, mode)
			seg0 := parseSegment(t, segmentPath(pdir, 0, logExt), 0)
			fr := seg0.Frames[10]
			flipByte(t, seg0.Path, fr.Pos+60)

			l := openTest(t, dir, &Options{Durability: mode, RetentionInterval: -1})
			p := mustProducer(t, l, "t", nil)
			_, err := p.Send(context.Background(), Record{Value: []byte("after reboot")})
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("append after the reboot: %v, want a *CorruptError\nrecoveries: %+v", err, l.Recoveries())
			}
			if ce.Offset != fr.Meta.Base || !strings.HasSuffix(ce.Path, filepath.Base(seg0.Path)) {
				t.Errorf("damage reported at %s offset %d, want %s offset %d", ce.Path, ce.Offset, seg0.Path, fr.Meta.Base)
			}
			if after, _ := listSegments(pdir); !slices.Equal(after, bases) {
				t.Fatalf("segments after recovery %v, want %v kept", after, bases)
			}
			for _, r := range l.Recoveries() {
				if len(r.RemovedSegments) > 0 || r.CutPos >= 0 {
					t.Fatalf("recovery cut or removed data: %+v", r)
				}
			}
			rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
			if err != nil {
				t.Fatal(err)
			}
			lost := int64(0)
			for _, a := range rep.Actions {
				lost += a.To - a.From
			}
			if lost != int64(fr.Meta.Count) {
				t.Fatalf("salvage lost %d offsets, want %d (the damaged frame's): %+v", lost, fr.Meta.Count, rep.Actions)
			}
			pos, err := p.Send(context.Background(), Record{Value: []byte("after salvage")})
			if err != nil || pos.Offset != 200 {
				t.Fatalf("append after salvage: offset %d, %v; want 200", pos.Offset, err)
			}
		})
	}
}

// A segment missing from the middle of the partition is damage after a
// reboot too: its directory entry was synced before anything was appended
// to it, long before the later segments were created.
func TestRecoveryMissingMiddleSegmentAfterReboot(t *testing.T) {
	dir := t.TempDir()
	pdir, bases := rolledPartition(t, dir, Buffered)
	if err := removeSegmentFiles(pdir, bases[1]); err != nil {
		t.Fatal(err)
	}
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p := mustProducer(t, l, "t", nil)
	_, err := p.Send(context.Background(), Record{Value: []byte("after reboot")})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != bases[1] || ce.To != bases[2] || !strings.Contains(ce.Error(), "segment missing") {
		t.Fatalf("append after the reboot: %v, want a *CorruptError for segment %d missing, up to %d", err, bases[1], bases[2])
	}
	after, _ := listSegments(pdir)
	if want := slices.Delete(slices.Clone(bases), 1, 2); !slices.Equal(after, want) {
		t.Fatalf("segments after recovery %v, want %v kept", after, want)
	}
	// A reader that has not seen a writer recover judges it alike.
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	defer c.Close()
	for {
		recs, err := c.TryPoll()
		if errors.As(err, &ce) {
			if ce.Offset != bases[1] {
				t.Fatalf("reader: %v, want the damage at offset %d", err, bases[1])
			}
			return
		}
		if err != nil || len(recs) == 0 {
			t.Fatalf("reader ended with %v before the missing segment", err)
		}
	}
}

// Retention that runs before any writer recovered from a reboot lets
// recovery go first: it must not move a checkpoint of the last boot
// forward as if it had been verified since.
func TestRetentionAfterRebootRecoversFirst(t *testing.T) {
	dir := t.TempDir()
	pdir, bases := rolledPartition(t, dir, Buffered)
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	if err := l.AlterTopic("t", func(c *TopicConfig) { c.RetentionBytes = 2 * minSegmentBytes }); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := listSegments(pdir)
	if len(after) >= len(bases) {
		t.Fatalf("retention removed nothing: %v", after)
	}
	reps := l.Recoveries()
	if len(reps) != 1 || !reps[0].Reboot {
		t.Fatalf("recoveries %+v, want the reboot's, before retention", reps)
	}
	cp, ok := l.topics["t"].parts()[0].shm.checkpoint()
	if !ok || cp.boot != currentBootID || cp.base < after[0] {
		t.Fatalf("checkpoint after retention %+v (ok %v), want one of this boot in a segment left (%v)", cp, ok, after)
	}
	p := mustProducer(t, l, "t", nil)
	if pos, err := p.Send(context.Background(), Record{Value: []byte("x")}); err != nil || pos.Offset != 200 {
		t.Fatalf("append after retention: %d, %v; want offset 200", pos.Offset, err)
	}
}
