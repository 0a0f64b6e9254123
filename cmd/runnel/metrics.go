package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
	"github.com/runnel-log/runnel/promrunnel"
)

func init() {
	register(&command{
		name:    "metrics",
		args:    "",
		summary: "print the directory's metrics once, in Prometheus's text format",
		describe: `
Prints what "runnel serve -metrics" serves at /metrics, for this directory,
once: every partition's start, end and durable offsets, durable lag,
segments and bytes on disk, and every group's members, committed offsets
and lag (docs/OPERATIONS.md explains them). The counters (records
appended, fsyncs, repairs, ...) count what one process did since it
opened the log, so here they show only what opening the log did (a
repair, a recovery): scrape the processes that write for the rest.`,
		nargs: [2]int{0, 0},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				reg := prometheus.NewRegistry()
				reg.MustRegister(promrunnel.NewCollector(l))
				fams, err := reg.Gather()
				if err != nil {
					return err
				}
				enc := expfmt.NewEncoder(c.stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, f := range fams {
					if err := enc.Encode(f); err != nil {
						return err
					}
				}
				return nil
			})
		},
	})
}

// metricsFlag defines serve's -metrics flag.
func metricsFlag(fs *pflag.FlagSet, addr *string) {
	fs.StringVar(addr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (a bare port means 127.0.0.1:PORT)")
}

// metricsAddr is the address -metrics listens on: a bare port is this
// machine's loopback, as -listen's default is; anything else is as given.
func metricsAddr(flag string) string {
	if !strings.Contains(flag, ":") {
		return net.JoinHostPort("127.0.0.1", flag)
	}
	return flag
}

// serveMetrics serves the metrics of l and srv, with the Go runtime's and
// the process's, at /metrics on addr, until stop is called. It prints the
// address it serves on.
func serveMetrics(c *cli, addr string, l *runnel.Log, srv *kafka.Server, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", metricsAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		logger.Warn("serving metrics beyond this machine: they name the topics and groups", "addr", ln.Addr())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		promrunnel.NewCollector(l),
		promrunnel.NewKafkaCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		MaxRequestsInFlight: 4, // a scrape reads the directory: do not let them pile up
	}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	fmt.Fprintf(c.stdout, "serving metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-done
	}, nil
}
