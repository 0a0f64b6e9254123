package runnel

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFirstRecord: FirstRecord finds a partition's first record from each
// kind of start, answers "none" past the records and outside the extent,
// and hands back bytes a later read does not change.
func TestFirstRecord(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "f", TopicConfig{Partitions: 2, SegmentBytes: minSegmentBytes, RetentionBytes: 3 * minSegmentBytes})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	const n = 2000
	retProduce(t, l, "f", 0, n, 200, at) // partition 0, several segments
	if err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	start, end, err := l.PartitionOffsets("f", 0)
	if err != nil || start == 0 || end != n {
		t.Fatalf("PartitionOffsets = %d, %d, %v; want retention to have moved the start, end %d", start, end, err, n)
	}

	for _, c := range []struct {
		name string
		from StartPosition
		want int64 // -1: none
	}{
		{"time before every record", AtTime(base.Add(-time.Hour)), start},
		{"time of a record", AtTime(at(1500)), 1500},
		{"time between records", AtTime(at(1500).Add(time.Millisecond)), 1501},
		{"time of the newest", AtTime(at(n - 1)), n - 1},
		{"time after every record", AtTime(at(n)), -1},
		{"offset", AtOffset(1700), 1700},
		{"the end", AtOffset(end), -1},
		{"past the end", AtOffset(end + 10), -1},
		{"below the start", AtOffset(start - 1), -1},
		{"earliest", Earliest, start},
		{"latest", Latest, -1},
	} {
		rec, ok, err := l.FirstRecord("f", 0, c.from)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want < 0 && ok:
			t.Errorf("%s: got offset %d, want none", c.name, rec.Offset)
		case c.want >= 0 && (!ok || rec.Offset != c.want || !rec.Time.Equal(at(int(c.want))) || string(rec.Value) != string(payload(int(c.want), 200))):
			t.Errorf("%s: got %v, offset %d, time %v; want offset %d, time %v, its value", c.name, ok, rec.Offset, rec.Time, c.want, at(int(c.want)))
		}
	}
	if _, ok, err := l.FirstRecord("f", 1, Earliest); err != nil || ok {
		t.Errorf("an empty partition: %v, %v; want none", ok, err)
	}

	p := mustProducer(t, l, "f", &ProducerOptions{Partitioner: ManualPartitioner})
	if _, err := p.Send(context.Background(), Record{Partition: 1, Key: []byte{}, Value: []byte("first"), Headers: []Header{{Key: "h", Value: []byte("v")}, {Key: "n"}}}); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := l.FirstRecord("f", 1, Earliest)
	if err != nil || !ok {
		t.Fatalf("FirstRecord after a send: %v, %v", ok, err)
	}
	if rec.Key == nil || len(rec.Key) != 0 || string(rec.Value) != "first" || len(rec.Headers) != 2 ||
		string(rec.Headers[0].Value) != "v" || rec.Headers[1].Value != nil {
		t.Errorf("the record handed back: key %q (nil %v), value %q, headers %+v; want an empty key, first, h=v and n without a value",
			rec.Key, rec.Key == nil, rec.Value, rec.Headers)
	}

	if _, _, err := l.FirstRecord("nope", 0, Earliest); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("a topic there is not: %v, want ErrTopicNotFound", err)
	}
	if _, _, err := l.FirstRecord("f", 2, Earliest); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a partition the topic does not have: %v, want ErrInvalidArgument", err)
	}
}
