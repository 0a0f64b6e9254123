package main

import (
	"bufio"
	"context"
	"crypto/tls"

	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
)

type serveFlags struct {
	listen      string
	advertise   string
	autoCreate  bool
	partitions  int
	maxParts    int
	credentials string
	tlsCert     string
	tlsKey      string
	durability  string
	scramLine   string
	metrics     string
}

func init() {
	var f serveFlags
	register(&command{
		name:    "serve",
		args:    "[-listen ADDR] [-advertise HOST:PORT] [-auto-create-topics [-partitions N]]\n      [-max-partitions N] [-tls-cert FILE -tls-key FILE] [-credentials FILE] [-durability MODE]\n      [-metrics ADDR]",
		summary: "serve the log to Kafka clients",
		describe: `
Speaks the Kafka protocol on -listen (127.0.0.1:9092 by default: only this
machine; any other address, such as :9092 for every interface, is your
explicit choice), as a one-broker cluster over the log directory. Kafka
clients in any language (kcat and librdkafka, franz-go, Sarama,
kafka-go, KafkaJS, kafka-python) produce to and consume from its topics, while native producers and
consumers in other processes keep using the directory. Kafka consumer
group G is runnel group G: its committed offsets are the ones "runnel
groups" shows and resets.

-credentials FILE requires SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)
with one of the file's users: lines of name:password, or of the stored
form that -scram-line NAME prints for a password read from standard input
(a line per SCRAM hash). With
-tls-cert and -tls-key every connection is TLS; without TLS, PLAIN sends
passwords in clear.

acks=all is acknowledged as -durability says (durable: fdatasync'd, the
default); acks=1 once committed, visible to every process.

-metrics ADDR serves Prometheus metrics at http://ADDR/metrics (off by
default; a bare port such as 9308 means 127.0.0.1:9308): the log's
partitions, groups and fsync latencies, the Kafka requests by API and
error code, connections, and the Go runtime's and the process's metrics.
docs/OPERATIONS.md lists them, with alert rules. "runnel metrics" prints
them once.

Ctrl-C stops it cleanly: requests in flight are answered, and its Kafka
consumer groups are kept for the next "runnel serve" at the same address
(-advertise, or else -listen) and directory, whose clients heartbeat on
without rejoining (docs/OPERATIONS.md); a second Ctrl-C kills it at once,
which keeps them too.`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.listen, "listen", "127.0.0.1:9092", "listen on `ADDR`")
			fs.StringVar(&f.advertise, "advertise", "", "tell clients to connect to `HOST:PORT` (default: the address they reached)")
			fs.BoolVar(&f.autoCreate, "auto-create-topics", false, "create topics that producers and metadata requests name")
			fs.IntVar(&f.partitions, "partitions", 1, "give auto-created topics `N` partitions")
			fs.IntVar(&f.maxParts, "max-partitions", kafka.DefaultMaxPartitions, "refuse topics past `N` partitions in one CreateTopics request")
			fs.StringVar(&f.credentials, "credentials", "", "require SASL with the users in `FILE`")
			fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain, PEM `FILE`")
			fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key, PEM `FILE`")
			fs.StringVar(&f.durability, "durability", "durable", "`MODE` of acks=all: durable, periodic or buffered")
			metricsFlag(fs, &f.metrics)
			fs.StringVar(&f.scramLine, "scram-line", "", "print a credentials line for user `NAME` (password from standard input) and exit")
		},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) (err error) {
			if f.scramLine != "" {
				return printScramLine(c, f.scramLine)
			}
			dur, ok := map[string]runnel.Durability{"durable": runnel.Durable, "periodic": runnel.Periodic, "buffered": runnel.Buffered}[f.durability]
			if !ok {
				return usagef("-durability %q: want durable, periodic or buffered", f.durability)
			}
			if (f.tlsCert == "") != (f.tlsKey == "") {
				return usagef("-tls-cert and -tls-key go together")
			}
			opts := &kafka.Options{
				Advertise:         f.advertise,
				AutoCreateTopics:  f.autoCreate,
				DefaultPartitions: f.partitions,
				MaxPartitions:     f.maxParts,
				Logger:            slog.New(slog.NewTextHandler(c.stderr, nil)),
			}
			if f.tlsCert != "" {
				cert, err := loadKeyPair(f.tlsCert, f.tlsKey)
				if err != nil {
					return err
				}
				opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
			if f.credentials != "" {
				if opts.Credentials, err = kafka.LoadCredentials(f.credentials); err != nil {
					return err
				}
			}
			l, err := c.open(true, &runnel.Options{Durability: dur})
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			srv, err := kafka.NewServer(l, opts)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				srv.Close()
				return err
			}
			if host, _, _ := net.SplitHostPort(ln.Addr().String()); opts.Credentials == nil && !net.ParseIP(host).IsLoopback() {
				opts.Logger.Warn("listening beyond this machine without -credentials: anyone who reaches the port can read and write", "addr", ln.Addr())
			}
			fmt.Fprintf(c.stdout, "serving %s to Kafka clients on %s\n", c.logDir(), ln.Addr())
			if f.metrics != "" {
				stop, err := serveMetrics(c, f.metrics, l, srv, opts.Logger)
				if err != nil {
					ln.Close()
					srv.Close()
					return err
				}
				defer stop()
			}
			return srv.ServeContext(ctx, ln)
		},
	})
}

// printScramLine reads a password from standard input and prints the
// credentials-file lines that store it salted and hashed, one per SCRAM
// hash.
func printScramLine(c *cli, name string) error {
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("read the password from standard input: %w", err)
	}
	out, err := kafka.ScramLine(name, strings.TrimRight(line, "\r\n"))
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, out)
	return nil
}
