package main

import (
	"fmt"
	"io"
)

// The targets of issue 13, for runnel served over the Kafka protocol:
// franz-go through the server (a process of its own) against runnel's
// own API, same run; with the CPU time per record of each side (client
// and server together for the Kafka rows), which a shared machine moves
// less than the rates.
func writeKafkaTargets(out io.Writer, cells []*cell, ws []*workload) {
	fmt.Fprintf(out, "| target | measured | CPU per record | met |\n|---|---|---|---|\n")
	byName := func(name string) *workload {
		for _, w := range ws {
			if w.Name == name {
				return w
			}
		}
		return nil
	}
	ratio := func(target, wname, sys, peer string, min float64) {
		w := byName(wname)
		if w == nil {
			fmt.Fprintf(out, "| %s | not run | |\n", target)
			return
		}
		rc, pc := find(cells, w, sys), find(cells, w, peer)
		r, p := rate(rc), rate(pc)
		if r == 0 || p == 0 {
			fmt.Fprintf(out, "| %s | not measured | | |\n", target)
			return
		}
		fmt.Fprintf(out, "| %s | %.0f ÷ %.0f rec/s = %.2f× | %s | %s |\n", target, r, p, r/p, cpuRatio(rc, pc), mark(r/p >= min))
	}
	// What the client alone does here: the same client against the stub
	// broker, which stores and serves nothing but the batches' bytes.
	ceiling := func(wname string) {
		w := byName(wname)
		sc := find(cells, w, kafkaStubName)
		stub := rate(sc)
		if w == nil || stub == 0 {
			return
		}
		row := fmt.Sprintf("| the same client against a broker that does nothing (%s), %s | %.0f rec/s", kafkaStubName, wname, stub)
		if native := rate(find(cells, w, reference)); native > 0 {
			row += fmt.Sprintf(" = %.2f× native", stub/native)
		}
		if served := rate(find(cells, w, kafkaAllName)); served > 0 {
			row += fmt.Sprintf("; through runnel serve %.2f× this", served/stub)
		}
		fmt.Fprintf(out, "%s | %s | reference |\n", row, cpuOf(sc))
	}
	ratio("franz-go producer, acks=all, 100 B ≥ 0.5× native SendAsync durable", "stream durable 1w 100B", kafkaAllName, reference, 0.5)
	ceiling("stream durable 1w 100B")
	ratio("franz-go consumer ≥ 0.5× native read, 100 B", "read 100B", kafkaAllName, reference, 0.5)
	ceiling("read 100B")
	if w := byName("latency durable 100B"); w != nil {
		if c := find(cells, w, kafkaAllName); c != nil && c.err == nil {
			fmt.Fprintf(out, "| produce → consume p99 through the server ≤ 5 ms | p50 %.0f µs, p99 %.0f µs | | %s |\n", c.med.P50, c.med.P99, mark(c.med.P99 <= 5000))
		}
	}
	if w := byName("stream durable 1w 500B"); w != nil {
		if c := find(cells, w, kafkaAcks1Name); rate(c) > 0 {
			fmt.Fprintf(out, "| franz-go producer, acks=1, 500 B (small Kafka-compatible brokers: ~100 k rec/s) | %.0f rec/s | %s | %s |\n", rate(c), cpuOf(c), mark(rate(c) >= 100_000))
		}
	}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// cpuRatio shows two cells' CPU time per record and their ratio, peer's
// over this one's (as the rate ratio: higher is better for this one).
func cpuRatio(this, peer *cell) string {
	a, b := this.med.CPUPerRecord, peer.med.CPUPerRecord
	if a == 0 || b == 0 {
		return ""
	}
	return fmt.Sprintf("%s vs %.2f µs: %.2f×", cpuOf(this), b/1e3, b/a)
}

// cpuOf shows a cell's CPU time per record, with its server's share.
func cpuOf(c *cell) string {
	s := fmt.Sprintf("%.2f µs", c.med.CPUPerRecord/1e3)
	if c.med.ServerCPUPerRecord > 0 {
		s += fmt.Sprintf(" (server %.2f)", c.med.ServerCPUPerRecord/1e3)
	}
	return s
}
