package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// delrecSetup makes topic "d" of one partition holding n records of
// 2000 bytes in segments of 64 KiB (about 30 records each), with value
// "v<offset>".
func delrecSetup(t *testing.T, dir string, n int) *Log {
	t.Helper()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "d", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 1024})
	sendDelrec(t, l, 0, n)
	return l
}

// sendDelrec sends records from..to-1 of delrecSetup's topic.
func sendDelrec(t *testing.T, l *Log, from, to int) {
	t.Helper()
	p := mustProducer(t, l, "d", nil)
	defer p.Close()
	pad := strings.Repeat("x", 2000)
	for i := from; i < to; i++ {
		pos, err := p.Send(context.Background(), Record{Value: []byte(fmt.Sprintf("v%d%s", i, pad))})
		if err != nil || pos.Offset != int64(i) {
			t.Fatalf("send %d: %+v, %v", i, pos, err)
		}
	}
}

// firstOffset reads the first record a new consumer of "d" gets with opts.
func firstOffset(t *testing.T, l *Log, opts *ConsumerOptions) int64 {
	t.Helper()
	recs := readAll(t, l, "d", 1, opts)
	if want := fmt.Sprintf("v%d", recs[0].Offset); !strings.HasPrefix(string(recs[0].Value), want) {
		t.Fatalf("record at %d holds %.10q", recs[0].Offset, recs[0].Value)
	}
	return recs[0].Offset
}

