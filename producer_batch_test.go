package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSendBatchContiguous has batch senders and single senders share one
// partition: each batch's records sit at consecutive offsets from the base
// SendBatch returned, in order, with what was sent.
func TestSendBatchContiguous(t *testing.T) {
	for _, d := range []Durability{Buffered, Durable} {
		t.Run(d.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: d})
			mustCreate(t, l, "b", TopicConfig{Partitions: 2})
			p := mustProducer(t, l, "b", &ProducerOptions{Partitioner: ManualPartitioner})
			const senders, batches, size = 4, 20, 7
			bases := make([][]int64, senders)
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range batches {
						recs := make([]Record, size)
						for j := range recs {
							recs[j] = Record{Key: fmt.Appendf(nil, "g%d", g), Value: fmt.Appendf(nil, "%d/%d/%d", g, i, j), Partition: 0}
						}
						base, err := p.SendBatch(context.Background(), 1, recs)
						if err != nil {
							t.Errorf("SendBatch: %v", err)
							return
						}
						bases[g] = append(bases[g], base)
					}
				})
				wg.Go(func() { // a single sender interleaving with the batches
					for i := range batches {
						if _, err := p.Send(context.Background(), Record{Value: fmt.Appendf(nil, "single %d/%d", g, i), Partition: 1}); err != nil {
							t.Errorf("Send: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			total := senders * batches * (size + 1)
			got := readAll(t, l, "b", total, &ConsumerOptions{Partitions: []int{1}})
			byOffset := map[int64]string{}
			for _, r := range got {
				byOffset[r.Offset] = string(r.Value)
			}
			for g, bs := range bases {
				for i, base := range bs {
					for j := range size {
						want := fmt.Sprintf("%d/%d/%d", g, i, j)
						if diff := cmp.Diff(want, byOffset[base+int64(j)]); diff != "" {
							t.Fatalf("batch %d of sender %d, record %d at offset %d (-want +got):\n%s", i, g, j, base+int64(j), diff)
						}
					}
				}
			}
			if info, err := l.DescribeTopic("b"); err != nil || info.Partitions[0].NextOffset != 0 {
				t.Fatalf("partition 0 holds records (Partition fields must be ignored): %+v, %v", info, err)
			}
		})
	}
}

func TestSendBatchRejects(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "r", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "r", nil)
	ctx := context.Background()
	// 33 records of almost 1 MiB, each within MaxRecordBytes, are more
	// than one frame holds (they share one value buffer).
	value := make([]byte, 1<<20-16)
	big := make([]Record, MaxFrameBytes/(1<<20)+1)
	for i := range big {
		big[i] = Record{Value: value}
	}
	tests := []struct {
		name      string
		partition int
		recs      []Record
		want      error
	}{
		{"empty", 0, nil, ErrInvalidArgument},
		{"bad partition", 1, seqRecords(0, 1), ErrInvalidArgument},
		{"negative partition", -1, seqRecords(0, 1), ErrInvalidArgument},
		{"record too large", 0, []Record{{Value: make([]byte, 2<<20)}}, ErrTooLarge},
		{"more than one frame", 0, big, ErrTooLarge},
		{"too many headers", 0, []Record{{Headers: make([]Header, 5000)}}, ErrTooLarge},
	}
	for _, tt := range tests {
		if _, err := p.SendBatch(ctx, tt.partition, tt.recs); !errors.Is(err, tt.want) {
			t.Errorf("%s: SendBatch = %v, want %v", tt.name, err, tt.want)
		}
	}
	// Nothing rejected was stored: the next record gets offset 0.
	base, err := p.SendBatch(ctx, 0, big[:4])
	if err != nil || base != 0 {
		t.Fatalf("SendBatch after rejections = %d, %v; want base 0", base, err)
	}
	p.Close()
	if _, err := p.SendBatch(ctx, 0, seqRecords(0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendBatch after Close = %v, want ErrClosed", err)
	}
}

// TestSendBatchIsOneFrame: a batch larger than MaxBatchBytes and than half
// a segment (which bound the frames that separately sent records are
// gathered into) is stored whole, as one frame, as long as the frame cap
// holds it.
func TestSendBatchIsOneFrame(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, MaxBatchBytes: 4 << 10})
	mustCreate(t, l, "one", TopicConfig{Partitions: 1, SegmentBytes: 64 << 10})
	p := mustProducer(t, l, "one", nil)
	recs := make([]Record, 200) // about 200 KiB: 50 × MaxBatchBytes, 3 segments
	for i := range recs {
		recs[i] = Record{Value: fmt.Appendf(make([]byte, 0, 1000), "%01000d", i)}
	}
	before := l.Stats().FramesWritten
	base, err := p.SendBatch(context.Background(), 0, recs)
	if err != nil || base != 0 {
		t.Fatalf("SendBatch = %d, %v; want base 0", base, err)
	}
	if frames := l.Stats().FramesWritten - before; frames != 1 {
		t.Errorf("the batch took %d frames, want 1", frames)
	}
	got := readAll(t, l, "one", len(recs), nil)
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != string(recs[i].Value) {
			t.Fatalf("record %d: offset %d, value %.20q…", i, r.Offset, r.Value)
		}
	}
}

// TestSendBatchCallTime: the records of a SendBatch or SendBatchAsync
// without a Time all get the moment of the call, one moment, between the
// clock's readings before and after it; a record with a Time keeps it.
func TestSendBatchCallTime(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "b", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "b", nil)
	ctx := context.Background()
	fixed := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	recs := []Record{{Value: []byte("a")}, {Value: []byte("b"), Time: fixed}, {Value: []byte("c")}, {Value: []byte("d")}}
	var moments [2][2]time.Time // before and after each call
	moments[0][0] = time.Now()
	if _, err := p.SendBatch(ctx, 0, recs); err != nil {
		t.Fatal(err)
	}
	moments[0][1] = time.Now()
	moments[1][0] = time.Now()
	p.SendBatchAsync(0, recs, nil)
	moments[1][1] = time.Now()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, "b", 2*len(recs), &ConsumerOptions{Start: Earliest})
	for call := range 2 {
		batch := got[call*len(recs) : (call+1)*len(recs)]
		if !batch[1].Time.Equal(fixed) {
			t.Errorf("call %d: the record timed %v has %v", call, fixed, batch[1].Time)
		}
		moment := batch[0].Time
		if moment.Before(moments[call][0].Truncate(0)) || moment.After(moments[call][1].Truncate(0)) {
			t.Errorf("call %d: the records without a Time have %v, outside the call (%v to %v)", call, moment, moments[call][0], moments[call][1])
		}
		for _, i := range []int{2, 3} {
			if !batch[i].Time.Equal(moment) {
				t.Errorf("call %d: record %d has %v, record 0 %v: not one moment", call, i, batch[i].Time, moment)
			}
		}
	}
}
