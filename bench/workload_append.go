package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The append workloads: W writers in one process (or, for "mp-write", in
// each of several processes), each appending one value at a time and
// waiting for its acknowledgement before the next, for a warm-up and then
// a timed phase. Afterwards the child closes the system, reopens it and
// checks that it returns exactly the acknowledged values.

const minTimedRecords = 100

const (
	phaseWarm int32 = iota
	phaseTimed
	phaseStop
)

type appender struct {
	st    store
	size  int
	phase atomic.Int32
	seqs  []atomic.Int64 // per writer: acknowledged appends
	hists []hist         // per writer: timed-phase append latency
}

func (a *appender) writer(w int, id uint32, errc chan<- error) {
	buf := make([]byte, a.size)
	h := &a.hists[w]
	for seq := uint64(0); ; seq++ {
		ph := a.phase.Load()
		if ph == phaseStop {
			errc <- nil
			return
		}
		fillValue(buf, id, seq)
		t0 := time.Now()
		if err := a.st.Append(buf); err != nil {
			errc <- fmt.Errorf("writer %d append %d: %w", id, seq, err)
			return
		}
		if ph == phaseTimed {
			h.add(time.Since(t0))
		}
		a.seqs[w].Add(1)
	}
}

// asyncWriter is writer for the stream workload: appends are pipelined
// through the system's async API and count when acknowledged. It times
// one append in streamSample: reading the clock costs 50-60 ns on this
// machine's kvm-clock, and twice per record that was a quarter of
// runnel's own CPU per record in this workload, the harness's and not
// the system's (docs/PERFORMANCE.md). A sample of one in sixteen gives
// the same percentiles.
func (a *appender) asyncWriter(w int, id uint32, as asyncStore, errc chan<- error) {
	const ringSize = 1 << 18 // more than any system keeps in flight
	sent := make([]atomic.Int64, ringSize)
	h := &a.hists[w]
	var (
		mu      sync.Mutex
		ackErr  error
		acked   = &a.seqs[w]
		nextAck uint64
	)
	appendAsync := as.AsyncAppender(func(err error) {
		// Acknowledgements come in order, one at a time.
		if err != nil {
			mu.Lock()
			ackErr = cmpErr(ackErr, fmt.Errorf("writer %d append %d: %w", id, nextAck, err))
			mu.Unlock()
		} else if nextAck%streamSample == 0 && a.phase.Load() == phaseTimed {
			h.add(time.Duration(time.Now().UnixNano() - sent[nextAck/streamSample%ringSize].Load()))
		}
		nextAck++
		acked.Add(1)
	})
	buf := make([]byte, a.size)
	seq := uint64(0)
	for ; a.phase.Load() != phaseStop; seq++ {
		fillValue(buf, id, seq)
		if seq%streamSample == 0 {
			sent[seq/streamSample%ringSize].Store(time.Now().UnixNano())
		}
		appendAsync(buf)
	}
	err := as.Flush()
	mu.Lock()
	err = cmpErr(ackErr, err)
	mu.Unlock()
	if err == nil && uint64(acked.Load()) != seq {
		err = fmt.Errorf("writer %d: %d appends, %d acknowledged after Flush", id, seq, acked.Load())
	}
	errc <- err
}

// streamSample: the stream workload times one append in this many.
const streamSample = 16

func (a *appender) total() int64 {
	var n int64
	for i := range a.seqs {
		n += a.seqs[i].Load()
	}
	return n
}

func childAppend(sys *system, t task) (result, error) {
	t.Cfg.Create = t.Role == "append"
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, err
	}
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	n := t.Cfg.Writers
	a := &appender{st: st, size: t.Cfg.ValueSize, seqs: make([]atomic.Int64, n), hists: make([]hist, n)}
	if t.Role == "mp-write" {
		if err := handshake(""); err != nil {
			return result{}, err
		}
	}
	errc := make(chan error, n)
	as, async := st.(asyncStore)
	for w := range n {
		if t.Async && async {
			go a.asyncWriter(w, uint32(t.Writer0+w), as, errc)
		} else {
			go a.writer(w, uint32(t.Writer0+w), errc)
		}
	}
	var firstErr error
	wait := func(d time.Duration) {
		select {
		case firstErr = <-errc:
			n--
		case <-time.After(d):
		}
	}
	wait(seconds(t.Warmup))
	stopProfile := startProfile(t, st)
	cpu := cpuClock{st}
	cpu0, server0 := cpu.now()
	a.phase.Store(phaseTimed)
	start, before := time.Now(), a.total()
	if firstErr == nil {
		wait(seconds(t.Seconds))
	}
	// A system that acknowledged almost nothing in the window (a slow
	// durable one, acking in bursts) gets more time, up to 10× or 5 s, so
	// that its rate is a measurement and not a rounding of zero.
	for deadline := start.Add(max(seconds(10*t.Seconds), 5*time.Second)); firstErr == nil && a.total()-before < minTimedRecords && time.Now().Before(deadline); {
		wait(seconds(t.Seconds / 5))
	}
	elapsed, after := time.Since(start), a.total()
	cpu1, server1 := cpu.now()
	a.phase.Store(phaseStop)
	stopProfile()
	for range n {
		firstErr = cmpErr(firstErr, <-errc)
	}
	if firstErr == nil && after == before {
		firstErr = fmt.Errorf("no append acknowledged in %s", elapsed.Round(time.Millisecond))
	}
	if firstErr != nil {
		return result{}, firstErr
	}
	r := result{Records: after - before, Seconds: elapsed.Seconds(), RSS: peakRSS(), HasLat: true, CPU: int64(cpu1 - cpu0), ServerCPU: int64(server1 - server0)}
	var h hist
	for i := range a.hists {
		h.merge(&a.hists[i])
	}
	r.P50, r.P99, r.P999 = h.quantile(0.50), h.quantile(0.99), h.quantile(0.999)
	r.Counts = make([]int64, t.Writer0+len(a.seqs))
	for w := range a.seqs {
		r.Counts[t.Writer0+w] = a.seqs[w].Load()
	}
	err = st.Close()
	st = nil
	if err != nil {
		return result{}, fmt.Errorf("close: %w", err)
	}
	if t.Role == "append" {
		t.Counts = r.Counts
		if _, err := childVerify(sys, t); err != nil {
			return result{}, err
		}
	}
	return r, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// childVerify reopens the system and checks that it returns exactly the
// values (w, 0..Counts[w]-1).
func childVerify(sys *system, t task) (result, error) {
	t.Cfg.Create = false
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, fmt.Errorf("verify: reopen: %w", err)
	}
	defer st.Close()
	var got sum
	if err := st.Scan(got.add); err != nil {
		return result{}, fmt.Errorf("verify: scan: %w", err)
	}
	if want := expectedSum(t.Counts, t.Cfg.ValueSize); got != want {
		return result{}, fmt.Errorf("verify: stored %v; acknowledged %v", got, want)
	}
	return result{}, nil
}

