package kafka

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are handled one at a time, in
// order, and answered in order, as a Kafka broker does — with one
// exception that matters for throughput: a Produce is answered once its
// batches are acknowledged, but the next Produce is read and queued while
// the previous one is still being written and synced, so a client's
// in-flight requests share the wait. Any other request waits until every
// earlier one is answered.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	phase  atomic.Int32 // where it is in its loop: Shutdown cuts connWaiting and connReading

	clientID string
	sasl     saslState
	fetch    fetchSession
	scratch  batchScratch // produce decoding, on the reader

	in   *bufio.Reader // requests: the size and a small request in one read
	body []byte        // the last Produce request's buffer, reused for the next request

	queue chan *answer // to the writer, in request order
	last  *answer      // the latest queued
	out   []byte       // response buffer, reused by the writer
}

// answer is one request's response on its way to the client.
type answer struct {
	token   []byte // set for a raw SASL token (no header, no request)
	req     kmsg.Request
	corr    int32
	start   time.Time
	in      int
	resp    kmsg.Response // nil: none (acks=0 produce)
	wait    func()        // if set, the writer calls it before resp is complete
	written chan struct{} // closed once written (or dropped)
}

// maxKeptBuffer bounds a response buffer a connection keeps for the next
// response.
const maxKeptBuffer = 8 << 20

// readBufferSize is the buffer requests are read through: a small request
// and the size of the next arrive in one read; a larger body is read
// straight into its own buffer.
const readBufferSize = 16 << 10

// maxUnauthenticatedBytes bounds a request read before SASL
// authentication, as Kafka's sasl.server.max.receive.size does by default:
// ApiVersions and the SASL exchange need far less.
const maxUnauthenticatedBytes = 512 << 10

// maxInFlight bounds the requests a connection has read but not answered.
const maxInFlight = 32

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), queue: make(chan *answer, maxInFlight)}
}

// Where a connection is in its loop (conn.phase).
const (
	connStarting = iota // its TLS handshake, bounded by its own deadline: nc is not yet the one read
	connWaiting         // for the next request
	connReading         // a request whose size has arrived, not all of it yet
	connHandling        // a request read whole: it is answered
)

// wakeIdle ends the wait of a connection that is between requests, and
// the read of one whose client sent part of a request: a request is in
// flight only once it has arrived whole, and a client stalled inside one
// must not hold a shutdown up for its grace. A connection handling one,
// or still in its TLS handshake, notices the shutdown when it next waits.
func (c *conn) wakeIdle() {
	if p := c.phase.Load(); p == connWaiting || p == connReading {
		c.nc.SetReadDeadline(time.Now())
	}
}

// errCloseConn says the connection must close after a log line: the
// client broke the protocol.
var errCloseConn = errors.New("closing connection")

func (c *conn) serve() {
	s := c.s
	s.stats.connsOpen.Add(1)
	defer s.stats.connsOpen.Add(-1)
	defer c.nc.Close()
	defer c.fetch.close()
	if s.opts.TLS != nil {
		tc := tls.Server(c.nc, s.opts.TLS)
		c.nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.opts.Logger.Info("kafka: TLS handshake failed", "remote", c.remote, "err", err)
			return
		}
		c.nc.SetDeadline(time.Time{})
		c.nc = tc
	}
	c.in = bufio.NewReaderSize(c.nc, readBufferSize)
	c.sasl.required = s.opts.Credentials != nil
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.queue)
	<-written
}

// readLoop reads and handles requests until the client leaves, breaks the
// protocol, idles out, or the server shuts down.
func (c *conn) readLoop() {
	s := c.s
	var size [4]byte
	for {
		// The deadline first, then the check: Shutdown sets closing
		// before it cuts idle reads, so one of the two stops this read.
		c.phase.Store(connWaiting)
		if s.opts.IdleTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		if s.closing.Load() {
			return
		}
		if _, err := io.ReadFull(c.in, size[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !s.closing.Load() {
				s.opts.Logger.Info("kafka: closing idle connection", "remote", c.remote, "idle", s.opts.IdleTimeout)
			}
			return
		}
		c.phase.Store(connReading)
		n := int32(binary.BigEndian.Uint32(size[:]))
		// Key, version and correlation id are 8 bytes; anything else
		// is checked before a byte is allocated for it. A raw SASL token
		// (after a v0 handshake) has no header.
		least := int32(8)
		raw := c.sasl.raw
		if raw {
			least = 0
		}
		most := s.opts.MaxRequestBytes
		if c.sasl.required && !c.sasl.done {
			// Before it has authenticated, a connection is anyone's:
			// its requests are bounded as Kafka bounds them
			// (sasl.server.max.receive.size), not as an authenticated
			// client's, so that a stranger cannot have the server
			// allocate MaxRequestBytes per connection.
			most = min(most, maxUnauthenticatedBytes)
		}
		if n < least || int64(n) > int64(most) {
			s.opts.Logger.Warn("kafka: request size out of bounds; closing connection", "remote", c.remote, "size", n, "max", most)
			return
		}
		body, err := readBody(c.in, c.body, int(n))
		c.body = nil
		if err != nil {
			s.opts.Logger.Info("kafka: connection ended inside a request", "remote", c.remote, "err", err)
			return
		}
		c.phase.Store(connHandling)
		if raw {
			err = c.rawSASL(body)
		} else {
			err = c.handle(body)
		}
		// A Produce keeps nothing of its request once handled (its
		// batches are copied into frames), so its buffer serves the
		// next request; any other request may keep slices of it.
		if !raw && int16(binary.BigEndian.Uint16(body)) == kmsg.Produce.Int16() && cap(body) <= maxKeptBuffer {
			c.body = body
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Warn("kafka: "+err.Error(), "remote", c.remote)
			}
			return
		}
		if c.sasl.failed {
			return // the failure is answered; then the connection ends
		}
	}
}

