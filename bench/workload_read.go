package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"
)

// The read workload: a child loads N values through the system's bulk
// path (not timed) and reports the disk space they take; then, per round,
// a fresh child opens the system and reads everything back, timed, and
// checks count and checksum. The page cache is warm for every system
// alike: this measures the read path's CPU cost, not the disk.

const loadBatch = 1000

func childLoad(sys *system, t task) (result, error) {
	t.Cfg.Create = true
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, err
	}
	for base := int64(0); base < t.Records; base += loadBatch {
		n := min(loadBatch, t.Records-base)
		vs := make([][]byte, n)
		for i := range vs {
			vs[i] = make([]byte, t.Cfg.ValueSize)
			fillValue(vs[i], 0, uint64(base)+uint64(i))
		}
		if err := st.AppendBatch(vs); err != nil {
			st.Close()
			return result{}, fmt.Errorf("load at %d: %w", base, err)
		}
	}
	if err := st.Close(); err != nil {
		return result{}, err
	}
	du, err := diskUsage(t.Cfg.Dir)
	return result{DiskBytes: du}, err
}

func childRead(sys *system, t task) (result, error) {
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, err
	}
	defer st.Close()
	var got sum
	stopProfile := startProfile(t, st)
	cpu := cpuClock{st}
	cpu0, server0 := cpu.now()
	start := time.Now()
	err = st.Scan(got.add)
	elapsed := time.Since(start)
	cpu1, server1 := cpu.now()
	stopProfile()
	if err != nil {
		return result{}, err
	}
	r := result{Records: got.Count, Seconds: elapsed.Seconds(), RSS: peakRSS(), CPU: int64(cpu1 - cpu0), ServerCPU: int64(server1 - server0)}
	if want := expectedSum([]int64{t.Records}, t.Cfg.ValueSize); got != want {
		return result{}, fmt.Errorf("read back %v; loaded %v", got, want)
	}
	return r, nil
}

// diskUsage is the space allocated to the files under dir (du, not the
// apparent size: preallocated space counts, sparse holes do not).
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return total, err
}

// readPrepare loads the data once per system for all rounds.
func readPrepare(sys *system, w *workload, dir string) (int64, error) {
	r, err := runChild(task{Role: "load", System: sys.Name, Records: w.records,
		Cfg: config{Dir: dir, Durable: false, Writers: 1, ValueSize: w.Size}})
	return r.DiskBytes, err
}

func readCell(sys *system, w *workload, dir, profile string) (measure, error) {
	r, err := runChild(task{Profile: profile, Role: "read", System: sys.Name, Records: w.records,
		Cfg: config{Dir: dir, Writers: 1, ValueSize: w.Size}})
	if err != nil {
		return measure{}, err
	}
	return throughput(r.Records, r.Seconds, w.Size, r), nil
}
