package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Zeros ahead of the tail (prealloc.go): a lone sender keeping the writer
// lock extends the segment with zeros ahead of its tail, which every
// reader takes as the end of the data (FORMAT.md, Zeros ahead of the
// tail). In Buffered mode it copies frames through the segment's mapping
// into them (commitmap_linux.go); in Durable mode it pwrites them there,
// inside the file's size. Each test runs in both modes.

// zeroModes are the durability modes that extend the segment with zeros.
var zeroModes = []Durability{Buffered, Durable}

// mapWriteMode is the durability mode a child process uses.
func mapWriteMode() Durability {
	switch os.Getenv("RUNNEL_MW_MODE") {
	case Durable.String():
		return Durable
	case Periodic.String():
		return Periodic
	}
	return Buffered
}

func init() {
	childMains["mapwrite-reader"] = mapWriteReaderMain
	childMains["mapwrite-killed"] = mapWriteKilledMain
}

const mapWriteTopic = "mw"

func mapWriteValue(i int) []byte { return fmt.Appendf(nil, "map-written record %d", i) }

// mapWriteSend sends n records one Send at a time, as a lone sender.
func mapWriteSend(l *Log, n int) error { return mapWriteSendRange(l, 0, n) }

// mapWriteSendRange sends records from..to-1 one Send at a time, each of
// which must get its number as its offset.
func mapWriteSendRange(l *Log, from, to int) error {
	p, err := l.Producer(mapWriteTopic, nil)
	if err != nil {
		return err
	}
	for i := from; i < to; i++ {
		pos, err := p.Send(context.Background(), Record{Value: mapWriteValue(i)})
		if err != nil {
			return err
		}
		if pos.Offset != int64(i) {
			return fmt.Errorf("record %d got offset %d", i, pos.Offset)
		}
	}
	return nil
}

// mapWriteCheck reads the topic from the start and checks it holds exactly
// the n records mapWriteSend sent.
func mapWriteCheck(l *Log, n int) error {
	c, err := l.Consumer(mapWriteTopic, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	got := 0
	for {
		recs, err := c.TryPoll()
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Offset != int64(got) || string(r.Value) != string(mapWriteValue(got)) {
				return fmt.Errorf("record at offset %d is %q, want offset %d %q", r.Offset, r.Value, got, mapWriteValue(got))
			}
			got++
		}
	}
	if got != n {
		return fmt.Errorf("read %d records, want %d", got, n)
	}
	rep, err := l.Verify(context.Background(), mapWriteTopic, nil)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("verify: %+v", rep.Problems)
	}
	return nil
}

