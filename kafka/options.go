package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/runnel-log/runnel"
)

// Options configure a Server. A nil *Options, and every zero field, means
// the documented default. NewServer copies the struct.
type Options struct {
	// Advertise is the host:port that Metadata and FindCoordinator give
	// clients for the one broker, node 0. Default: the local address of
	// the connection asking, which is right unless clients reach the
	// server through an address it does not see (NAT, a proxy, a
	// container's port mapping).
	Advertise string

	// AutoCreateTopics creates a topic that a Metadata request (with
	// auto-creation allowed, as producers ask) or a Produce names and
	// that does not exist, with DefaultPartitions partitions. Default
	// false: unknown topics get UNKNOWN_TOPIC_OR_PARTITION.
	AutoCreateTopics bool

	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it to the broker (-1). Default 1.
	DefaultPartitions int
	// MaxPartitions bounds the partitions one CreateTopics request may
	// ask for, over all its topics (INVALID_PARTITIONS for a topic past
	// it). Each partition is a directory, and the server allocates about
	// 2.6 KiB to create one (1.3 KiB of it kept while the topic is open),
	// so without a bound a 36-byte request could make it create 65,536 of
	// them, the most a runnel topic has.
	// Default 1024; topics created through the Go API or the runnel
	// command are not bound by it. DefaultPartitions may not exceed it.
	MaxPartitions int

	// MaxRequestBytes bounds one request. A larger one closes its
	// connection, with a log line, before anything is allocated for it.
	// Default 100 MiB (Kafka's socket.request.max.bytes). With
	// Credentials set, a request read before its connection has
	// authenticated is bounded at 512 KiB (or this, if less), as Kafka's
	// sasl.server.max.receive.size.
	MaxRequestBytes int

	// MaxMessageBytes bounds one produced record batch as it arrives
	// (compressed); a larger one gets MESSAGE_TOO_LARGE. Default 1048588,
	// Kafka's max.message.bytes since 1.1 (1 MiB and a batch's 12-byte log
	// overhead, to take what the Java producer's max.request.size lets it
	// send). Uncompressed, a batch must also fit
	// in one runnel frame (runnel.MaxFrameBytes, 32 MiB), and each of its
	// records within the Log's MaxRecordBytes.
	MaxMessageBytes int

	// MaxFetchBytes bounds the record batches of one Fetch response, over
	// all its partitions, whatever the request's MaxBytes asks (the first
	// record is sent even when larger, so that a consumer always moves
	// on). Default 57671680, 55 MiB (Kafka's fetch.max.bytes); clients'
	// defaults ask for 50 MiB.
	MaxFetchBytes int
	// IdleTimeout closes a connection on which no request arrived for
	// this long. Default 10 minutes (Kafka's connections.max.idle.ms);
	// negative: never.
	IdleTimeout time.Duration

	// TLS, if set, makes every connection a TLS server connection.
	TLS *tls.Config

	// Credentials, if set, require every connection to authenticate with
	// SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) as one of these users
	// before any request other than ApiVersions and the SASL handshake.
	// Default nil: no authentication. Without TLS, PLAIN sends the
	// password in clear.
	Credentials *Credentials

	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// group member may ask for (INVALID_SESSION_TIMEOUT outside them).
	// Defaults 6 seconds and 30 minutes, as Kafka's
	// group.min/max.session.timeout.ms. A member's session timeout is
	// also the lease its partitions keep when the server dies or shuts
	// down (see the package doc, Groups), at most runnel.MaxLease.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// InitialRebalanceDelay is how long the first join to an empty group
	// waits for more members before it completes, so that members
	// starting together share one rebalance. Default 0 (Kafka's default
	// is 3s, which mostly slows down tests and small deployments).
	InitialRebalanceDelay time.Duration

	// Logger receives connection errors (malformed or oversized requests,
	// failed authentication) and group events. Default: discard.
	Logger *slog.Logger

	// OnRequest, if set, is called after every request is answered (or,
	// for acks=0 produce, handled), on the connection's goroutine: the
	// hook for metrics. It must not block.
	OnRequest func(RequestEvent)
}

// RequestEvent describes one handled request, for Options.OnRequest.
type RequestEvent struct {
	APIKey    int16
	API       string // Kafka's name, e.g. "Produce"
	Version   int16
	ErrorCode int16 // the first non-zero error code in the response, or 0
	Duration  time.Duration
	BytesIn   int // request size
	BytesOut  int // response size; 0 when there is none
}

// MemberNamePrefix begins the runnel member name (runnel.Log.DescribeGroup)
// of each Kafka group member the server joins to a runnel group; the Kafka
// member id follows it.
const MemberNamePrefix = "kafka/"

// DefaultMaxPartitions is Options.MaxPartitions when it is zero, and the
// default of runnel serve -max-partitions.
const DefaultMaxPartitions = 1024

const (
	defaultMaxRequestBytes   = 100 << 20
	defaultMaxMessageBytes   = 1048588
	defaultMaxFetchBytes     = 55 << 20
	defaultIdleTimeout       = 10 * time.Minute
	defaultMinSessionTimeout = 6 * time.Second
	defaultMaxSessionTimeout = 30 * time.Minute

	// maxDecodedBatch bounds a produced batch after decompression: the
	// largest frame runnel stores, which the batch must become.
	maxDecodedBatch = runnel.MaxFrameBytes
)

// withDefaults validates o and returns a copy with the defaults filled in.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	switch {
	case c.DefaultPartitions < 0 || c.MaxPartitions < 0:
		return c, fmt.Errorf("%w: negative partition count", errInvalidOption)
	case c.MaxRequestBytes < 0 || c.MaxMessageBytes < 0 || c.MaxFetchBytes < 0:
		return c, fmt.Errorf("%w: negative size limit", errInvalidOption)
	case c.MinSessionTimeout < 0 || c.MaxSessionTimeout < 0 || c.InitialRebalanceDelay < 0:
		return c, fmt.Errorf("%w: negative group timeout", errInvalidOption)
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || p <= 0 || p > 65535 {
			return c, fmt.Errorf("%w: Advertise %q is not host:port", errInvalidOption, c.Advertise)
		}
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.MaxPartitions == 0 {
		c.MaxPartitions = DefaultMaxPartitions
	}
	if c.DefaultPartitions > c.MaxPartitions {
		return c, fmt.Errorf("%w: DefaultPartitions %d above MaxPartitions %d", errInvalidOption, c.DefaultPartitions, c.MaxPartitions)
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = defaultMaxRequestBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = defaultMaxFetchBytes
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = defaultMinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = defaultMaxSessionTimeout
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		return c, fmt.Errorf("%w: MinSessionTimeout %v above MaxSessionTimeout %v", errInvalidOption, c.MinSessionTimeout, c.MaxSessionTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// boundSession is the session timeout d within MinSessionTimeout and
// MaxSessionTimeout: d itself, or the nearer bound. JoinGroup refuses a
// d it changes (INVALID_SESSION_TIMEOUT), as Kafka does; a resumed
// group's member is given it (group_resume.go).
func (o *Options) boundSession(d time.Duration) time.Duration {
	return min(max(d, o.MinSessionTimeout), o.MaxSessionTimeout)
}

var errInvalidOption = errors.New("kafka: invalid option")