// firstBodyChunk is what a request's buffer starts at when the one kept
// from the last Produce is too small for it.
const firstBodyChunk = 64 << 10

// readBody reads a request of n bytes into buf if it is large enough, else
// into a buffer that grows as the bytes arrive, doubling from
// firstBodyChunk: a client that sends a request's size and stalls (or
// sends it slowly) holds the bytes it sent, not the size it claimed, up to
// MaxRequestBytes (100 MiB) per connection. Growing costs at most one copy
// of the request, and a Produce's buffer is kept for the next one.
func readBody(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	if cap(buf) < firstBodyChunk {
		buf = make([]byte, 0, min(n, firstBodyChunk))
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, 2*cap(buf))-len(buf))
		}
		got, err := io.ReadFull(r, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+got]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// writeLoop writes the answers in order, waiting for each to complete.
// After a failed write it only drains the queue: the connection is closed
// for the reader to notice.
func (c *conn) writeLoop() {
	var failed bool
	for a := range c.queue {
		if a.wait != nil {
			a.wait()
		}
		if !failed {
			if err := c.reply(a); err != nil {
				failed = true
				c.nc.Close()
			}
		}
		close(a.written)
	}
}

// enqueue hands an answer to the writer.
func (c *conn) enqueue(a *answer) {
	a.written = make(chan struct{})
	c.last = a
	c.queue <- a
}

// barrier waits until every queued answer is written: requests other than
// Produce are handled in strict order after everything before them.
func (c *conn) barrier() {
	if c.last != nil {
		<-c.last.written
	}
}

// handle decodes one request, answers it and writes the answer.
func (c *conn) handle(body []byte) error {
	start := time.Now()
	r := kbin.Reader{Src: body}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	if id := r.NullableString(); id != nil {
		c.clientID = *id
	}
	req := kmsg.RequestForKey(key)
	spec, known := apis[key]
	if req == nil || !known {
		return fmt.Errorf("%w: unsupported API key %d", errCloseConn, key)
	}
	if key == kmsg.ApiVersions.Int16() && version > spec.max || version < 0 || version > req.MaxVersion() {
		if key != kmsg.ApiVersions.Int16() {
			return fmt.Errorf("%w: %s version %d is beyond what the decoder knows", errCloseConn, kmsg.NameForKey(key), version)
		}
		// A client newer than the server: answer v0 with the error and
		// the supported versions, and it retries with one of them.
		req.SetVersion(0)
		c.barrier()
		c.enqueue(&answer{req: req, corr: corr, start: start, in: len(body), resp: c.apiVersions(nil, kerrUnsupportedVersion)})
		return nil
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return fmt.Errorf("%w: request header cut short", errCloseConn)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return fmt.Errorf("%w: malformed %s v%d request: %v", errCloseConn, kmsg.NameForKey(key), version, err)
	}
	if err := c.sasl.allow(key); err != nil {
		return err
	}
	a := &answer{req: req, corr: corr, start: start, in: len(body)}
	if pr, ok := req.(*kmsg.ProduceRequest); ok && version >= spec.min && version <= spec.max {
		// Pipelined: queued now, answered once acknowledged.
		a.resp, a.wait = c.produce(pr)
		c.enqueue(a)
		return nil
	}
	c.barrier()
	var err error
	if version < spec.min || version > spec.max {
		a.resp, err = unsupportedVersion(req)
	} else {
		a.resp, err = c.dispatch(req)
	}
	if err != nil {
		return err
	}
	c.enqueue(a)
	return nil
}

// reply writes an answer's response (none for acks=0 produce) and reports
// the request to the stats and the OnRequest hook. It runs on the writer.
// The stats count the request before its response is written, so a client
// that has its answer and then reads the metrics finds its request there.
func (c *conn) reply(a *answer) error {
	s, req, resp := c.s, a.req, a.resp
	if a.token != nil { // its size, then the token, in one write
		_, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(a.token))), a.token...))
		return err
	}
	var b []byte
	var code int16
	if resp != nil {
		b = append(c.out[:0], 0, 0, 0, 0)
		b = kbin.AppendInt32(b, a.corr)
		// ApiVersions answers with header v0 even when flexible, so that
		// a client that does not know the server yet can read it.
		if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
			b = append(b, 0) // no tagged fields
		}
		b = resp.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		code = firstErrorCode(resp)
	}
	s.stats.requests.Add(1)
	if code != 0 {
		s.stats.requestErrors.Add(1)
	}
	s.stats.byAPI.note(req.Key(), code)
	if b != nil {
		if _, err := c.nc.Write(b); err != nil {
			return err
		}
		if cap(b) <= maxKeptBuffer {
			c.out = b // keep a buffer that fetches fill; drop a huge one
		}
	}
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(RequestEvent{
			APIKey: req.Key(), API: kmsg.NameForKey(req.Key()), Version: req.GetVersion(),
			ErrorCode: code, Duration: time.Since(a.start), BytesIn: a.in + 4, BytesOut: len(b),
		})
	}
	return nil
}
