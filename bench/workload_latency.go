package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// The latency workload: a writer process appends at a steady rate, each
// value stamped with the wall-clock time just before Append; a reader in
// another process, blocked waiting for new records, stamps each arrival.
// Latency = arrival - stamp (one machine, one clock). The first
// latencyWarm records are not measured.

const latencyWarm = 200

func childLatencyHost(sys *system, t task) (result, error) {
	t.Cfg.Create, t.Cfg.Serve, t.Cfg.Writers = true, true, 1
	st, err := sys.Open(t.Cfg)
	if err != nil {
		return result{}, err
	}
	defer st.Close()
	info := t.Cfg.Dir
	if s, ok := st.(hoster); ok {
		info = s.Ready()
	}
	if err := handshake(info); err != nil {
		return result{}, err
	}
	buf := make([]byte, t.Cfg.ValueSize)
	interval := time.Duration(float64(time.Second) / t.Rate)
	start := time.Now()
	next := start
	for seq := range t.Records {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		fillValue(buf, 0, uint64(seq))
		binary.LittleEndian.PutUint64(buf[headerSize:], uint64(time.Now().UnixNano()))
		if err := st.Append(buf); err != nil {
			return result{}, err
		}
	}
	r := result{Records: t.Records, Seconds: time.Since(start).Seconds(), RSS: peakRSS()}
	fmt.Printf("SENT %d\n", t.Records)
	// Stay open (a server must keep serving) until the reader is done.
	return r, waitParent()
}

func childLatencyRead(sys *system, t task) (result, error) {
	t.Cfg.Writers = 1
	tl, closeTail, err := sys.OpenTail(t.Cfg)
	if err != nil {
		return result{}, err
	}
	defer closeTail()
	fmt.Println("READY reader")
	ctx, cancel := context.WithTimeout(context.Background(), seconds(float64(t.Records)/t.Rate)+time.Minute)
	defer cancel()
	var (
		h      hist
		next   int64
		badErr error
	)
	err = tl.Tail(ctx, func(v []byte) bool {
		now := time.Now().UnixNano()
		seq := int64(binary.LittleEndian.Uint64(v[8:]))
		if seq != next || len(v) != t.Cfg.ValueSize {
			badErr = fmt.Errorf("record %d: got seq %d, %d bytes", next, seq, len(v))
			return false
		}
		if next >= latencyWarm {
			h.add(time.Duration(now - int64(binary.LittleEndian.Uint64(v[headerSize:]))))
		}
		next++
		return next < t.Records
	})
	if err = cmpErr(badErr, err); err != nil {
		return result{}, err
	}
	if next != t.Records {
		return result{}, fmt.Errorf("reader got %d of %d records", next, t.Records)
	}
	return result{Records: next, RSS: peakRSS(), HasLat: true,
		P50: h.quantile(0.50), P99: h.quantile(0.99), P999: h.quantile(0.999)}, nil
}

func latencyCell(sys *system, w *workload, dir string) (measure, error) {
	cfg := config{Dir: dir, Durable: w.Durable, ValueSize: w.Size}
	host, err := spawn(task{Role: "lat-host", System: sys.Name, Cfg: cfg, Records: w.records, Rate: w.rate})
	if err != nil {
		return measure{}, err
	}
	defer host.kill()
	info, err := host.ready()
	if err != nil {
		return measure{}, err
	}
	cfg.Attach = info
	reader, err := spawn(task{Role: "lat-read", System: sys.Name, Cfg: cfg, Records: w.records, Rate: w.rate})
	if err != nil {
		return measure{}, err
	}
	defer reader.kill()
	if _, err := reader.line("READY"); err != nil {
		return measure{}, err
	}
	if err := host.tell("GO"); err != nil {
		return measure{}, err
	}
	r, err := reader.finish()
	if err != nil {
		return measure{}, err
	}
	if _, err := host.line("SENT"); err != nil {
		return measure{}, err
	}
	host.tell("EXIT")
	if _, err := host.finish(); err != nil {
		return measure{}, err
	}
	return measure{P50: r.P50, P99: r.P99, P999: r.P999, HasLat: true, RSS: r.RSS}, nil
}
