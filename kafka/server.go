package kafka

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel"
)

// Server serves the Kafka protocol over one runnel Log: a one-broker
// cluster (node 0) that leads every partition of every topic in the
// directory. It is one more user of the Log: producers and consumers in
// this and other processes keep working on the same directory.
type Server struct {
	log       *runnel.Log
	opts      Options
	clusterID string
	pids      *pidAllocator
	topics    topicCache
	seqs      producerStates
	groups    *coordinator
	stats     serverStats

	// ctx ends at Shutdown: it cuts long polls and group waits short, so
	// that in-flight requests finish promptly.
	ctx    context.Context
	cancel context.CancelFunc

	waitingFetches atomic.Int64 // fetches asleep for data: for tests

	resumeOnce sync.Once // the first Serve loads the groups' state (group_resume.go)

	closing   atomic.Bool
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup
	// following counts the produced batches that wait for their
	// producer's previous one (produce.go): they may still send.
	following sync.WaitGroup
	shutOnce  sync.Once
	shutErr   error
}

// NewServer returns a server for l; Serve makes it listen. The Log stays
// the caller's: close it after Shutdown.
func NewServer(l *runnel.Log, opts *Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	id, err := loadClusterID(l.Dir())
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:       l,
		opts:      o,
		clusterID: id,
		pids:      newPIDAllocator(l.Dir()),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}
	s.topics.init(l)
	s.seqs.init()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.groups = newCoordinator(s)
	return s, nil
}

// Serve is the whole life of a server in one call: it serves l on ln
// until ctx ends, then shuts down gracefully (see Server.Shutdown) and
// returns nil, or the error that stopped it first.
func Serve(ctx context.Context, l *runnel.Log, ln net.Listener, opts *Options) error {
	s, err := NewServer(l, opts)
	if err != nil {
		ln.Close()
		return err
	}
	return s.ServeContext(ctx, ln)
}

// ServeContext serves on ln until ctx ends, then shuts down gracefully
// (see Shutdown) and returns nil, or the error that stopped it first: the
// life of Serve for a server made with NewServer, so that the caller can
// hold it (for its Stats) while it runs.
func (s *Server) ServeContext(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Shutdown(shutCtx)
	<-errc
	return err
}

// ClusterID returns the cluster id, persisted in the directory.
func (s *Server) ClusterID() string { return s.clusterID }

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, when it returns ErrServerClosed. It closes ln.
// The first Serve first resumes the Kafka groups that the last server at
// the address (Options.Advertise, or else ln's) kept, so that their
// members' clients heartbeat on (see the package doc, Groups).
func (s *Server) Serve(ln net.Listener) error {
	s.resumeOnce.Do(func() { s.resumeGroups(ln.Addr().String()) })
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.opts.Logger.Warn("kafka: accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		s.stats.connsAccepted.Add(1)
		go func() {
			defer s.connWG.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops the server gracefully: it stops accepting, lets every
// request in flight finish (long-polling fetches and group joins return
// early), closes each connection once its request is answered (one whose
// request has not arrived whole, a client stalled inside it, at once), and then
// has every Kafka group member leave its runnel groups, releasing their
// partitions. If ctx ends first, the remaining connections are closed
// at once. Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

// Close is Shutdown without the grace: connections are closed at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Shutdown(ctx)
}

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.wakeIdle()
	}
	s.mu.Unlock()
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.following.Wait()
	return errors.Join(err, s.groups.close(), s.topics.close())
}

// Stats is a snapshot of a server's counters, for metrics.
type Stats struct {
	ConnectionsAccepted int64
	ConnectionsOpen     int64
	Requests            int64 // answered (and acks=0 produce) requests
	RequestErrors       int64 // of those, the ones with an error code
	ProducedRecords     int64 // records stored by Produce
	ProducedBytes       int64 // record batch bytes received by Produce
	FetchedRecords      int64 // records returned by Fetch
	FetchedBytes        int64 // record batch bytes returned by Fetch
	// DuplicateBatches counts idempotent producers' retries answered with
	// the offsets of the batch already stored, instead of stored again.
	DuplicateBatches int64
	// JournalMismatches counts retries that a stopped server's producer
	// journal named but the log did not hold (stored anew): what a server
	// killed between a batch's entry and its commit leaves, or a power
	// loss when entries reach the disk and frames not.
	JournalMismatches int64

	// RequestsByAPI counts answered requests by API and error code.
	RequestsByAPI []RequestCount
}

type serverStats struct {
	connsAccepted, connsOpen, requests, requestErrors atomic.Int64
	producedRecords, producedBytes                    atomic.Int64
	fetchedRecords, fetchedBytes                      atomic.Int64
	duplicateBatches, journalMismatches               atomic.Int64
	byAPI                                             requestCounts
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	return Stats{
		ConnectionsAccepted: st.connsAccepted.Load(),
		ConnectionsOpen:     st.connsOpen.Load(),
		Requests:            st.requests.Load(),
		RequestErrors:       st.requestErrors.Load(),
		ProducedRecords:     st.producedRecords.Load(),
		ProducedBytes:       st.producedBytes.Load(),
		FetchedRecords:      st.fetchedRecords.Load(),
		FetchedBytes:        st.fetchedBytes.Load(),
		DuplicateBatches:    st.duplicateBatches.Load(),
		JournalMismatches:   st.journalMismatches.Load(),
		RequestsByAPI:       st.byAPI.load(),
	}
}

// adminWait bounds how long an admin request waits for other processes'
// locks when it names no timeout of its own (AlterConfigs).
const adminWait = 30 * time.Second

// adminContext is the context an admin request waits for other processes
// under: until the request's timeout (adminWait if it has none) or the
// server's shutdown.
func (s *Server) adminContext(timeoutMillis int32) (context.Context, context.CancelFunc) {
	wait := adminWait
	if timeoutMillis > 0 {
		wait = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(s.ctx, wait)
}
