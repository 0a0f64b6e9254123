package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// find returns the cell of system name in workload w, or nil.
func find(cells []*cell, w *workload, name string) *cell {
	for _, c := range cells {
		if c.w == w && c.sys.Name == name {
			return c
		}
	}
	return nil
}

// rate is a cell's median records/s, 0 if it failed or was not measured.
func rate(c *cell) float64 {
	if c == nil || c.err != nil {
		return 0
	}
	return c.med.RecPerSec
}

// writeTable prints one markdown table with every cell, in workload order.
func writeTable(out io.Writer, cells []*cell) {
	fmt.Fprintf(out, "| workload | system | records/s | MB/s | CPU µs/record | p50 µs | p99 µs | p99.9 µs | runnel ÷ this | this ÷ raw | peak RSS MiB | disk B/record |\n")
	fmt.Fprintf(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range cells {
		if c.err != nil {
			continue // a wrong or failed answer is not a row: see writeFailures
		}
		m := c.med
		ref, raw := rate(find(cells, c.w, reference)), rate(find(cells, c.w, rawName))
		vsRef, vsRaw := "", ""
		if m.RecPerSec > 0 && ref > 0 {
			vsRef = fmt.Sprintf("%.2f×", ref/m.RecPerSec)
		}
		if m.RecPerSec > 0 && raw > 0 {
			vsRaw = fmt.Sprintf("%.2f×", m.RecPerSec/raw)
		}
		if c.w.Kind == "latency" {
			if r := find(cells, c.w, reference); c.sys.Name != reference && r != nil && r.err == nil && r.med.P50 > 0 {
				vsRef = fmt.Sprintf("%.2f× (p50)", m.P50/r.med.P50)
			}
			// Against the physical floor: this p50 and p99 as multiples
			// of a bare futex wake-up's, measured in the same run.
			if f := find(cells, c.w, futexName); f != nil && f.err == nil && f.med.P50 > 0 && f.med.P99 > 0 {
				vsRaw = fmt.Sprintf("%.1f× / %.1f× futex", m.P50/f.med.P50, m.P99/f.med.P99)
			}
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n",
			c.w.Name, c.sys.Name, num(m.RecPerSec, 0), num(m.MBPerSec, 1), num(m.CPUPerRecord/1e3, 2),
			lat(m, m.P50), lat(m, m.P99), lat(m, m.P999), vsRef, vsRaw,
			float64(m.RSS)/(1<<20), num(m.DiskPerRecord, 0))
	}
}

// writeFailures lists the cells that failed, and reports whether any did.
func writeFailures(out io.Writer, cells []*cell) bool {
	failed := false
	for _, c := range cells {
		if c.err != nil {
			if !failed {
				fmt.Fprintf(out, "\n**Failures** (not reported as results):\n\n")
			}
			failed = true
			fmt.Fprintf(out, "- %s, %s: %s\n", c.w.Name, c.sys.Name, c.err)
		}
	}
	return failed
}

func lat(m measure, v float64) string {
	if !m.HasLat {
		return ""
	}
	return num(v, 1)
}

// num formats v with thousands separators; "" for 0 (not measured).
func num(v float64, decimals int) string {
	if v == 0 {
		return ""
	}
	s := fmt.Sprintf("%.*f", decimals, v)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// jsonRow is one object of -json's array; nil fields were not measured.
type jsonRow struct {
	Workload      string   `json:"workload"`
	System        string   `json:"system"`
	RecordsPerSec *float64 `json:"records_per_sec"`
	MBPerSec      *float64 `json:"mb_per_sec"`
	P50us         *float64 `json:"p50_us"`
	P99us         *float64 `json:"p99_us"`
	P999us        *float64 `json:"p999_us"`
	RSSBytes      *int64   `json:"rss_bytes"`
	DiskPerRecord *float64 `json:"disk_bytes_per_record"`
	CPUPerRecord  *float64 `json:"cpu_ns_per_record"`
	Rounds        int      `json:"rounds"`
}

func writeJSON(path string, cells []*cell) error {
	opt := func(v float64) *float64 {
		if v == 0 {
			return nil
		}
		return &v
	}
	rows := make([]jsonRow, 0, len(cells))
	for _, c := range cells {
		if c.err != nil {
			continue
		}
		m := c.med
		r := jsonRow{Workload: c.w.Name, System: c.sys.Name, Rounds: len(c.rounds),
			RecordsPerSec: opt(m.RecPerSec), MBPerSec: opt(m.MBPerSec), DiskPerRecord: opt(m.DiskPerRecord),
			CPUPerRecord: opt(m.CPUPerRecord)}
		if m.HasLat {
			r.P50us, r.P99us, r.P999us = &m.P50, &m.P99, &m.P999
		}
		if m.RSS > 0 {
			r.RSSBytes = &m.RSS
		}
		rows = append(rows, r)
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}
