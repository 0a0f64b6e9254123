package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runnel served over the Kafka protocol, as `runnel serve` serves it: a
// server process of its own (this binary's child mode, role "serve")
// runs a kafka.Server over a runnel Log with the default options (the
// same one topic of one partition as runnel's own rows, pwrite backend)
// on a loopback port, and the cell's process appends and reads through a
// franz-go client: a Produce per Append, pipelined Produce calls with
// franz-go's defaults (10 ms linger, snappy) for the stream workload, a
// consumer for reads. Client and server are two processes, as in real
// use, so each can have a core of its own; every byte crosses TCP, the
// protocol's encoding and runnel's append path. Durable is acks=all on a
// Durable log; the acks=1 system acknowledges once committed
// (runnel.AckCommitted), with five requests in flight, as Kafka's Java
// producer (and so Kafka's perf tool) has by default. For the latency
// workload the writer process's server serves the reader process too.
// The CPU time of a cell counts the server's.

const (
	kafkaAllName   = "runnel/kafka"
	kafkaAcks1Name = "runnel/kafka-acks1"
)

// kafkaAcks1System runs only the durable workloads: acks=1 on a Durable
// log, acknowledged before the fdatasync.
func kafkaAcks1System() *system {
	s := kafkaSystem(kgo.LeaderAck(), kafkaAcks1Name, "as runnel/kafka, acks=1 (acknowledged once committed, before the fdatasync), 5 requests in flight")
	s.Buffered = false
	return s
}

func kafkaSystem(acks kgo.Acks, name, note string) *system {
	return &system{
		Name:      name,
		Open:      func(cfg config) (store, error) { return openKafka(cfg, acks, name) },
		OpenTail:  openKafkaTail,
		Buffered:  true,
		Note:      note,
		MinWarmup: 1, MinSeconds: 1,
	}
}

type kafkaStore struct {
	srv  *proc // the server process
	addr string
	cl   *kgo.Client
	opts []kgo.Opt   // cl's
	bulk *kgo.Client // AppendBatch's, made at its first call

	mu sync.Mutex // one question to the server at a time
}

func openKafka(cfg config, acks kgo.Acks, name string) (*kafkaStore, error) {
	srv, err := spawn(task{Role: "serve", System: name, Cfg: cfg})
	if err != nil {
		return nil, err
	}
	addr, err := srv.ready()
	if err != nil {
		srv.kill()
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &kafkaStore{srv: srv, addr: addr}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(runnelTopic), kgo.RequiredAcks(acks)}
	if cfg.Serve {
		// The latency writer sends one record at a time and wants it out
		// at once, as a latency-minded client is configured.
		opts = append(opts, kgo.ProducerLinger(0))
	}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	s.opts = opts
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		s.Close()
		return nil, err
	}
	// One record to another topic has the client connected, with the
	// metadata and (idempotent) producer id it needs, before a phase
	// starts: a short warm-up does not have to cover that.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.cl.ProduceSync(ctx, &kgo.Record{Topic: warmupTopic, Value: []byte("warm-up")}).FirstErr(); err != nil {
		s.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return s, nil
}

// warmupTopic takes the record that warms the client up, apart from the
// measured topic.
const warmupTopic = "warmup"

// Ready is the server's address, for the latency reader.
func (s *kafkaStore) Ready() string { return s.addr }

// ask sends the server process a command and returns its answer.
func (s *kafkaStore) ask(cmd string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.srv.tell(cmd); err != nil {
		return "", err
	}
	return s.srv.line("DONE")
}

// HelperCPU asks the server process for the CPU time it has used.
func (s *kafkaStore) HelperCPU() (time.Duration, error) {
	line, err := s.ask("CPU")
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(line, 10, 64)
	return time.Duration(ns), err
}

// HelperProfile has the server process profile itself into path.
func (s *kafkaStore) HelperProfile(path string) func() {
	if _, err := s.ask("PROFILE " + path); err != nil {
		fmt.Fprintln(os.Stderr, "server profile:", err)
	}
	return func() { s.ask("PROFILE") }
}

func (s *kafkaStore) Append(v []byte) error {
	return s.cl.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr()
}

func (s *kafkaStore) AsyncAppender(done func(error)) func(v []byte) {
	produced := func(_ *kgo.Record, err error) { done(err) }
	return func(v []byte) {
		// franz-go keeps the record until it is acknowledged; v is reused.
		s.cl.Produce(context.Background(), &kgo.Record{Value: append([]byte(nil), v...)}, produced)
	}
}

func (s *kafkaStore) Flush() error { return s.cl.Flush(context.Background()) }

