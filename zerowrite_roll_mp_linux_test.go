package runnel

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// A writer that copies its frames through the segment's mapping writes
// zeros ahead of them (zerowrite.go) in Buffered and Periodic mode, and
// with small segments it rolls with those zeros ahead every few hundred
// frames. Killed holding the lock, it leaves them past its last frame;
// every reader, Dump and Verify must take them as the end of the data, and
// the next writer, in another process, must cut them and append after the
// last record, so that after its clean close every file ends where its
// data does.

func init() { childMains["mapwrite-writer"] = mapWriteWriterMain }

// mapWriteWriterMain appends records $RUNNEL_MW_N..$RUNNEL_MW_TO-1 (in the
// mode $RUNNEL_MW_MODE names) and closes cleanly.
func mapWriteWriterMain() int {
	from, _ := strconv.Atoi(os.Getenv("RUNNEL_MW_N"))
	to, _ := strconv.Atoi(os.Getenv("RUNNEL_MW_TO"))
	l, err := Open(os.Getenv("RUNNEL_MW_DIR"), &Options{Durability: mapWriteMode(), Backend: BackendPwrite})
	if err != nil {
		return mpFail("mapwrite writer", err)
	}
	if err := mapWriteSendRange(l, from, to); err != nil {
		l.Close()
		return mpFail("mapwrite writer", err)
	}
	if err := l.Close(); err != nil {
		return mpFail("mapwrite writer", err)
	}
	return 0
}

// segmentEnds returns, for each segment of the partition in dir, where
// its frames end and the file's size.
func segmentEnds(t *testing.T, dir string) (ends, sizes []int64) {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range bases {
		end, size := dataEnd(t, segmentPath(dir, base, logExt))
		ends, sizes = append(ends, end), append(sizes, size)
	}
	return ends, sizes
}

// TestZerosAheadRollKilled: a lone sender writing through the mapping into
// 64 KiB segments rolls several times with zeros ahead, and is SIGKILLed
// holding the lock with zeros ahead of its last frame. Each sealed segment
// ends at its seal; Dump, and a Consumer and Verify in another process,
// find exactly the records sent, each once, and no zeros taken for a
// frame; a writer in another process appends after them and, closed,
// leaves every file ending where its data does.
func TestZerosAheadRollKilled(t *testing.T) {
	slowAlone(t)
	for _, mode := range []Durability{Buffered, Periodic} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: mode, Backend: BackendPwrite})
			mustCreate(t, l, mapWriteTopic, TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			const n, more = 2500, 700
			env := []string{"RUNNEL_MW_DIR=" + dir, "RUNNEL_MW_MODE=" + mode.String(), "RUNNEL_MW_N=" + strconv.Itoa(n)}
			cmd := mpChild("mapwrite-killed", env...)
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the writer process ended by itself (%v) instead of by SIGKILL", err)
			}
			pdir := filepath.Join(dir, "topics", mapWriteTopic, "0")
			ends, sizes := segmentEnds(t, pdir)
			last := len(ends) - 1
			if last < 3 {
				t.Fatalf("test setup: %d segments, want several rolls", len(ends))
			}
			for i := range last {
				if sizes[i] != ends[i] {
					t.Errorf("sealed segment %d is %d bytes, its frames end at %d", i, sizes[i], ends[i])
				}
			}
			if sizes[last] <= ends[last] {
				t.Fatalf("test setup: the last segment is %d bytes, its data %d: the writer left no zeros", sizes[last], ends[last])
			}

			l = openTest(t, dir, &Options{Durability: mode, Backend: BackendPwrite})
			dumped := 0
			for df, err := range l.Dump(mapWriteTopic, 0, 0) {
				if err != nil {
					t.Fatal(err)
				}
				if df.Problem != "" || !df.Committed {
					t.Fatalf("Dump: frame at byte %d of %s: committed %v, problem %q", df.Pos, df.Path, df.Committed, df.Problem)
				}
				for _, r := range df.Records {
					if r.Offset != int64(dumped) || string(r.Value) != string(mapWriteValue(dumped)) {
						t.Fatalf("Dump: record at offset %d is %q, want offset %d", r.Offset, r.Value, dumped)
					}
					dumped++
				}
			}
			if dumped != n {
				t.Fatalf("Dump found %d records, want %d", dumped, n)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, sizes2 := segmentEnds(t, pdir); sizes2[last] != sizes[last] {
				t.Fatalf("a Log that only dumped changed the last segment from %d to %d bytes", sizes[last], sizes2[last])
			}

			if err := mpChild("mapwrite-reader", env...).Run(); err != nil {
				t.Fatalf("reader process: %v", err)
			}
			if err := mpChild("mapwrite-writer", append(env, "RUNNEL_MW_TO="+strconv.Itoa(n+more))...).Run(); err != nil {
				t.Fatalf("writer process: %v", err)
			}
			ends, sizes = segmentEnds(t, pdir)
			for i := range ends {
				if sizes[i] != ends[i] {
					t.Errorf("after the writer's clean close, segment %d is %d bytes, its frames end at %d", i, sizes[i], ends[i])
				}
			}
			if got := verifyPartition(t, pdir); got != n+more {
				t.Fatalf("verify counts %d records, want %d", got, n+more)
			}
			l = openTest(t, dir, &Options{Durability: mode, Backend: BackendPwrite})
			if err := mapWriteCheck(l, n+more); err != nil {
				t.Fatal(err)
			}
		})
	}
}
