// Command kafkaserve is a Go service that embeds runnel and serves its log
// to Kafka clients: it writes an order event every second with the Go API,
// prints every payment event that arrives on the "payments" topic, and
// lets anything that speaks Kafka read its orders and send it payments.
//
//	go run ./examples/kafkaserve            # serves on 127.0.0.1:9092
//	kcat -b 127.0.0.1:9092 -C -t orders -o beginning -e
//	echo 'ada:paid 3.20' | kcat -b 127.0.0.1:9092 -P -t payments -K:
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
)

func main() {
	dir := flag.String("dir", "kafkaserve-data", "log directory")
	listen := flag.String("listen", "127.0.0.1:9092", "Kafka listener address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ready := func(addr string) { fmt.Printf("serving %s to Kafka clients on %s (Ctrl-C stops)\n", *dir, addr) }
	if err := run(ctx, *dir, *listen, ready, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run is the service: the log, the Kafka listener, and the service's own
// producing and consuming, until ctx ends.
func run(ctx context.Context, dir, listen string, ready func(addr string), out io.Writer) (err error) {
	l, err := runnel.Open(dir, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	for _, topic := range []string{"orders", "payments"} {
		if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: 2}); err != nil && !errors.Is(err, runnel.ErrTopicExists) {
			return err
		}
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() {
		// Kafka clients reach the same topics the service uses.
		served <- kafka.Serve(ctx, l, ln, &kafka.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	ready(ln.Addr().String())

	// The service's own work, with the Go API: write orders...
	p, err := l.Producer("orders", nil)
	if err != nil {
		return err
	}
	defer p.Close()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 1; ctx.Err() == nil; n++ {
			p.Send(ctx, runnel.Record{Key: []byte(fmt.Sprintf("customer-%d", n%3)), Value: []byte(fmt.Sprintf("order %d", n))})
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()

	// ...and read the payments anyone sends it, as a consumer group
	// member (a Kafka client could join the same group).
	c, err := l.Consumer("payments", &runnel.ConsumerOptions{Group: "billing", Start: runnel.Earliest})
	if err != nil {
		return err
	}
	defer c.Close()
	for r, err := range c.Records(ctx) {
		if err != nil {
			break
		}
		fmt.Fprintf(out, "payment from %s: %s\n", r.Key, r.Value)
	}
	return <-served
}
