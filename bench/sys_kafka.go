package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runnel served over the Kafka protocol: the process runs a kafka.Server
// over a runnel Log (the same one topic of one partition as runnel's own
// rows) on a loopback port, and appends and reads through a franz-go
// client: a Produce per Append, pipelined Produce calls with franz-go's
// default linger for the stream workload, a consumer for reads. Every
// byte crosses TCP, the protocol's encoding, and runnel's append path, on
// the same two cores, so the ratio to runnel's own rows is the price of
// the protocol. Durable is acks=all on a Durable log; the acks=1 system
// acknowledges once committed (runnel.AckCommitted). For the latency
// workload the reader process consumes from the writer process's server.

const (
	kafkaAllName   = "runnel/kafka"
	kafkaAcks1Name = "runnel/kafka-acks1"
)

// kafkaAcks1System runs only the durable workloads: acks=1 on a Durable
// log, acknowledged before the fdatasync.
func kafkaAcks1System() *system {
	s := kafkaSystem(kgo.LeaderAck(), kafkaAcks1Name, "as runnel/kafka, acks=1: acknowledged once committed, before the fdatasync")
	s.Buffered = false
	return s
}

func kafkaSystem(acks kgo.Acks, name, note string) *system {
	return &system{
		Name:     name,
		Open:     func(cfg config) (store, error) { return openKafka(cfg, acks) },
		OpenTail: openKafkaTail,
		Buffered: true,
		Note:     note,
	}
}

type kafkaStore struct {
	l    *runnel.Log
	srv  *kafka.Server
	addr string
	cl   *kgo.Client
	done chan error
}

func openKafka(cfg config, acks kgo.Acks) (*kafkaStore, error) {
	o := runnelOptions(cfg, runnel.BackendPwrite)
	// A Kafka batch becomes one frame: room for a whole client batch
	// (runnel serve does the same).
	o.MaxBatchBytes = 16 << 20
	l, err := openRunnelLogWith(cfg, o)
	if err != nil {
		return nil, err
	}
	srv, err := kafka.NewServer(l, nil)
	if err != nil {
		l.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return nil, err
	}
	s := &kafkaStore{l: l, srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ln) }()
	opts := []kgo.Opt{kgo.SeedBrokers(s.addr), kgo.DefaultProduceTopic(runnelTopic), kgo.RequiredAcks(acks), kgo.MaxBufferedRecords(1 << 17)}
	if cfg.Serve {
		// The latency writer sends one record at a time and wants it out
		// at once, as a latency-minded client is configured.
		opts = append(opts, kgo.ProducerLinger(0))
	}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Ready is the server's address, for the latency reader.
func (s *kafkaStore) Ready() string { return s.addr }

func (s *kafkaStore) Append(v []byte) error {
	return s.cl.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr()
}

func (s *kafkaStore) AppendAsync(v []byte, done func(error)) {
	// franz-go keeps the record until it is acknowledged; v is reused.
	s.cl.Produce(context.Background(), &kgo.Record{Value: append([]byte(nil), v...)}, func(_ *kgo.Record, err error) { done(err) })
}

func (s *kafkaStore) Flush() error { return s.cl.Flush(context.Background()) }

func (s *kafkaStore) AppendBatch(vs [][]byte) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	wg.Add(len(vs))
	for _, v := range vs {
		s.AppendAsync(v, func(err error) {
			if err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	if err := s.Flush(); err != nil {
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
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
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

func (s *kafkaStore) Close() error {
	if s.cl != nil {
		s.cl.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, kafka.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, s.l.Close())
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
