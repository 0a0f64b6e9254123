package main

import "fmt"

// workload is one row group of the report: a kind of run with fixed
// parameters, measured for every system that supports it.
type workload struct {
	Name    string
	Kind    string // "append", "stream", "read", "procs", "latency"
	Durable bool
	Writers int // per process
	Procs   int
	Size    int

	warmup, seconds float64 // append / procs
	records         int64   // read: values loaded; latency: values sent
	rate            float64 // latency: values per second
}

// measure is one cell's outcome (one round, or the median of rounds).
type measure struct {
	RecPerSec, MBPerSec float64 // 0: not measured
	P50, P99, P999      float64 // µs, when HasLat
	HasLat              bool
	RSS                 int64
	DiskPerRecord       float64 // 0: not measured
	CPUPerRecord        float64 // ns, every process of the cell; 0: not measured
	ServerCPUPerRecord  float64 // ns, of that a server process's
}

func throughput(records int64, secs float64, size int, r result) measure {
	rate := float64(records) / secs
	m := measure{RecPerSec: rate, MBPerSec: rate * float64(size) / 1e6,
		P50: r.P50, P99: r.P99, P999: r.P999, HasLat: r.HasLat, RSS: r.RSS}
	if records > 0 {
		m.CPUPerRecord = float64(r.CPU) / float64(records)
		m.ServerCPUPerRecord = float64(r.ServerCPU) / float64(records)
	}
	return m
}

// applies says whether sys takes part in w.
func (w *workload) applies(sys *system) bool {
	if sys.LatencyRef {
		return w.Kind == "latency"
	}
	switch w.Kind {
	case "append", "stream":
		return w.Durable || sys.Buffered
	case "read":
		return true
	case "procs":
		return sys.MultiProcess
	case "latency":
		return sys.OpenTail != nil
	}
	return false
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func durName(d bool) string {
	if d {
		return "durable"
	}
	return "buffered"
}

// plan is the harness's settings for one run.
type plan struct {
	rounds                  int
	warmup, seconds         float64
	readRecords100B         int64
	latRecords              int64
	latRate                 float64
	sizes, writers, mpWrite []int
	streamSizes             []int
}

func quickPlan() plan {
	return plan{rounds: 3, warmup: 0.05, seconds: 0.2, readRecords100B: 100_000,
		latRecords: 1500, latRate: 3000, sizes: []int{100, 1024}, writers: []int{1, 64}, mpWrite: []int{1, 16}, streamSizes: []int{100, 500}}
}

func fullPlan() plan {
	return plan{rounds: 5, warmup: 0.5, seconds: 2, readRecords100B: 1_000_000,
		latRecords: 30000, latRate: 5000, sizes: []int{100, 1024}, writers: []int{1, 64}, mpWrite: []int{1, 16}, streamSizes: []int{100, 500, 1024}}
}

func (p plan) workloads() []*workload {
	var ws []*workload
	for _, durable := range []bool{false, true} {
		for _, nw := range p.writers {
			for _, size := range p.sizes {
				ws = append(ws, &workload{Name: fmt.Sprintf("append %s %dw %s", durName(durable), nw, sizeName(size)),
					Kind: "append", Durable: durable, Writers: nw, Procs: 1, Size: size, warmup: p.warmup, seconds: p.seconds})
			}
		}
	}
	for _, durable := range []bool{false, true} {
		for _, size := range p.streamSizes {
			ws = append(ws, &workload{Name: fmt.Sprintf("stream %s 1w %s", durName(durable), sizeName(size)),
				Kind: "stream", Durable: durable, Writers: 1, Procs: 1, Size: size, warmup: p.warmup, seconds: p.seconds})
		}
	}
	for _, size := range p.sizes {
		ws = append(ws, &workload{Name: "read " + sizeName(size), Kind: "read", Size: size,
			records: p.readRecords100B * 100 / int64(size)})
	}
	for _, durable := range []bool{false, true} {
		for _, nw := range p.mpWrite {
			ws = append(ws, &workload{Name: fmt.Sprintf("4 procs %s %dw each 100B", durName(durable), nw),
				Kind: "procs", Durable: durable, Writers: nw, Procs: 4, Size: 100, warmup: p.warmup, seconds: p.seconds})
		}
	}
	for _, durable := range []bool{false, true} {
		// A durable append waits for an fdatasync (about 0.2-0.3 ms
		// here): keep the durable rate below that, so the latency is
		// the system's and not a queue's.
		rate := p.latRate
		if durable {
			rate = min(rate, 2000)
		}
		ws = append(ws, &workload{Name: fmt.Sprintf("latency %s 100B", durName(durable)), Kind: "latency",
			Durable: durable, Size: 100, records: p.latRecords, rate: rate})
	}
	return ws
}