func describeStart(t *testing.T, l *Log) (start, next int64) {
	t.Helper()
	start, next, err := l.PartitionOffsets("d", 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.DescribeTopic("d")
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Partitions[0]; p.StartOffset != start || p.NextOffset != next {
		t.Fatalf("DescribeTopic %+v, PartitionOffsets [%d, %d)", p, start, next)
	}
	return start, next
}

// TestDeleteRecords: records below the offset given are gone for every
// reader, the start never moves back, an offset past the end is refused,
// and the segments wholly below the start are removed in the call.
func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	ctx := context.Background()
	before, _ := listSegments(filepath.Join(dir, "topics", "d", "0"))
	if len(before) < 3 {
		t.Fatalf("segments %v: want at least 3", before)
	}
	start, err := l.DeleteRecords(ctx, "d", 0, 50)
	if err != nil || start != 50 {
		t.Fatalf("DeleteRecords(50) = %d, %v", start, err)
	}
	if s, n := describeStart(t, l); s != 50 || n != 100 {
		t.Errorf("offsets [%d, %d), want [50, 100)", s, n)
	}
	if got := firstOffset(t, l, nil); got != 50 {
		t.Errorf("Earliest consumer starts at %d, want 50", got)
	}
	if rec, ok, err := l.FirstRecord("d", 0, Earliest); err != nil || !ok || rec.Offset != 50 {
		t.Errorf("FirstRecord(Earliest) = %d, %v, %v", rec.Offset, ok, err)
	}
	if rec, ok, err := l.FirstRecord("d", 0, AtTime(time.Unix(0, 0))); err != nil || !ok || rec.Offset != 50 {
		t.Errorf("FirstRecord(AtTime(1970)) = %d, %v, %v; want the start, 50", rec.Offset, ok, err)
	}
	if rec, ok, err := l.FirstRecord("d", 0, AtOffset(10)); err != nil || ok {
		t.Errorf("FirstRecord(AtOffset(10)) = %d, %v, %v; want none", rec.Offset, ok, err)
	}
	if got := firstOffset(t, l, &ConsumerOptions{Start: AtOffset(10), OutOfRange: OutOfRangeEarliest}); got != 50 {
		t.Errorf("AtOffset(10) resetting to earliest starts at %d, want 50", got)
	}
	if _, err := l.Consumer("d", &ConsumerOptions{Start: AtOffset(10)}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("AtOffset(10) consumer: %v, want ErrOutOfRange", err)
	}
	after, _ := listSegments(filepath.Join(dir, "topics", "d", "0"))
	if after[0] > 50 || len(after) > 1 && after[1] <= 50 {
		t.Errorf("segments after: %v (before %v): want the first to hold offset 50", after, before)
	}
	if len(after) >= len(before) {
		t.Errorf("segments after: %v, before %v: none removed", after, before)
	}

	if start, err := l.DeleteRecords(ctx, "d", 0, 20); err != nil || start != 50 {
		t.Errorf("DeleteRecords(20) = %d, %v; want 50 (never back)", start, err)
	}
	var oe *OutOfRangeError
	if _, err := l.DeleteRecords(ctx, "d", 0, 101); !errors.As(err, &oe) || oe.Start != 50 || oe.End != 100 {
		t.Errorf("DeleteRecords(101) = %v, want an OutOfRangeError [50, 100)", err)
	}
	if _, err := l.DeleteRecords(ctx, "d", 0, -2); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DeleteRecords(-2) = %v, want ErrInvalidArgument", err)
	}
	if _, err := l.DeleteRecords(ctx, "d", 1, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DeleteRecords of partition 1 = %v, want ErrInvalidArgument", err)
	}
	if _, err := l.DeleteRecords(ctx, "nope", 0, 0); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DeleteRecords of a missing topic = %v, want ErrTopicNotFound", err)
	}
	if start, err := l.DeleteRecords(ctx, "d", 0, DeleteToEnd); err != nil || start != 100 {
		t.Errorf("DeleteRecords(DeleteToEnd) = %d, %v", start, err)
	}
	if s, n := describeStart(t, l); s != 100 || n != 100 {
		t.Errorf("offsets [%d, %d), want [100, 100)", s, n)
	}
	sendDelrec(t, l, 100, 101)
	if got := firstOffset(t, l, nil); got != 100 {
		t.Errorf("Earliest consumer after DeleteToEnd starts at %d, want 100", got)
	}
	rep, err := l.Verify(ctx, "", nil)
	if err != nil || !rep.OK() || rep.Partitions[0].StartOffset != 100 {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

// TestDeleteRecordsGroupCommitBelow: a group whose commit is below the
// new start goes as its OutOfRange policy says: the default fails, as for
// records retention removed; OutOfRangeEarliest starts at the start.
// Its lag counts from the start.
func TestDeleteRecordsGroupCommitBelow(t *testing.T) {
	l := delrecSetup(t, t.TempDir(), 100)
	ctx := context.Background()
	c := mustConsumer(t, l, "d", &ConsumerOptions{Group: "g", MaxPollRecords: 10})
	pollUntil(t, c, 10, patience)
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := l.DeleteRecords(ctx, "d", 0, 60); err != nil {
		t.Fatal(err)
	}
	desc, err := l.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	if p := desc.Topics[0].Partitions[0]; p.Committed != 10 || p.Lag != 40 {
		t.Errorf("DescribeGroup: %+v, want committed 10, lag 40 (from the start 60 to the end 100)", p)
	}
	failing := mustConsumer(t, l, "d", &ConsumerOptions{Group: "g"})
	pctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	if recs, err := failing.Poll(pctx); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("member with the default policy: %d records, %v; want ErrOutOfRange", len(recs), err)
	}
	failing.Close()
	if got := firstOffset(t, l, &ConsumerOptions{Group: "g", OutOfRange: OutOfRangeEarliest}); got != 60 {
		t.Errorf("member resetting to earliest starts at %d, want 60", got)
	}
}

