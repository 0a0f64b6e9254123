package runnel

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLoneSenderLeads: a sender alone on a partition writes its own
// frames (Send and SendBatch alike): one frame per call, and the
// partition's writer goroutine is never started while nothing else in the
// Log holds the partition (the first checkpoint and the kept lock's
// watcher do, for a moment: the test waits for the one and stills the
// other).
func TestLoneSenderLeads(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			// The watcher of the kept writer lock takes p.wmu each
			// holdIdle, and a lone sender that finds p.wmu taken hands
			// its batch to the writer goroutine (lead): let it sleep.
			old := holdIdle
			holdIdle = time.Hour
			t.Cleanup(func() { holdIdle = old }) // after the Log's cleanup closes it
			l := openTest(t, t.TempDir(), &Options{Durability: d})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1})
			p := mustProducer(t, l, "t", nil)
			ctx := context.Background()
			tp, _ := l.topic("t")
			part := tp.parts[0]
			for i := range 20 {
				if i == 1 {
					waitFirstCheckpoint(t, part)
				}
				pos, err := p.Send(ctx, Record{Value: fmt.Appendf(nil, "s%d", i)})
				if err != nil || pos.Offset != int64(i) {
					t.Fatalf("Send %d: %+v, %v", i, pos, err)
				}
			}
			for i := range 5 {
				recs := []Record{{Value: fmt.Appendf(nil, "b%d.0", i)}, {Value: fmt.Appendf(nil, "b%d.1", i)}, {Value: fmt.Appendf(nil, "b%d.2", i)}}
				base, err := p.SendBatch(ctx, 0, recs)
				if want := int64(20 + 3*i); err != nil || base != want {
					t.Fatalf("SendBatch %d: base %d, %v; want %d", i, base, err, want)
				}
			}
			if st := l.Stats(); st.FramesWritten != 25 || st.RecordsWritten != 35 {
				t.Fatalf("Stats %+v: want 25 frames of 35 records", st)
			}
			part.mu.Lock()
			started := part.started
			part.mu.Unlock()
			if started {
				t.Fatal("a lone sender's records went through the writer goroutine")
			}
			if d == Durable && l.Stats().Syncs < 25 {
				t.Fatalf("Stats %+v: a lone durable sender needs an fdatasync per frame", l.Stats())
			}
			got := readAll(t, l, "t", 35, nil)
			if string(got[19].Value) != "s19" || string(got[34].Value) != "b4.2" {
				t.Fatalf("records 19 and 34: %q, %q", got[19].Value, got[34].Value)
			}
		})
	}
}

// waitFirstCheckpoint waits until the checkpoint that a partition's first
// append asks for is recorded and its writer lock released. That
// checkpoint holds the writer lock for a moment, and a lone sender that
// finds the lock taken hands its batch to the writer goroutine (lead).
func waitFirstCheckpoint(t *testing.T, part *partition) {
	t.Helper()
	waitFor(t, time.Minute, "the first checkpoint", func() bool {
		part.wmu.Lock()
		defer part.wmu.Unlock()
		_, ok := part.shm.checkpoint()
		return ok
	})
	// The checkpoint is recorded under the writer lock: taking the lock
	// waits for the checkpoint to let go of it.
	unlock, err := part.lockForMaintenance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
