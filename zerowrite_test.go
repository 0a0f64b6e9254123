package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestWriteZerosAheadBounds: a Durable writer writes zeros only past the
// frame it is about to write, a chunk at a time, never past its
// extension, and not again while those written reach zeroLead past the
// frame; a large frame writes none, nor a writer in its first extension.
// The file starts full of 0xFF, so every byte written shows.
func TestWriteZerosAheadBounds(t *testing.T) {
	const size = 4 * zeroChunk
	f, err := os.Create(t.TempDir() + "/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xFF}, size), 0); err != nil {
		t.Fatal(err)
	}
	// A writer past its first extension (extendStep grown past extendMin).
	a := &activeSeg{f: f, fd: int(f.Fd()), pos: 1000, extended: zeroChunk + zeroChunk/2, extendStep: 2 * extendMin}
	// check says which bytes are zero: exactly [from, to).
	check := func(step string, from, to int64) {
		t.Helper()
		b := make([]byte, size)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		for i, c := range b {
			if zero := int64(i) >= from && int64(i) < to; zero != (c == 0) {
				t.Fatalf("%s: byte %d is %#x; want zeros exactly in [%d, %d)", step, i, c, from, to)
			}
		}
	}

	// One still in its first extension writes none.
	a.extendStep = extendMin
	a.writeZerosAhead(200, size, false)
	check("first extension", 0, 0)
	a.extendStep = 2 * extendMin

	a.writeZerosAhead(200, size, false)
	check("first frame", 1200, 1200+zeroChunk)
	if a.zeroed != 1200+zeroChunk {
		t.Fatalf("zeroed = %d, want %d", a.zeroed, 1200+zeroChunk)
	}

	// Frames that end more than zeroLead before the written zeros' end
	// write none.
	a.pos = a.zeroed - zeroLead - 300
	a.writeZerosAhead(200, size, false)
	check("frame well inside the written zeros", 1200, 1200+zeroChunk)

	// One that comes within zeroLead of it: the next chunk, cut at the
	// extension's end.
	a.pos = a.zeroed - zeroLead
	a.writeZerosAhead(200, size, false)
	check("frame near their end", 1200, a.extended)
	if a.zeroed != a.extended {
		t.Fatalf("zeroed = %d, want the extension's end %d", a.zeroed, a.extended)
	}

	// A frame past what was written (after the extension grew): zeros
	// from its end, not from the old mark, which the frame overwrites.
	a.extended = size
	a.pos = a.zeroed + 5000
	a.writeZerosAhead(100, size, false)
	from := a.pos + 100
	b := make([]byte, 5100)
	if _, err := f.ReadAt(b, a.pos-5000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, bytes.Repeat([]byte{0xFF}, len(b))) {
		t.Fatal("zeros written before the end of the frame: they would land under it")
	}
	if a.zeroed != from+zeroChunk {
		t.Fatalf("zeroed = %d, want %d", a.zeroed, from+zeroChunk)
	}

	// A large frame leaves the zeros to the fallocation.
	a.pos = a.zeroed - 10
	a.writeZerosAhead(zeroFrameMax+1, size, false)
	if a.zeroed != from+zeroChunk {
		t.Fatalf("a frame over zeroFrameMax wrote zeros: zeroed = %d", a.zeroed)
	}
}

// TestZerosHandedOn: a writer that wrote zeros states those at a
// hand-over, not its whole extension, so that the next holder, which takes
// the stated zeros as written, writes the rest; one that wrote none states
// the extension.
func TestZerosHandedOn(t *testing.T) {
	for _, c := range []struct {
		name                  string
		pos, zeroed, extended int64
		want                  int64
	}{
		{"zeros written ahead", 100, 5000, 9000, 5000},
		{"none written", 100, 0, 9000, 9000},
		{"the frames passed them", 6000, 5000, 9000, 9000},
	} {
		a := &activeSeg{pos: c.pos, zeroed: c.zeroed, extended: c.extended}
		if got := a.zerosHandedOn(); got != c.want {
			t.Errorf("%s: zerosHandedOn = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestWriteZerosFailure: zeros that cannot be written (a full disk) stop
// the writing for the segment after one try, and the appends go on into
// the fallocated zeros, every record kept.
func TestWriteZerosFailure(t *testing.T) {
	tries := 0
	writeZerosFn = func(int, []byte, int64) error {
		tries++
		return errors.New("no space left on device")
	}
	t.Cleanup(func() { writeZerosFn = pwriteFull })
	stretchHold(t)
	l := openTest(t, t.TempDir(), &Options{Durability: Durable, Backend: BackendPwrite})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	// 200 KiB: past the first extension, where zeros are written.
	value := make([]byte, 4<<10)
	for i := range 50 {
		copy(value, fmt.Sprintf("r%d.", i))
		if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	if tries != 1 {
		t.Fatalf("zeros tried %d times, want once for the segment", tries)
	}
	recs := readAll(t, l, "t", 50, &ConsumerOptions{Start: Earliest})
	for i, r := range recs {
		if want := fmt.Sprintf("r%d.", i); len(r.Value) != len(value) || string(r.Value[:len(want)]) != want {
			t.Fatalf("record %d is %q..., want %q", i, r.Value[:min(len(r.Value), 8)], want)
		}
	}
	if rep, err := l.Verify(context.Background(), "t", nil); err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %+v", err, rep.Problems)
	}
}

// BenchmarkDurableBurst: bursts of ten Durable Sends of 100 bytes, 10 ms
// apart, so that the writer lets the lock go (and cuts its zeros) between
// them: what a burst's second Send, the first to extend the segment,
// costs against the later ones (zerowrite.go). One op is one burst.
func BenchmarkDurableBurst(b *testing.B) {
	_, p := benchLog(b, Durable, BackendPwrite)
	value := make([]byte, 100)
	var second, later []time.Duration
	for range b.N {
		for i := range 10 {
			began := time.Now()
			if _, err := p.Send(context.Background(), Record{Value: value}); err != nil {
				b.Fatal(err)
			}
			switch took := time.Since(began); {
			case i == 1:
				second = append(second, took)
			case i > 1:
				later = append(later, took)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds())
	}
	b.ReportMetric(median(second), "second-send-µs")
	b.ReportMetric(median(later), "later-send-µs")
}