// AppendBatch loads the read workload's data, uncompressed: the server
// sends records back without compression whatever it was sent, and the
// stub sends them back as sent, so both read rows decode the same bytes.
func (s *kafkaStore) AppendBatch(vs [][]byte) error {
	if s.bulk == nil {
		var err error
		if s.bulk, err = kgo.NewClient(append(s.opts, kgo.ProducerBatchCompression(kgo.NoCompression()))...); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	wg.Add(len(vs))
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			first = errors.Join(first, err)
			mu.Unlock()
		}
		wg.Done()
	}
	for _, v := range vs {
		s.bulk.Produce(context.Background(), &kgo.Record{Value: v}, done)
	}
	if err := s.bulk.Flush(context.Background()); err != nil {
		return err
	}
	wg.Wait()
	return first
}

func (s *kafkaStore) Scan(fn func(v []byte)) error {
	return scanKafka(s.addr, fn)
}

// scanKafka reads the topic from the start to its end as it is now.
func scanKafka(addr string, fn func(v []byte)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, runnelTopic)
	admin.Close()
	if err != nil {
		return err
	}
	end, ok := ends.Lookup(runnelTopic, 0)
	if !ok || end.Err != nil {
		return fmt.Errorf("end offset: %v", end.Err)
	}
	if end.Offset == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(runnelTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			fn(r.Value)
			last = r.Offset
		})
		if last == end.Offset-1 {
			return nil
		}
	}
}

// Close closes the client, then has the server shut down gracefully and
// waits for it to exit.
func (s *kafkaStore) Close() error {
	for _, cl := range []*kgo.Client{s.cl, s.bulk} {
		if cl != nil {
			cl.Close()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.srv.tell("EXIT"); err != nil {
		s.srv.kill()
		return err
	}
	_, err := s.srv.finish()
	return err
}

// childServe is the server process: it serves the Log in t.Cfg.Dir (the
// topic created first if t.Cfg.Create; a topic for the client's warm-up
// always), or is the stub broker for franz-go/stub, until the parent says
// EXIT or closes stdin (hostServer).
func childServe(sys *system, t task) (result, error) {
	if sys.Name == kafkaStubName {
		b, err := newStubBroker(t.Cfg.Dir)
		if err != nil {
			return result{}, err
		}
		err = hostServer(b.serve, func(context.Context) error { return nil })
		return result{RSS: peakRSS()}, errors.Join(err, b.save())
	}
	d := runnel.Buffered
	if t.Cfg.Durable {
		d = runnel.Durable
	}
	l, err := openRunnelLogWith(t.Cfg, &runnel.Options{Durability: d, Backend: runnel.BackendPwrite})
	if err != nil {
		return result{}, err
	}
	if err := l.CreateTopic(warmupTopic, runnel.TopicConfig{Partitions: 1}); err != nil && !errors.Is(err, runnel.ErrTopicExists) {
		l.Close()
		return result{}, err
	}
	srv, err := kafka.NewServer(l, nil)
	if err != nil {
		l.Close()
		return result{}, err
	}
	serve := func(ln net.Listener) error {
		if err := srv.Serve(ln); !errors.Is(err, kafka.ErrServerClosed) {
			return err
		}
		return nil
	}
	err = hostServer(serve, srv.Shutdown)
	return result{RSS: peakRSS()}, errors.Join(err, l.Close())
}

// hostServer runs serve on a loopback port until the parent says EXIT or
// closes stdin, then shuts it down. It answers "CPU" with the CPU time
// the process has used so far, starts a CPU profile on "PROFILE <path>"
// and stops it on "PROFILE"; each answer is a line "DONE ...". serve
// returns nil once shutdown closed it.
func hostServer(serve func(net.Listener) error, shutdown func(context.Context) error) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- serve(ln) }()
	// The parent may be killed (its timeout): stdin then ends, and so do
	// we. Ctrl-C reaches the whole process group; the parent handles it.
	signal.Ignore(syscall.SIGINT)
	fmt.Printf("READY %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	stopProfile := func() {}
	for in.Scan() && in.Text() != "EXIT" {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "CPU":
			fmt.Printf("DONE %d\n", cpuSelf().Nanoseconds())
			continue
		case "PROFILE":
			stopProfile()
			stopProfile = func() {}
			if arg != "" {
				stopProfile = profileTo(arg)
			}
		}
		fmt.Println("DONE")
	}
	stopProfile()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = shutdown(ctx)
	if ln.Close() == nil { // shutdown left the listener open: serve ends with it
		<-served
		return err
	}
	return errors.Join(err, <-served)
}

type kafkaTail struct{ cl *kgo.Client }

func openKafkaTail(cfg config) (tailer, func() error, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Attach), kgo.ConsumeTopics(runnelTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, nil, err
	}
	return kafkaTail{cl}, func() error { cl.Close(); return nil }, nil
}

func (t kafkaTail) Tail(ctx context.Context, fn func(v []byte) bool) error {
	for ctx.Err() == nil {
		stop := false
		t.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if !stop && !fn(r.Value) {
				stop = true
			}
		})
		if stop {
			return nil
		}
	}
	return ctx.Err()
}
