package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testServer is a server on a loopback port over a fresh Log.
type testServer struct {
	t    testing.TB
	log  *runnel.Log
	srv  *Server
	addr string
	logs *syncBuffer
}

// syncBuffer collects the server's log lines for tests that check them.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServer serves a Log in a temporary directory; opts may be nil.
// Everything is shut down when the test ends.
func startServer(t testing.TB, opts *Options) *testServer {
	t.Helper()
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, l, opts)
}

func startServerOn(t testing.TB, l *runnel.Log, opts *Options) *testServer {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	logs := &syncBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := NewServer(l, &o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ts := &testServer{t: t, log: l, srv: srv, addr: ln.Addr().String(), logs: logs}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Log.Close: %v", err)
		}
	})
	return ts
}

// client returns a franz-go client of the server, closed with the test.
func (ts *testServer) client(opts ...kgo.Opt) *kgo.Client {
	ts.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr)}, opts...)...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(cl.Close)
	return cl
}

func (ts *testServer) createTopic(name string, partitions int) {
	ts.t.Helper()
	if err := ts.log.CreateTopic(name, runnel.TopicConfig{Partitions: partitions}); err != nil {
		ts.t.Fatal(err)
	}
}

// readNative reads n records of topic with the Go API, from the start.
func readNative(t *testing.T, l *runnel.Log, topic string, n int) []runnel.Record {
	t.Helper()
	c, err := l.Consumer(topic, &runnel.ConsumerOptions{Start: runnel.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []runnel.Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("reading %s after %d of %d records: %v", topic, len(out), n, err)
		}
		for _, r := range recs {
			out = append(out, detach(r))
		}
	}
	if recs, _ := c.TryPoll(); len(recs) > 0 {
		t.Fatalf("%s holds more than %d records: %d more at offset %d", topic, n, len(recs), recs[0].Offset)
	}
	return out
}

// detach copies a record out of a consumer's buffer.
func detach(r runnel.Record) runnel.Record {
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte{}, b...)
	}
	out := r
	out.Key, out.Value = cp(r.Key), cp(r.Value)
	out.Headers = nil
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, runnel.Header{Key: h.Key, Value: cp(h.Value)})
	}
	return out
}

// rawConn speaks the protocol by hand, for requests clients never send.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func (ts *testServer) raw() *rawConn {
	ts.t.Helper()
	return dialRaw(ts.t, ts.addr)
}

// dialRaw connects to the server at addr; the test's end closes it.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// writeFrame sends one size-prefixed frame as is.
func (rc *rawConn) writeFrame(body []byte) {
	rc.t.Helper()
	if err := rc.tryWriteFrame(body); err != nil {
		rc.t.Fatal(err)
	}
}

// tryWriteFrame is writeFrame for a request the server may refuse by
// closing the connection before it has read all of it: the write then
// fails (a reset), which the caller expects.
func (rc *rawConn) tryWriteFrame(body []byte) error {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err := rc.nc.Write(append(frame, body...))
	return err
}

// request sends req at its version and decodes the response.
func (rc *rawConn) request(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	rc.send(req)
	resp, err := rc.read(req)
	if err != nil {
		rc.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// send sends req at its version; read reads its response.
func (rc *rawConn) send(req kmsg.Request) {
	rc.t.Helper()
	if err := rc.trySend(req); err != nil {
		rc.t.Fatal(err)
	}
}

// trySend is send, returning the write's error (tryWriteFrame).
func (rc *rawConn) trySend(req kmsg.Request) error {
	rc.corr++
	var body []byte
	body = kbin.AppendInt16(body, req.Key())
	body = kbin.AppendInt16(body, req.GetVersion())
	body = kbin.AppendInt32(body, rc.corr)
	body = kbin.AppendNullableString(body, kmsg.StringPtr("raw-test"))
	if req.IsFlexible() {
		body = append(body, 0)
	}
	body = req.AppendTo(body)
	return rc.tryWriteFrame(body)
}

func (rc *rawConn) read(req kmsg.Request) (kmsg.Response, error) {
	return rc.readCorr(req, rc.corr)
}

// readCorr reads the response to req, which was sent with correlation
// id corr: of requests in flight together, the earliest unanswered.
func (rc *rawConn) readCorr(req kmsg.Request, corr int32) (kmsg.Response, error) {
	rc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.nc, buf); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		rc.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	buf = buf[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		buf = buf[1:] // no tagged fields in the header
	}
	return resp, resp.ReadFrom(buf)
}

// closed reports whether the server closed the connection.
func (rc *rawConn) closed() bool {
	rc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := rc.nc.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func logsContain(ts *testServer, s string) bool { return strings.Contains(ts.logs.String(), s) }
