package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS JetStream embedded in the bench process: a nats-server with file
// storage, reached through nats.go's in-process connection (no socket),
// one stream with one subject. An append is a synchronous js.Publish that
// waits for the PubAck. Durable is the server's sync_interval=always
// (SyncAlways: fsync per message); Buffered is the default (the file store
// writes through a buffer and fsyncs every 2 minutes). For the latency
// workload the writer process's server also listens on 127.0.0.1, and the
// reader process connects to it with an ordered consumer.

const (
	natsStream  = "BENCH"
	natsSubject = "bench"
)

func natsSystem() *system {
	return &system{
		Name:     "nats-js",
		Open:     func(cfg config) (store, error) { return openNATS(cfg) },
		OpenTail: openNATSTail,
		Buffered: true,
		Note:     "embedded nats-server, file storage, in-process connection, sync Publish per append; Durable: SyncAlways; Buffered: default 2 min sync interval",
	}
}

type natsStore struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	acks     chan natsPending // appendAsync: futures, in publish order
	acksDone chan struct{}
}

type natsPending struct {
	f    jetstream.PubAckFuture
	done func(error)
}

func openNATS(cfg config) (*natsStore, error) {
	opts := &server.Options{
		ServerName:         "bench",
		JetStream:          true,
		StoreDir:           cfg.Dir,
		SyncAlways:         cfg.Durable,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  64 << 30,
		NoLog:              true,
		NoSigs:             true,
		DontListen:         !cfg.Serve,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats-server not ready after 10s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	s := &natsStore{srv: srv, nc: nc}
	if s.js, err = jetstream.New(nc); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:     natsStream,
			Subjects: []string{natsSubject},
			Storage:  jetstream.FileStorage,
		})
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *natsStore) Ready() string { return s.srv.ClientURL() }

func (s *natsStore) Append(v []byte) error {
	_, err := s.js.Publish(context.Background(), natsSubject, v)
	return err
}

// AsyncAppender's appends publish with PublishAsync (which blocks past
// nats.go's default of 4000 unacknowledged messages); each PubAck is
// reported in order.
func (s *natsStore) AsyncAppender(done func(error)) func(v []byte) {
	return func(v []byte) { s.appendAsync(v, done) }
}

func (s *natsStore) appendAsync(v []byte, done func(error)) {
	if s.acks == nil {
		s.acks, s.acksDone = make(chan natsPending, 8192), make(chan struct{})
		go s.ackLoop()
	}
	// A durable stream acknowledges one fsync at a time; let the
	// publisher wait for room rather than fail after the default 200ms.
	f, err := s.js.PublishAsync(natsSubject, bytes.Clone(v), jetstream.WithStallWait(time.Minute))
	if err != nil {
		done(err)
		return
	}
	s.acks <- natsPending{f, done}
}

func (s *natsStore) ackLoop() {
	defer close(s.acksDone)
	for p := range s.acks {
		select {
		case <-p.f.Ok():
			p.done(nil)
		case err := <-p.f.Err():
			p.done(err)
		}
	}
}

func (s *natsStore) Flush() error {
	if s.acks != nil {
		close(s.acks)
		<-s.acksDone
		s.acks = nil
	}
	return nil
}

func (s *natsStore) AppendBatch(vs [][]byte) error {
	futs := make([]jetstream.PubAckFuture, 0, len(vs))
	for _, v := range vs {
		f, err := s.js.PublishAsync(natsSubject, v)
		if err != nil {
			return err
		}
		futs = append(futs, f)
	}
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return errors.New("nats: async publishes not acknowledged after 1 minute")
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	return nil
}

func (s *natsStore) Scan(fn func(v []byte)) error {
	ctx := context.Background()
	st, err := s.js.Stream(ctx, natsStream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	return natsRead(ctx, s.js, info.State.Msgs, func(v []byte) bool { fn(v); return true })
}

// natsRead reads the stream from its start with an ordered consumer until n
// messages were read (n < 0: until fn returns false) or ctx ends.
func natsRead(ctx context.Context, js jetstream.JetStream, n uint64, fn func(v []byte) bool) error {
	if n == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, natsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for read := uint64(0); read != n; read++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("nats: after %d messages: %w", read, err)
		}
		if !fn(m.Data()) {
			return nil
		}
	}
	return nil
}

func (s *natsStore) Close() error {
	if s.nc != nil {
		s.nc.Close()
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	return nil
}

type natsTail struct {
	js jetstream.JetStream
}

func openNATSTail(cfg config) (tailer, func() error, error) {
	nc, err := nats.Connect(cfg.Attach)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return natsTail{js}, func() error { nc.Close(); return nil }, nil
}

func (t natsTail) Tail(ctx context.Context, fn func(v []byte) bool) error {
	return natsRead(ctx, t.js, ^uint64(0), fn)
}
