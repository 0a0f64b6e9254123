// Command tracesteps reads the trace files that a tracing build of
// runnel (go test -tags runneltrace, with RUNNEL_TRACE_DIR set) wrote into
// a directory, one per process, merges them by time, and prints the
// count, 10th percentile, median, 90th percentile and mean of each
// step-to-step interval that docs/PERFORMANCE.md's traced figures give
// ("Four processes, traced", "A follower's second read", the 64 durable
// senders), and of a few more.
// The intervals within a process are meaningful where one goroutine at a
// time sends (rows.go says how they are paired). For example:
//
//	rm -rf /tmp/tr && RUNNEL_TRACE_DIR=/tmp/tr go test -tags runneltrace \
//		-run '^$' -bench 'DurableProcesses/senders=1$' -benchtime 1x . &&
//		go run ./internal/tracesteps /tmp/tr
package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/runnel-log/runnel/internal/tracefmt"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tracesteps DIR (the RUNNEL_TRACE_DIR a tracing build wrote to)")
		os.Exit(2)
	}
	traces, err := tracefmt.ReadDir(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(traces) == 0 {
		fmt.Fprintf(os.Stderr, "no trace files in %s\n", os.Args[1])
		os.Exit(1)
	}
	var merged []tracefmt.Event
	for i := range traces {
		t := &traces[i]
		sortByTime(t.Events)
		merged = append(merged, t.Events...)
		fmt.Printf("process %d: %d events", t.PID, len(t.Events))
		if t.Dropped > 0 {
			fmt.Printf(", %d dropped (the buffer was full: raise %s)", t.Dropped, tracefmt.EventsEnv)
		}
		fmt.Println()
	}
	sortByTime(merged)
	sends, syncs := count(merged, tracefmt.SendReturn), count(merged, tracefmt.FdatasyncEnd)
	fmt.Printf("%d Sends returned, %d fdatasyncs", sends, syncs)
	if syncs > 0 {
		fmt.Printf(" (%.1f Sends each)", float64(sends)/float64(syncs))
	}
	fmt.Println()
	for _, s := range sections {
		fmt.Printf("\n%s\n%-60s %7s %9s %9s %9s %9s\n", s.title, "interval", "count", "p10 µs", "median µs", "p90 µs", "mean µs")
		for _, r := range s.rows {
			if r.cross {
				for k, v := range across(merged, r) {
					printRow(fmt.Sprintf("%s, process %d woken", r.name, k+1), v)
				}
				continue
			}
			var v []int64
			for _, t := range traces {
				v = append(v, within(t.Events, r)...)
			}
			printRow(r.name, v)
		}
	}
}

func count(events []tracefmt.Event, s tracefmt.Step) int {
	n := 0
	for _, e := range events {
		if e.Step == s {
			n++
		}
	}
	return n
}

func sortByTime(events []tracefmt.Event) {
	slices.SortStableFunc(events, func(a, b tracefmt.Event) int { return cmp.Compare(a.Time, b.Time) })
}

// printRow prints an interval's count, percentiles and mean, nothing if
// it never happened.
func printRow(name string, v []int64) {
	if len(v) == 0 {
		return
	}
	slices.Sort(v)
	pct := func(q float64) float64 { return float64(v[min(len(v)-1, int(q*float64(len(v))))]) / 1e3 }
	var sum float64
	for _, d := range v {
		sum += float64(d)
	}
	fmt.Printf("%-60s %7d %9.1f %9.1f %9.1f %9.1f\n", name, len(v), pct(0.1), pct(0.5), pct(0.9), sum/float64(len(v))/1e3)
}
