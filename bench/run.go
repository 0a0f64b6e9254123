package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// cell is one (workload, system) pair: its rounds and its median.
type cell struct {
	w      *workload
	sys    *system
	rounds []measure
	med    measure
	err    error
	disk   int64  // read workload: bytes allocated after loading
	dir    string // read workload: the loaded data, kept across rounds
}

// runAll runs every workload for every system that supports it: for each
// workload, a round visits every system once, in an order rotated from
// round to round, so that slow drifts of a shared machine spread over all
// systems instead of landing on one.
func runAll(p plan, ws []*workload, syss []*system, base, profDir string, log io.Writer) []*cell {
	var all []*cell
	for _, w := range ws {
		began := time.Now()
		var cells []*cell
		for _, s := range syss {
			if w.applies(s) {
				cells = append(cells, &cell{w: w, sys: s})
			}
		}
		if w.Kind == "read" {
			for _, c := range cells {
				c.dir = filepath.Join(base, "read-"+sanitize(c.sys.Name))
				os.MkdirAll(c.dir, 0o755)
				c.disk, c.err = readPrepare(c.sys, w, c.dir)
				if c.err != nil {
					fmt.Fprintf(log, "%-28s %-16s load FAILED: %v\n", w.Name, c.sys.Name, c.err)
				}
			}
		}
		for round := range p.rounds {
			for i := range cells {
				c := cells[(i+round)%len(cells)]
				if c.err != nil {
					continue
				}
				prof := ""
				if profDir != "" {
					prof = filepath.Join(profDir, fmt.Sprintf("%s--%s--%d.pprof", sanitize(w.Name), sanitize(c.sys.Name), round+1))
				}
				m, err := runCell(c, base, prof)
				// Start every cell with no other cell's dirty pages
				// still being written back.
				unix.Sync()
				if err != nil {
					c.err = err
					fmt.Fprintf(log, "%-28s %-16s round %d FAILED: %v\n", w.Name, c.sys.Name, round+1, err)
					continue
				}
				c.rounds = append(c.rounds, m)
				fmt.Fprintf(log, "%-28s %-16s round %d: %s\n", w.Name, c.sys.Name, round+1, m.brief())
			}
		}
		for _, c := range cells {
			if c.dir != "" {
				os.RemoveAll(c.dir)
			}
			if c.err == nil {
				c.med = median(c.rounds)
				if c.disk > 0 {
					c.med.DiskPerRecord = float64(c.disk) / float64(w.records)
				}
			}
		}
		all = append(all, cells...)
		fmt.Fprintf(log, "%-28s took %s\n", w.Name, time.Since(began).Round(100*time.Millisecond))
	}
	return all
}

func runCell(c *cell, base, profile string) (measure, error) {
	w := c.w
	if w.Kind == "read" {
		return readCell(c.sys, w, c.dir, profile)
	}
	dir, err := os.MkdirTemp(base, sanitize(c.sys.Name)+"-")
	if err != nil {
		return measure{}, err
	}
	defer os.RemoveAll(dir)
	switch w.Kind {
	case "append", "stream":
		return appendCell(c.sys, w, dir, profile)
	case "procs":
		return mpCell(c.sys, w, dir, profile)
	case "latency":
		return latencyCell(c.sys, w, dir)
	}
	return measure{}, fmt.Errorf("unknown workload kind %q", w.Kind)
}

func sanitize(name string) string {
	b := []byte(name)
	for i, ch := range b {
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (m measure) brief() string {
	s := ""
	if m.RecPerSec > 0 {
		s = fmt.Sprintf("%.0f rec/s ", m.RecPerSec)
	}
	if m.HasLat {
		s += fmt.Sprintf("p50 %.1fµs p99 %.1fµs ", m.P50, m.P99)
	}
	if m.CPUPerRecord > 0 {
		s += fmt.Sprintf("cpu %.2fµs/rec ", m.CPUPerRecord/1e3)
	}
	if m.ServerCPUPerRecord > 0 {
		s += fmt.Sprintf("(server %.2f) ", m.ServerCPUPerRecord/1e3)
	}
	return s + fmt.Sprintf("rss %.1f MiB", float64(m.RSS)/(1<<20))
}

// median takes each field's median over the rounds separately.
func median(ms []measure) measure {
	f := func(get func(measure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = get(m)
		}
		slices.Sort(v)
		n := len(v)
		if n == 0 {
			return 0
		}
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	return measure{
		RecPerSec: f(func(m measure) float64 { return m.RecPerSec }),
		MBPerSec:  f(func(m measure) float64 { return m.MBPerSec }),
		P50:       f(func(m measure) float64 { return m.P50 }),
		P99:       f(func(m measure) float64 { return m.P99 }),
		P999:      f(func(m measure) float64 { return m.P999 }),
		HasLat:    len(ms) > 0 && ms[0].HasLat,
		RSS:       int64(f(func(m measure) float64 { return float64(m.RSS) })),

		CPUPerRecord:       f(func(m measure) float64 { return m.CPUPerRecord }),
		ServerCPUPerRecord: f(func(m measure) float64 { return m.ServerCPUPerRecord }),
	}
}
