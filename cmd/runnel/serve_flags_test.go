package main

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/testcert"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// The warning runnel serve logs when it listens beyond this machine
// without credentials.
const openWarning = "listening beyond this machine without -credentials"

// serveAddr waits for runnel serve's first line and returns the loopback
// address of its port (it may listen on every address).
func serveAddr(t *testing.T, b *background) string {
	t.Helper()
	select {
	case first := <-b.lines:
		_, port, err := net.SplitHostPort(first[strings.LastIndex(first, " ")+1:])
		if !strings.HasPrefix(first, "serving ") || err != nil {
			t.Fatalf("first line %q", first)
		}
		return net.JoinHostPort("127.0.0.1", port)
	case <-time.After(30 * time.Second):
		t.Fatal("serve printed nothing")
	}
	return ""
}

// TestServeFlags: runnel serve's flags take effect. -tls-cert with
// -tls-key serves TLS (and one without the other is a usage error),
// -credentials requires SASL, -auto-create-topics makes topics of
// -partitions partitions, -max-partitions bounds CreateTopics; listening
// beyond loopback is warned about without -credentials only.
func TestServeFlags(t *testing.T) {
	dir := t.TempDir()
	failing(t, runIn(t, dir, "", "serve", "-tls-cert", "cert.pem"), 2, "-tls-cert and -tls-key go together")

	files := t.TempDir()
	cert, pool := testcert.New(t)
	certFile, keyFile := testcert.WriteKeyPair(t, files, cert)
	creds := filepath.Join(files, "users")
	if err := os.WriteFile(creds, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBackground(t, dir, "serve", "-listen", "0.0.0.0:0", "-durability", "buffered",
		"-tls-cert", certFile, "-tls-key", keyFile, "-credentials", creds,
		"-auto-create-topics", "-partitions", "3", "-max-partitions", "4")
	addr := serveAddr(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}),
		kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce over TLS with SASL to an auto-created topic: %v", err)
	}
	if out := must(t, dir, "", "topics", "list", "-format", "json"); !strings.Contains(out, `{"name":"auto","partitions":3}`) {
		t.Errorf("auto-created topic: %s", out)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "wide", NumPartitions: 5, ReplicationFactor: 1}}
	resp, err := create.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Errorf("CreateTopics of 5 partitions with -max-partitions 4: %v, want INVALID_PARTITIONS", kerr.ErrorForCode(code))
	}
	// Without SASL the server answers nothing but the handshake.
	bare, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}),
		kgo.RecordRetries(1), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := bare.ProduceSync(bctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err == nil {
		t.Error("a client without SASL produced")
	}
	bcancel()
	bare.Close()
	cl.Close()
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	if strings.Contains(b.stderr.String(), openWarning) {
		t.Errorf("warned with -credentials given: %s", b.stderr.String())
	}

	b = startBackground(t, dir, "serve", "-listen", "0.0.0.0:0", "-durability", "buffered")
	serveAddr(t, b)
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	if !strings.Contains(b.stderr.String(), openWarning) {
		t.Errorf("no warning for listening beyond loopback without -credentials: %s", b.stderr.String())
	}
}

// TestServeTLSFilesNamed: a -tls-cert or -tls-key that is not what it
// should be is refused with an error naming the file: swapped, tls says
// only "certificate input"; a file far larger than any PEM file is not
// read whole.
func TestServeTLSFilesNamed(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	cert, _ := testcert.New(t)
	certFile, keyFile := testcert.WriteKeyPair(t, files, cert)
	failing(t, runIn(t, dir, "", "serve", "-listen", "127.0.0.1:0", "-tls-cert", keyFile, "-tls-key", certFile), 1, keyFile)
	huge := filepath.Join(files, "huge.pem")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 2*maxPEMFile); err != nil {
		t.Fatal(err)
	}
	failing(t, runIn(t, dir, "", "serve", "-listen", "127.0.0.1:0", "-tls-cert", huge, "-tls-key", keyFile), 1, huge+" is more than")
}
