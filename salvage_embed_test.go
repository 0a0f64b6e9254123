package runnel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-log/runnel/internal/frame"
)

// A record whose value holds a runnel frame (a segment file stored as a
// record, say: `runnel produce -file`), on an 8-byte boundary of the
// segment, and damage to that record's frame: the embedded frame looks
// like committed data resuming, but its chain ends inside the real data,
// whose frames go back to lower offsets. Readers must report only the
// damaged frame's offset lost, salvage must make a gap of it alone (cut
// nothing, serve no record that was never written), and the records after
// it must stay readable.
func TestSalvagePassesOverEmbeddedFrame(t *testing.T) {
	dir, segPath, f1pos := embeddedFrameLog(t, "r2", "r3")
	flipByte(t, segPath, f1pos+8) // a bit of frame 1's checksum field

	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	recs, err := c.TryPoll()
	if err == nil && len(recs) == 1 {
		recs, err = c.TryPoll()
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 1 || ce.To != 2 {
		t.Fatalf("reader at the damage: %d records, %v; want a *CorruptError for offset 1 alone", len(recs), err)
	}
	c.Close()

	rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 1 || rep.Actions[0].From != 1 || rep.Actions[0].To != 2 || rep.Actions[0].Pos != f1pos {
		t.Fatalf("salvage actions %+v, want one gap for offset 1 at byte %d", rep.Actions, f1pos)
	}
	c2 := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	defer c2.Close()
	var got []string
	var offs []int64
	for {
		recs, err := c2.TryPoll()
		if err != nil {
			t.Fatalf("after salvage: %v", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got, offs = append(got, string(r.Value)), append(offs, r.Offset)
		}
	}
	if len(got) != 3 || got[0] != "r0" || got[1] != "r2" || got[2] != "r3" || offs[1] != 2 || offs[2] != 3 {
		t.Fatalf("after salvage read %q at offsets %v, want r0, r2, r3 at 0, 2, 3", got, offs)
	}
	vr, err := l.Verify(context.Background(), "t", nil)
	if err != nil || !vr.OK() {
		t.Fatalf("Verify after salvage: %v %+v", err, vr.Problems)
	}
}

// embeddedFrameLog writes records r0, a value holding a committed runnel
// frame of offset 1000 on an 8-byte boundary of the segment, and the
// values after, to topic t of a new Log, closes it, and returns its
// directory, the segment's path and the position of the frame of offset
// 1 (the one with the embedded frame).
func embeddedFrameLog(t *testing.T, after ...string) (dir, segPath string, f1pos int64) {
	t.Helper()
	var b frame.Builder
	b.Add(1, nil, []byte("NEVER WRITTEN AS A RECORD"), nil)
	emb := b.Finish(1000)
	emb[frame.OffState] = frame.StateCommitted
	for k := 0; k < frame.Align; k++ {
		d := t.TempDir()
		l := openTest(t, d, &Options{Durability: Buffered, RetentionInterval: -1})
		mustCreate(t, l, "t", TopicConfig{Partitions: 1})
		p := mustProducer(t, l, "t", nil)
		values := [][]byte{[]byte("r0"), append(append(make([]byte, k), emb...), make([]byte, 16)...)}
		for _, v := range after {
			values = append(values, []byte(v))
		}
		for _, v := range values {
			if _, err := p.Send(context.Background(), Record{Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		path := segmentPath(filepath.Join(d, "topics", "t", "0"), 0, logExt)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, emb); i > 0 && i%frame.Align == 0 {
			return d, path, parseSegment(t, path, 0).Frames[1].Pos
		}
	}
	t.Fatal("test setup: the embedded frame never landed on an 8-byte boundary")
	return "", "", 0
}

// The same with the damaged frame the last one: nothing real follows the
// embedded frame, which still lies inside the damaged frame's extent (its
// header reads right). It is not where data resumes: the damaged frame,
// known committed (Close synced it), is lost alone, and offset 1000 is
// never served.
func TestSalvageEmbeddedFrameInLastFrame(t *testing.T) {
	dir, segPath, f1pos := embeddedFrameLog(t)
	flipByte(t, segPath, f1pos+8)
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	recs, err := c.TryPoll()
	if err == nil && len(recs) == 1 {
		recs, err = c.TryPoll()
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 1 || ce.To != 2 {
		t.Fatalf("reader at the damage: %d records, %v; want a *CorruptError for offset 1 alone", len(recs), err)
	}
	c.Close()
	rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	lost := int64(0)
	for _, a := range rep.Actions {
		lost += a.To - a.From
		if a.To > 2 {
			t.Errorf("salvage action %+v marks offsets past 1", a)
		}
	}
	if lost != 1 {
		t.Fatalf("salvage actions %+v, want offset 1 alone lost", rep.Actions)
	}
	p := mustProducer(t, l, "t", nil)
	if pos, err := p.Send(context.Background(), Record{Value: []byte("next")}); err != nil || pos.Offset != 2 {
		t.Fatalf("append after salvage at %d, %v; want offset 2", pos.Offset, err)
	}
	if n := readAllClean(t, l); n != 2 {
		t.Fatalf("after salvage read %d records, want r0 and the new one", n)
	}
}

// committedFrame returns a committed records frame of base holding value.
func committedFrame(base int64, value string) []byte {
	var b frame.Builder
	b.Add(1, nil, []byte(value), nil)
	f := bytes.Clone(b.Finish(base))
	f[frame.OffState] = frame.StateCommitted
	return f
}

// Good committed frames after a break that cannot be where the data
// resumes (the only one at a later offset is followed by frames that go
// back to lower ones): the break is damage all the same, never a torn
// tail. The writer cuts nothing and refuses appends; salvage changes
// nothing and reports the damage as remaining.
func TestUnsureResumeIsNeverCut(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "topics", "t", "0")
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	sendSeq(t, mustProducer(t, l, "t", nil), 0, seqRecords(0, 2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := segmentPath(pdir, 0, logExt)
	f1 := parseSegment(t, path, 0).Frames[1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, committedFrame(10, "ten")...)
	data = append(data, committedFrame(0, "zero again")...)
	copy(data[f1.Pos:], make([]byte, 4)) // frame 1's length field zeroed
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing says frame 1 was committed: without the frames after it,
	// it would be a dead writer's torn tail.
	diedAt(t, pdir, 0, f1.Pos, 1)

	l = openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	_, err = mustProducer(t, l, "t", nil).Send(context.Background(), Record{Value: []byte("x")})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 1 {
		t.Fatalf("append: %v, want a *CorruptError at offset 1", err)
	}
	rep, err := l.Repair(context.Background(), "t", &RepairOptions{Salvage: true})
	if err != nil || len(rep.Actions) != 0 || len(rep.Remaining) != 1 || !strings.Contains(rep.Remaining[0].Detail, "cannot be told") {
		t.Fatalf("salvage: %+v, %v; want no action, and the damage remaining", rep, err)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, data) {
		t.Fatalf("the segment changed (%d bytes, was %d): %v", len(after), len(data), err)
	}
}

// readAllClean reads topic t of l from the start and fails the test at
// any error; then Verify must find nothing wrong.
func readAllClean(t *testing.T, l *Log) int {
	t.Helper()
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Earliest})
	defer c.Close()
	total := 0
	for {
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatalf("after %d records: %v", total, err)
		}
		if len(recs) == 0 {
			break
		}
		total += len(recs)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %v", err, rep.Problems)
	}
	return total
}