// TestDeleteRecordsOvertakesReader: a consumer in the middle of the
// partition when DeleteRecords moves the start past it goes on from the
// start (OutOfRangeEarliest) or fails with ErrOutOfRange, at its next
// read.
func TestDeleteRecordsOvertakesReader(t *testing.T) {
	for _, policy := range []OutOfRange{OutOfRangeEarliest, OutOfRangeFail} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			dir := t.TempDir()
			l := delrecSetup(t, dir, 100)
			c := mustConsumer(t, l, "d", &ConsumerOptions{MaxPollRecords: 5, OutOfRange: policy})
			if recs := pollUntil(t, c, 5, patience); recs[4].Offset != 4 {
				t.Fatalf("read up to %d", recs[4].Offset)
			}
			other := openTest(t, dir, nil) // another Log: nothing shared but the files
			if _, err := other.DeleteRecords(context.Background(), "d", 0, 50); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			recs, err := c.Poll(ctx)
			switch policy {
			case OutOfRangeEarliest:
				if err != nil || len(recs) == 0 || recs[0].Offset != 50 {
					t.Errorf("next poll: %d records from %v, %v; want from 50", len(recs), firstOf(recs), err)
				}
			default:
				if !errors.Is(err, ErrOutOfRange) {
					t.Errorf("next poll: %d records from %v, %v; want ErrOutOfRange", len(recs), firstOf(recs), err)
				}
			}
		})
	}
}

func firstOf(recs []Record) int64 {
	if len(recs) == 0 {
		return -1
	}
	return recs[0].Offset
}

// TestLogStartFileDamaged: a log-start file torn or overwritten is a
// *CorruptError naming it and the byte, for describe, consumers, Verify
// and DeleteRecords, never a start taken silently.
func TestLogStartFileDamaged(t *testing.T) {
	good := encodeLogStart(40)
	flipped := append([]byte{}, good...)
	flipped[9] ^= 1
	cases := []struct {
		name string
		data []byte
		pos  int64
	}{
		{"empty", nil, 0},
		{"torn", good[:20], 20},
		{"long", append(append([]byte{}, good...), 0), logStartSize},
		{"magic", append([]byte("xxxxxxxx"), good[8:]...), 0},
		{"flipped", flipped, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := delrecSetup(t, dir, 50)
			path := filepath.Join(dir, "topics", "d", "0", logStartFileName)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path || ce.Pos != tc.pos {
					t.Errorf("%s: %v; want a CorruptError at %s byte %d", what, err, path, tc.pos)
				}
			}
			_, _, err := l.PartitionOffsets("d", 0)
			check("PartitionOffsets", err)
			_, err = l.DescribeTopic("d")
			check("DescribeTopic", err)
			_, err = l.Consumer("d", nil)
			check("Consumer", err)
			_, err = l.DeleteRecords(context.Background(), "d", 0, 10)
			check("DeleteRecords", err)
			rep, err := l.Verify(context.Background(), "", nil)
			if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Path != path || rep.Problems[0].Pos != tc.pos {
				t.Errorf("Verify: %+v, %v; want one problem at %s byte %d", rep.Problems, err, path, tc.pos)
			}
		})
	}
}

// TestDeleteRecordsBackup: a backup holds the records from the start on
// and records the start; Verify of the copy is clean.
func TestDeleteRecordsBackup(t *testing.T) {
	l := delrecSetup(t, t.TempDir(), 100)
	if _, err := l.DeleteRecords(context.Background(), "d", 0, 45); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pb := rep.Partitions[0]; pb.StartOffset != 45 || pb.NextOffset != 100 {
		t.Errorf("backup of the partition: %+v, want [45, 100)", pb)
	}
	copyLog := openTest(t, dest, nil)
	if s, n := describeStart(t, copyLog); s != 45 || n != 100 {
		t.Errorf("the copy's offsets [%d, %d), want [45, 100)", s, n)
	}
	if got := firstOffset(t, copyLog, nil); got != 45 {
		t.Errorf("the copy's Earliest consumer starts at %d, want 45", got)
	}
	if v, err := copyLog.Verify(context.Background(), "", nil); err != nil || !v.OK() || v.Partitions[0].StartOffset != 45 {
		t.Errorf("Verify of the copy: %+v, %v", v, err)
	}
}
