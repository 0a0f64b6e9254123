package main

import (
	"fmt"
	"io"
	"strings"
)

// The targets of issue 12: runnel used the simplest way — one Send at a
// time, in one process or in several — against its peers, against itself
// and against the physical floor, all from one run.
type target12 struct {
	Name string
	// Eval returns the measured figure (a ratio or a latency, as text),
	// whether it meets the target, and false for ok when the run did not
	// measure what it needs.
	Eval func(cells []*cell, ws []*workload, runnelName string) (figure string, met, ok bool)
}

var targets12 = []target12{
	ratioTarget("append buffered 1w 100B: ≥ 2× tidwall/wal", "append buffered 1w 100B", "tidwall/wal", 2),
	ratioTarget("4 procs durable 1w each: ≥ 3× SQLite", "4 procs durable 1w each 100B", "sqlite", 3),
	ratioTarget("4 procs durable 16w each: ≥ 20× SQLite", "4 procs durable 16w each 100B", "sqlite", 20),
	{"append durable 64w 100B: ≥ 45× runnel's durable 1w", func(cells []*cell, ws []*workload, name string) (string, bool, bool) {
		many, one := rate(findNamed(cells, ws, "append durable 64w 100B", name)), rate(findNamed(cells, ws, "append durable 1w 100B", name))
		if many == 0 || one == 0 {
			return "", false, false
		}
		return fmt.Sprintf("%.1f×", many/one), many/one >= 45, true
	}},
	ratioTarget("stream buffered 1w 100B: ≥ 0.8× raw", "stream buffered 1w 100B", rawName, 0.8),
	ratioTarget("stream durable 1w 100B: ≥ 0.8× raw", "stream durable 1w 100B", rawName, 0.8),
	{"latency buffered 100B: p50 ≤ 20 µs, p99 ≤ 200 µs", func(cells []*cell, ws []*workload, name string) (string, bool, bool) {
		c := findNamed(cells, ws, "latency buffered 100B", name)
		if c == nil || c.err != nil || !c.med.HasLat {
			return "", false, false
		}
		fig := fmt.Sprintf("p50 %.1f µs, p99 %.1f µs", c.med.P50, c.med.P99)
		if f := findNamed(cells, ws, "latency buffered 100B", futexName); f != nil && f.err == nil && f.med.P50 > 0 {
			fig += fmt.Sprintf(" (futex ping: p50 %.1f µs, p99 %.1f µs; runnel %.1f× / %.1f× it)",
				f.med.P50, f.med.P99, c.med.P50/f.med.P50, c.med.P99/f.med.P99)
		}
		return fig, c.med.P50 <= 20 && c.med.P99 <= 200, true
	}},
}

// ratioTarget is a target of runnel's records/s over peer's, on one
// workload.
func ratioTarget(name, wl, peer string, min float64) target12 {
	return target12{name, func(cells []*cell, ws []*workload, runnelName string) (string, bool, bool) {
		r, p := rate(findNamed(cells, ws, wl, runnelName)), rate(findNamed(cells, ws, wl, peer))
		if r == 0 || p == 0 {
			return "", false, false
		}
		return fmt.Sprintf("%.2f×", r/p), r/p >= min, true
	}}
}

func findNamed(cells []*cell, ws []*workload, wl, system string) *cell {
	for _, w := range ws {
		if w.Name == wl {
			return find(cells, w, system)
		}
	}
	return nil
}

// writeTargets12 prints, per target and runnel backend, the figure and
// whether it meets the target.
func writeTargets12(out io.Writer, cells []*cell, ws []*workload) {
	fmt.Fprintf(out, "| target | runnel backend | measured | met |\n|---|---|---|---|\n")
	for _, t := range targets12 {
		for _, name := range runnelNames {
			fig, met, ok := t.Eval(cells, ws, name)
			mark := "✓"
			switch {
			case !ok:
				fig, mark = "not measured", ""
			case !met:
				mark = "✗"
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s |\n", t.Name, strings.TrimPrefix(name, "runnel/"), fig, mark)
		}
	}
}