// childCreate creates the log, table or stream that several processes
// then open.
func childCreate(sys *system, t task) (result, error) {
	t.Cfg.Create = true
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, err
	}
	return result{}, st.Close()
}

// appendCell runs one append workload cell in a child and returns its
// measurement.
func appendCell(sys *system, w *workload, dir, profile string) (measure, error) {
	r, err := runChild(task{Profile: profile, Role: "append", System: sys.Name, Warmup: max(w.warmup, sys.MinWarmup), Seconds: max(w.seconds, sys.MinSeconds), Async: w.Kind == "stream",
		Cfg: config{Dir: dir, Durable: w.Durable, Writers: w.Writers, ValueSize: w.Size}})
	if err != nil {
		return measure{}, err
	}
	return throughput(r.Records, r.Seconds, w.Size, r), nil
}

// mpCell runs the multi-process workload: w.Procs children, each with
// w.Writers writers, started together on one log; then a verify child.
func mpCell(sys *system, w *workload, dir, profile string) (measure, error) {
	cfg := config{Dir: dir, Durable: w.Durable, Writers: w.Writers, ValueSize: w.Size}
	if _, err := runChild(task{Role: "create", System: sys.Name, Cfg: cfg}); err != nil {
		return measure{}, err
	}
	procs := make([]*proc, 0, w.Procs)
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
	}()
	for i := range w.Procs {
		prof := ""
		if profile != "" {
			prof = strings.TrimSuffix(profile, ".pprof") + fmt.Sprintf("-proc%d.pprof", i)
		}
		p, err := spawn(task{Role: "mp-write", System: sys.Name, Cfg: cfg, Warmup: w.warmup, Seconds: w.seconds, Writer0: i * w.Writers, Profile: prof})
		if err != nil {
			return measure{}, err
		}
		procs = append(procs, p)
		if _, err := p.ready(); err != nil {
			return measure{}, err
		}
	}
	for _, p := range procs {
		if err := p.tell("GO"); err != nil {
			return measure{}, err
		}
	}
	var (
		rate   float64
		rss    int64
		counts = make([]int64, w.Procs*w.Writers)
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
	)
	for i, p := range procs {
		wg.Go(func() {
			r, err := p.finish()
			mu.Lock()
			defer mu.Unlock()
			procs[i] = nil
			if err != nil {
				errs = append(errs, err)
				return
			}
			rate += float64(r.Records) / r.Seconds
			rss = max(rss, r.RSS)
			for id, c := range r.Counts {
				counts[id] += c
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return measure{}, errs[0]
	}
	if _, err := runChild(task{Role: "verify", System: sys.Name, Cfg: cfg, Counts: counts}); err != nil {
		return measure{}, err
	}
	return measure{RecPerSec: rate, MBPerSec: rate * float64(w.Size) / 1e6, RSS: rss}, nil
}
