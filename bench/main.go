// Command bench runs the same workloads against runnel and the libraries
// people would pick instead, side by side in one run, and reports medians
// and ratios. See README.md.
//
//	go run . -quick                      # about 5 minutes on 2 cores
//	go run . -json out.json -plot out.svg
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

func main() {
	var (
		child    = flag.Bool("child", false, "internal: run one task given by the parent")
		quick    = flag.Bool("quick", false, "short run: fewer rounds, shorter phases, less data")
		jsonOut  = flag.String("json", "", "write the results as a JSON array to `file`")
		plotOut  = flag.String("plot", "", "draw the comparison as SVG to `file`")
		sysRE    = flag.String("systems", "", "only systems matching `regexp`")
		wlRE     = flag.String("workloads", "", "only workloads matching `regexp`")
		rounds   = flag.Int("rounds", 0, "rounds per cell (default 3 quick, 5 full)")
		baseDir  = flag.String("dir", "", "parent `directory` for the systems' temp dirs (default $TMPDIR)")
		keepTemp = flag.Bool("keep", false, "keep the temp directory")
		profDir  = flag.String("cpuprofile", "", "write a CPU profile of each append and read cell's timed phase into `directory`")
		pin      = flag.Bool("pin-server", false, "run each server process (runnel/kafka's, franz-go/stub's) on the last CPU and every other child on the rest (taskset)")
	)
	flag.Parse()
	if *pin {
		os.Setenv(pinEnv, "1")
	}
	if *child {
		if err := childMain(); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *rounds > 0 {
		p.rounds = *rounds
	}
	syss, ws, err := selectRun(p, *sysRE, *wlRE)
	if err != nil {
		fatal(err)
	}
	base, err := os.MkdirTemp(*baseDir, "runnel-bench-")
	if err != nil {
		fatal(err)
	}
	if !*keepTemp {
		defer os.RemoveAll(base)
	}
	start := time.Now()
	if *profDir != "" {
		if *profDir, err = filepath.Abs(*profDir); err == nil {
			err = os.MkdirAll(*profDir, 0o755)
		}
		if err != nil {
			fatal(err)
		}
	}
	cells := runAll(p, ws, syss, base, *profDir, os.Stderr)

	var out bytes.Buffer
	mode := "full"
	if *quick {
		mode = "quick"
	}
	fmt.Fprintf(&out, "## runnel bench (%s, %d rounds, median)\n\n%s\n\n", mode, p.rounds, machine(base))
	writeTable(&out, cells)
	fmt.Fprintf(&out, "\n### Targets (issue 7)\n\n")
	writeTargets(&out, cells, ws)
	fmt.Fprintf(&out, "\n### Targets (issue 12: one Send at a time)\n\n")
	writeTargets12(&out, cells, ws)
	fmt.Fprintf(&out, "\n### Targets (issue 13: the Kafka server)\n\n")
	writeKafkaTargets(&out, cells, ws)
	failed := writeFailures(&out, cells)
	fmt.Fprintf(&out, "\nwall time %s\n", time.Since(start).Round(time.Second))
	os.Stdout.Write(out.Bytes())
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, cells); err != nil {
			fatal(err)
		}
	}
	if *plotOut != "" {
		if err := writePlot(*plotOut, cells, ws, machine(base)); err != nil {
			fatal(err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func selectRun(p plan, sysRE, wlRE string) ([]*system, []*workload, error) {
	sre, err := regexp.Compile(sysRE)
	if err != nil {
		return nil, nil, err
	}
	wre, err := regexp.Compile(wlRE)
	if err != nil {
		return nil, nil, err
	}
	var syss []*system
	for _, s := range systems {
		if sre.MatchString(s.Name) {
			syss = append(syss, s)
		}
	}
	var ws []*workload
	for _, w := range p.workloads() {
		if wre.MatchString(w.Name) {
			ws = append(ws, w)
		}
	}
	return syss, ws, nil
}

// machine describes where the run happened.
func machine(dir string) string {
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s %s, %d cores, %s, file system %s, %s", kernel, runtime.GOARCH, runtime.NumCPU(), cpuModel(), fsType(dir), runtime.Version())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