// mapWriteReaderMain reads and verifies the log in RUNNEL_MW_DIR, which
// must hold RUNNEL_MW_N records, while the parent's writer holds the lock.
func mapWriteReaderMain() int {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_MW_N"))
	l, err := Open(os.Getenv("RUNNEL_MW_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("mapwrite reader", err)
	}
	defer l.Close()
	if err := mapWriteCheck(l, n); err != nil {
		return mpFail("mapwrite reader", err)
	}
	return 0
}

// mapWriteKilledMain sends RUNNEL_MW_N records through the mapping and
// SIGKILLs itself holding the writer lock, leaving its zeros (in the mode
// RUNNEL_MW_MODE names).
func mapWriteKilledMain() int {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_MW_N"))
	holdIdle = time.Hour
	l, err := Open(os.Getenv("RUNNEL_MW_DIR"), &Options{Durability: mapWriteMode(), Backend: BackendPwrite})
	if err != nil {
		return mpFail("mapwrite killed", err)
	}
	if err := mapWriteSend(l, n); err != nil {
		return mpFail("mapwrite killed", err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// mapWriteLog makes a log with the one-partition topic.
func mapWriteLog(t *testing.T, dir string, mode Durability) *Log {
	t.Helper()
	l := openTest(t, dir, &Options{Durability: mode, Backend: BackendPwrite})
	if err := l.CreateTopic(mapWriteTopic, TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	return l
}

// dataEnd returns where the frames of the segment at path end, and the
// file's size.
func dataEnd(t *testing.T, path string) (end, size int64) {
	t.Helper()
	for _, f := range segmentFrames(t, path) {
		end = f.pos + f.m.Size()
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return end, st.Size()
}

// TestMapWriteReadByOtherProcess: records a lone sender wrote through the
// mapping, with the zeros ahead of its tail still there, are what another
// process reads and verifies; when the writer lets the lock go, the zeros
// are cut.
func TestMapWriteReadByOtherProcess(t *testing.T) {
	for _, mode := range zeroModes {
		t.Run(mode.String(), func(t *testing.T) {
			idle := holdIdle
			holdIdle = time.Hour // keep the lock, and the zeros, while the child reads
			t.Cleanup(func() { holdIdle = idle })
			dir := t.TempDir()
			l := mapWriteLog(t, dir, mode)
			const n = 3000
			if err := mapWriteSend(l, n); err != nil {
				t.Fatal(err)
			}
			seg := segmentPath(filepath.Join(dir, "topics", mapWriteTopic, "0"), 0, logExt)
			end, size := dataEnd(t, seg)
			if size <= end {
				t.Fatalf("test setup: the segment is %d bytes, its data %d: no zeros ahead of the tail (frames were not written through the mapping)", size, end)
			}
			// The zeros are not data: PartitionInfo.Bytes (and Stats)
			// count the frames only.
			if info, err := l.DescribeTopic(mapWriteTopic); err != nil || info.Partitions[0].Bytes != end {
				t.Fatalf("DescribeTopic with zeros ahead of the tail: %+v, %v; want %d bytes", info.Partitions, err, end)
			}
			cmd := mpChild("mapwrite-reader", "RUNNEL_MW_DIR="+dir, "RUNNEL_MW_N="+strconv.Itoa(n))
			if err := cmd.Run(); err != nil {
				t.Fatalf("reader process: %v", err)
			}
			if err := mapWriteCheck(l, n); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if end2, size := dataEnd(t, seg); size != end2 || end2 != end {
				t.Fatalf("after Close the segment is %d bytes, its data %d (was %d): the zeros were not cut", size, end2, end)
			}
			if got := verifyPartition(t, filepath.Dir(seg)); got != n {
				t.Fatalf("verify counts %d records, want %d", got, n)
			}
		})
	}
}

// TestMapWriteKilled: a writer SIGKILLed while it writes through the
// mapping leaves zeros ahead of its tail. Readers and Verify take them as
// the end of the data; the next writer cuts them (no repair counted) and
// appends after the last record.
func TestMapWriteKilled(t *testing.T) {
	for _, mode := range zeroModes {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := mapWriteLog(t, dir, mode)
			l.Close()
			const n = 2000
			cmd := mpChild("mapwrite-killed", "RUNNEL_MW_DIR="+dir, "RUNNEL_MW_N="+strconv.Itoa(n), "RUNNEL_MW_MODE="+mode.String())
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the writer process ended by itself (%v) instead of by SIGKILL", err)
			}
			pdir := filepath.Join(dir, "topics", mapWriteTopic, "0")
			seg := segmentPath(pdir, 0, logExt)
			end, size := dataEnd(t, seg)
			if size <= end {
				t.Fatalf("test setup: the segment is %d bytes, its data %d: the writer left no zeros", size, end)
			}
			if got := verifyPartition(t, pdir); got != n {
				t.Fatalf("verify counts %d records, want %d", got, n)
			}
			l = openTest(t, dir, &Options{Durability: mode, Backend: BackendPwrite})
			if err := mapWriteCheck(l, n); err != nil {
				t.Fatal(err)
			}
			p, _ := l.Producer(mapWriteTopic, nil)
			pos, err := p.Send(context.Background(), Record{Value: mapWriteValue(n)})
			if err != nil || pos.Offset != n {
				t.Fatalf("Send after the kill: offset %d, %v; want %d", pos.Offset, err, n)
			}
			if s := l.Stats(); s.Repairs != 0 {
				t.Errorf("cutting the zeros counted %d repairs", s.Repairs)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if end2, size := dataEnd(t, seg); size != end2 || end2 <= end {
				t.Fatalf("after Close the segment is %d bytes, its data %d (%d before the send)", size, end2, end)
			}
			if got := verifyPartition(t, pdir); got != n+1 {
				t.Fatalf("verify counts %d records, want %d", got, n+1)
			}
		})
	}
}

// TestMapWriteDiskFull: where the file cannot be extended (a full disk),
// frames are pwritten, nothing is stored through the mapping past the
// file's size, and no zeros are left past the tail.
func TestMapWriteDiskFull(t *testing.T) {
	for _, mode := range zeroModes {
		t.Run(mode.String(), func(t *testing.T) {
			failed := 0
			extendFileFn = func(fd int, off, n int64) error {
				failed++
				return syscall.ENOSPC
			}
			t.Cleanup(func() { extendFileFn = extendFile })
			idle := holdIdle
			holdIdle = time.Hour
			t.Cleanup(func() { holdIdle = idle })
			dir := t.TempDir()
			l := mapWriteLog(t, dir, mode)
			const n = 500
			if err := mapWriteSend(l, n); err != nil {
				t.Fatal(err)
			}
			if failed != 1 {
				t.Errorf("extending was tried %d times, want once (then the segment is pwritten)", failed)
			}
			seg := segmentPath(filepath.Join(dir, "topics", mapWriteTopic, "0"), 0, logExt)
			if end, size := dataEnd(t, seg); size != end {
				t.Fatalf("the segment is %d bytes, its data %d", size, end)
			}
			if err := mapWriteCheck(l, n); err != nil {
				t.Fatal(err)
			}
		})
	}
}
