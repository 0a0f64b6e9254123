package kafka

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/testcert"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func testCredentials(t testing.TB) *Credentials {
	t.Helper()
	stored, err := ScramLine("bob", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := ScramLine("carol", "only256")
	if err != nil {
		t.Fatal(err)
	}
	carol256, _, _ := strings.Cut(carol, "\n") // SCRAM-SHA-256's keys alone
	creds, err := ParseCredentials(strings.NewReader("# users\nalice:s3cret:with:colons\n" + stored + "\n" + carol256 + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func TestSASL(t *testing.T) {
	ts := startServer(t, &Options{Credentials: testCredentials(t)})
	ts.createTopic("s", 1)
	produce := func(opts ...kgo.Opt) error {
		// A refused client fails a record after its second metadata
		// attempt, which waits out MetadataMinAge (5 s by default).
		cl := ts.client(append(opts, kgo.DefaultProduceTopic("s"), kgo.RecordRetries(1), kgo.RetryTimeout(2*time.Second),
			kgo.MetadataMinAge(50*time.Millisecond))...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	for _, tc := range []struct {
		name string
		mech kgo.Opt
		ok   bool
	}{
		{"plain", kgo.SASL(plain.Auth{User: "alice", Pass: "s3cret:with:colons"}.AsMechanism()), true},
		{"plain wrong password", kgo.SASL(plain.Auth{User: "alice", Pass: "nope"}.AsMechanism()), false},
		{"scram (stored key)", kgo.SASL(scram.Auth{User: "bob", Pass: "hunter2"}.AsSha256Mechanism()), true},
		{"scram (hashed at load)", kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret:with:colons"}.AsSha256Mechanism()), true},
		{"scram wrong password", kgo.SASL(scram.Auth{User: "bob", Pass: "hunter3"}.AsSha256Mechanism()), false},
		{"scram unknown user", kgo.SASL(scram.Auth{User: "eve", Pass: "x"}.AsSha256Mechanism()), false},
		{"scram-512 (stored key)", kgo.SASL(scram.Auth{User: "bob", Pass: "hunter2"}.AsSha512Mechanism()), true},
		{"scram-512 (hashed at load)", kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret:with:colons"}.AsSha512Mechanism()), true},
		{"scram-512 wrong password", kgo.SASL(scram.Auth{User: "bob", Pass: "hunter3"}.AsSha512Mechanism()), false},
		{"scram-512 for a user with SHA-256 keys only", kgo.SASL(scram.Auth{User: "carol", Pass: "only256"}.AsSha512Mechanism()), false},
		{"scram-256 for that user", kgo.SASL(scram.Auth{User: "carol", Pass: "only256"}.AsSha256Mechanism()), true},
		{"plain for that user", kgo.SASL(plain.Auth{User: "carol", Pass: "only256"}.AsMechanism()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := produce(tc.mech)
			if tc.ok && err != nil {
				t.Fatalf("produce: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("produce succeeded with bad credentials")
			}
		})
	}
	// Without SASL, only ApiVersions is answered.
	rc := ts.raw()
	av := kmsg.NewPtrApiVersionsRequest()
	rc.request(av)
	rc.corr++
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 1
	var body []byte
	body = append(body, 0, 3, 0, 1, 0, 0, 0, byte(rc.corr), 0xff, 0xff)
	rc.writeFrame(md.AppendTo(body))
	if !rc.closed() {
		t.Fatal("unauthenticated Metadata was answered")
	}
	waitFor(t, "the log line", func() bool { return logsContain(ts, "Metadata before SASL authentication") })
}

// tlsServer starts a server that takes TLS only, with SASL when creds is
// set, and returns it with the path of a PEM file of the CA that signed its
// certificate, for clients in other languages.
func tlsServer(t *testing.T, creds *Credentials) (ts *testServer, caFile string) {
	t.Helper()
	cert, _ := testcert.New(t)
	ts = startServer(t, &Options{
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Credentials: creds,
	})
	return ts, testcert.WriteCA(t, t.TempDir(), cert)
}

func TestTLSWithSCRAM(t *testing.T) {
	cert, pool := testcert.New(t)
	ts := startServer(t, &Options{
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Credentials: testCredentials(t),
	})
	ts.createTopic("tls", 1)
	cl := ts.client(
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}),
		kgo.SASL(scram.Auth{User: "bob", Pass: "hunter2"}.AsSha256Mechanism()),
		kgo.DefaultProduceTopic("tls"),
	)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("secret")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := readNative(t, ts.log, "tls", 1)
	if string(got[0].Value) != "secret" {
		t.Fatalf("stored %q", got[0].Value)
	}
	// A plaintext client gets nowhere.
	plainCl := ts.client(kgo.DefaultProduceTopic("tls"), kgo.RecordRetries(1), kgo.RetryTimeout(time.Second),
		kgo.MetadataMinAge(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := plainCl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("a plaintext client produced to a TLS server")
	}
}

func TestCredentialsFileErrors(t *testing.T) {
	for _, bad := range []string{
		"",
		"nocolon\n",
		"a:x\na:y\n",
		"a:scram-sha-256:10:c2FsdA==:AAAA:AAAA\n",
		"a:scram-sha-256:4096:!!:AAAA:AAAA\n",
		// SHA-512's keys are 64 bytes: SHA-256's 32 are refused.
		"a:scram-sha-512:4096:c2FsdA==:" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "=\n",
		// A user by password has every hash's keys: a stored line too is twice.
		"a:x\na:scram-sha-256:4096:c2FsdA==:" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "=\n",
	} {
		if _, err := ParseCredentials(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseCredentials(%q) succeeded", bad)
		}
	}
}

// TestSASLHandshakeV0: after a v0 SaslHandshake (kafka-python 2's), the
// exchange is raw tokens, a size and bytes with no header, each answered
// the same way; then requests follow. A failure closes the connection.
func TestSASLHandshakeV0(t *testing.T) {
	ts := startServer(t, &Options{Credentials: testCredentials(t)})
	ts.createTopic("s", 1)
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
		ok   bool
	}{
		{"plain", plain.Auth{User: "alice", Pass: "s3cret:with:colons"}.AsMechanism(), true},
		{"plain wrong password", plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(), false},
		{"scram", scram.Auth{User: "bob", Pass: "hunter2"}.AsSha256Mechanism(), true},
		{"scram wrong password", scram.Auth{User: "bob", Pass: "hunter3"}.AsSha256Mechanism(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := ts.raw()
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 0, tc.mech.Name()
			if code := rc.request(hs).(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
				t.Fatalf("v0 handshake: %v", kerr.ErrorForCode(code))
			}
			session, msg, err := tc.mech.Authenticate(context.Background(), ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			for done := false; !done; {
				rc.writeFrame(msg)
				var size [4]byte
				rc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
					if tc.ok {
						t.Fatalf("reading the server's token: %v", err)
					}
					return // refused: the connection closed
				}
				challenge := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(rc.nc, challenge); err != nil {
					t.Fatal(err)
				}
				if done, msg, err = session.Challenge(challenge); err != nil {
					t.Fatalf("the server's token: %v", err)
				}
			}
			if !tc.ok {
				t.Fatal("a wrong password was accepted")
			}
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 1
			if resp := rc.request(md).(*kmsg.MetadataResponse); len(resp.Topics) != 1 {
				t.Fatalf("metadata after authenticating: %+v", resp.Topics)
			}
		})
	}
}

// TestUnauthenticatedRequestBound: before SASL authentication, a request
// is bounded at 512 KiB, as Kafka bounds it, whatever MaxRequestBytes
// allows an authenticated client: a connection anyone can open must not
// have the server allocate 100 MiB. The same request is answered by a
// server that asks for no authentication.
func TestUnauthenticatedRequestBound(t *testing.T) {
	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 7, 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "nowhere"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = make([]byte, 600<<10)
	rt.Partitions = append(rt.Partitions, rp)
	produce.Topics = append(produce.Topics, rt)

	open := startServer(t, nil).raw()
	resp := open.request(produce).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("without SASL: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}

	ts := startServer(t, &Options{Credentials: testCredentials(t)})
	rc := ts.raw()
	rc.request(kmsg.NewPtrApiVersionsRequest()) // small requests are answered
	// The server closes the connection once it has read the request's
	// size, maybe while the rest is still being written: the write may
	// fail with a reset, and the connection is closed either way.
	rc.trySend(produce)
	if !rc.closed() {
		t.Fatal("a request of 600 KiB before authentication did not close its connection")
	}
	waitFor(t, "the log line naming the 512 KiB bound", func() bool { return logsContain(ts, "max=524288") })
}
