package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/runnel-log/runnel"
)

// The targets of issue 7: runnel's throughput ratio to a peer, same run,
// on a set of workloads.
type target struct {
	Name  string
	Peer  string
	Min   float64 // runnel ÷ peer must be at least this
	Match func(w *workload) bool
}

var targets = []target{
	{"≥ 3× tidwall/wal, buffered appends", "tidwall/wal", 3, isAppend(false)},
	{"≥ 3× raft-wal, buffered appends", "raft-wal", 3, isAppend(false)},
	{"≥ 2× tidwall/wal, durable appends", "tidwall/wal", 2, isAppend(true)},
	{"≥ 2× raft-wal, durable appends", "raft-wal", 2, isAppend(true)},
	{"≥ 10× bbolt, durable appends", "bbolt", 10, isAppend(true)},
	{"≥ 10× SQLite, durable appends", "sqlite", 10, isAppend(true)},
	{"≥ 5× NATS JetStream, appends", "nats-js", 5, func(w *workload) bool { return w.Kind == "append" || w.Kind == "stream" }},
	{"≥ 5× NATS JetStream, reads", "nats-js", 5, func(w *workload) bool { return w.Kind == "read" }},
	{"≥ 20× SQLite, 4 writer processes", "sqlite", 20, func(w *workload) bool { return w.Kind == "procs" }},
	{"within 2× of raw, buffered appends", rawName, 0.5, isAppend(false)},
}

func isAppend(durable bool) func(*workload) bool {
	return func(w *workload) bool { return (w.Kind == "append" || w.Kind == "stream") && w.Durable == durable }
}

// writeTargets prints, per target, runnel's ratio on each matching workload.
func writeTargets(out io.Writer, cells []*cell, ws []*workload) {
	fmt.Fprintf(out, "| target | runnel backend | met | runnel ÷ peer per workload |\n|---|---|---|---|\n")
	for _, t := range targets {
		for _, runnelName := range runnelNames {
			writeTarget(out, cells, ws, t, runnelName)
		}
	}
}

var runnelNames = []string{"runnel/" + runnel.BackendIOURing, "runnel/" + runnel.BackendPwrite}

func writeTarget(out io.Writer, cells []*cell, ws []*workload, t target, runnelName string) {
	var parts []string
	met, n := 0, 0
	for _, w := range ws {
		if !t.Match(w) {
			continue
		}
		r, p := rate(find(cells, w, runnelName)), rate(find(cells, w, t.Peer))
		if r == 0 || p == 0 {
			continue
		}
		n++
		ratio := r / p
		mark := ""
		if ratio >= t.Min {
			met++
		} else {
			mark = " ✗"
		}
		parts = append(parts, fmt.Sprintf("%s %.2f×%s", shortName(w), ratio, mark))
	}
	backend := strings.TrimPrefix(runnelName, "runnel/")
	if n == 0 {
		fmt.Fprintf(out, "| %s | %s | not measured | |\n", t.Name, backend)
		return
	}
	fmt.Fprintf(out, "| %s | %s | %d of %d | %s |\n", t.Name, backend, met, n, strings.Join(parts, ", "))
}

// shortName drops the words a target's row already implies.
func shortName(w *workload) string {
	s := strings.NewReplacer("append ", "", "buffered ", "", "durable ", "", "read ", "", "4 procs ", "").Replace(w.Name)
	if w.Kind == "read" {
		return s
	}
	return durName(w.Durable)[:3] + " " + s
}
