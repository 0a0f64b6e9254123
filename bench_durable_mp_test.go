package runnel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

func init() {
	childMains["bench-durable"] = benchDurableMain
}

// benchDurableMain sends $RUNNEL_BENCH_N records of 100 bytes to
// $RUNNEL_BENCH_TOPIC with Send in Durable mode, from $RUNNEL_BENCH_SENDERS
// goroutines (1 if unset), each one record at a time. It says
// "ready" once open, starts on a line on stdin, and prints "done <start>
// <end> <syncs> <writer locks> <sync ns>": CLOCK_MONOTONIC nanoseconds
// around the sends, and its Log's Stats after them (sync ns: the time its
// fdatasyncs of the partition took).
func benchDurableMain() int {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_BENCH_N"))
	l, err := Open(os.Getenv("RUNNEL_BENCH_DIR"), mpOptions(Options{Durability: Durable}))
	if err != nil {
		return mpFail("durable producer", err)
	}
	defer l.Close()
	p, err := l.Producer(os.Getenv("RUNNEL_BENCH_TOPIC"), nil)
	if err != nil {
		return mpFail("durable producer", err)
	}
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return mpFail("durable producer", err)
	}
	senders, _ := strconv.Atoi(os.Getenv("RUNNEL_BENCH_SENDERS"))
	senders = max(senders, 1)
	ctx := context.Background()
	errs := make(chan error, senders)
	start := monoNow()
	for i := range senders {
		go func() {
			var err error
			for range n/senders + min(1, max(0, n%senders-i)) {
				if _, err = p.Send(ctx, Record{Value: value}); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			return mpFail("durable producer", err)
		}
	}
	end := monoNow()
	st := l.Stats()
	var synced time.Duration
	for _, ps := range st.Partitions {
		synced += ps.Syncs.Sum
	}
	fmt.Printf("done %d %d %d %d %d\n", start, end, st.Syncs, st.WriterLocks, synced)
	return 0
}

// BenchmarkDurableProcesses: four processes each send 100-byte records to
// one partition with Send in Durable mode, from one goroutine or sixteen,
// each one record at a time (issue 12's "4 procs durable 1w each" and "16w
// each"). records/s is the aggregate over the interval from the first
// process's start to the last one's end; records/sync is how many records
// each fdatasync carried (cross-process group commit: at most one per
// sender); locks/record is the writer locks taken per record (each one a
// hand-over between processes, and its fcntls); disk-busy is the fraction
// of the interval an fdatasync ran (one at a time: the sync lock
// serializes them), the rest being the disk waiting for the processes.
// The system calls per record are for perf stat: docs/PERFORMANCE.md.
func BenchmarkDurableProcesses(b *testing.B) {
	for _, senders := range []int{1, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			benchDurableProcesses(b, senders, mpScale(500, 100, 100)*senders)
		})
	}
}

func benchDurableProcesses(b *testing.B, senders, perProc int) {
	const procs = 4
	var rates, perSync, locks, busy []float64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		l := openTest(b, dir, &Options{Durability: Durable})
		mustCreate(b, l, "bench", TopicConfig{Partitions: 1})
		kids := startBenchChildren(b, procs, "bench-durable", "RUNNEL_BENCH_DIR="+dir, "RUNNEL_BENCH_TOPIC=bench",
			"RUNNEL_BENCH_N="+strconv.Itoa(perProc), "RUNNEL_BENCH_SENDERS="+strconv.Itoa(senders))
		first, last := int64(1<<62), int64(0)
		var syncs, writerLocks, synced int64
		for _, k := range kids {
			s := mpExpectLine(b, k.lines, 5*time.Minute)
			var start, end, ns, nl, st int64
			if _, err := fmt.Sscanf(s, "done %d %d %d %d %d", &start, &end, &ns, &nl, &st); err != nil {
				b.Fatalf("producer said %q", s)
			}
			first, last = min(first, start), max(last, end)
			syncs += ns
			writerLocks += nl
			synced += st
		}
		b.StopTimer()
		for _, k := range kids {
			for range k.lines {
			}
			if err := k.cmd.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		total := procs * perProc
		if info, err := l.DescribeTopic("bench"); err != nil || info.Partitions[0].NextOffset != int64(total) {
			b.Fatalf("log after the run: %+v, %v; want %d records", info, err, total)
		}
		rates = append(rates, float64(total)/time.Duration(last-first).Seconds())
		perSync = append(perSync, float64(total)/float64(max(syncs, 1)))
		locks = append(locks, float64(writerLocks)/float64(total))
		busy = append(busy, float64(synced)/float64(last-first))
		l.Close()
		b.StartTimer()
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(rates), "records/s")
	b.ReportMetric(median(perSync), "records/sync")
	b.ReportMetric(median(locks), "locks/record")
	b.ReportMetric(median(busy), "disk-busy")
}
