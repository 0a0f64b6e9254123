package main

import (
	"fmt"
	"io"
)

// The targets of issue 13, for runnel served over the Kafka protocol:
// franz-go through the server against runnel's own API, same run.
func writeKafkaTargets(out io.Writer, cells []*cell, ws []*workload) {
	fmt.Fprintf(out, "| target | measured | met |\n|---|---|---|\n")
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
		r, p := rate(find(cells, w, sys)), rate(find(cells, w, peer))
		if r == 0 || p == 0 {
			fmt.Fprintf(out, "| %s | not measured | |\n", target)
			return
		}
		fmt.Fprintf(out, "| %s | %.0f ÷ %.0f rec/s = %.2f× | %s |\n", target, r, p, r/p, mark(r/p >= min))
	}
	ratio("franz-go producer, acks=all, 100 B ≥ 0.5× native SendAsync durable", "stream durable 1w 100B", kafkaAllName, reference, 0.5)
	ratio("franz-go consumer ≥ 0.5× native read, 100 B", "read 100B", kafkaAllName, reference, 0.5)
	if w := byName("latency durable 100B"); w != nil {
		if c := find(cells, w, kafkaAllName); c != nil && c.err == nil {
			fmt.Fprintf(out, "| produce → consume p99 through the server ≤ 5 ms | p50 %.0f µs, p99 %.0f µs | %s |\n", c.med.P50, c.med.P99, mark(c.med.P99 <= 5000))
		}
	}
	if w := byName("stream durable 1w 500B"); w != nil {
		if r := rate(find(cells, w, kafkaAcks1Name)); r > 0 {
			fmt.Fprintf(out, "| franz-go producer, acks=1, 500 B (small Kafka-compatible brokers: ~100 k rec/s) | %.0f rec/s | %s |\n", r, mark(r >= 100_000))
		}
	}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}
