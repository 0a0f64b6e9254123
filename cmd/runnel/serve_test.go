package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startServe starts runnel serve on the log in dir, on a port of the
// loopback, and returns it and the address it serves.
func startServe(t *testing.T, dir string) (*background, string) {
	t.Helper()
	b := startBackground(t, dir, "serve", "-listen", "127.0.0.1:0", "-durability", "buffered")
	var first string
	select {
	case first = <-b.lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve printed nothing: %s", b.stderr.String())
	}
	addr := first[strings.LastIndex(first, " ")+1:]
	if !strings.HasPrefix(first, "serving ") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("first line %q", first)
	}
	return b, addr
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	b, addr := startServe(t, dir)

	// Kafka in, runnel consume out.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("from kafka")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := must(t, dir, "", "consume", "t", "-from-beginning", "-format", "json", "-n", "1")
	if !strings.Contains(out, `"key":"k","value":"from kafka"`) {
		t.Fatalf("runnel consume: %s", out)
	}

	// runnel produce in, a Kafka group member out; its commits show in
	// "runnel groups describe".
	must(t, dir, "from runnel\n", "produce", "t")
	gc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("cli"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	var values []string
	for len(values) < 2 {
		fs := gc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %v", values)
		}
		for _, r := range fs.Records() {
			values = append(values, string(r.Value))
		}
	}
	if err := gc.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	out = must(t, dir, "", "groups", "describe", "cli")
	if !strings.Contains(out, "kafka/") {
		t.Errorf("groups describe does not show the Kafka member:\n%s", out)
	}
	// A forced reset under the live Kafka member is done, with a warning
	// that the member will not see it.
	if r := runIn(t, dir, "", "groups", "reset", "cli", "t", "-to-earliest", "-force"); r.code != 0 || !strings.Contains(r.stderr, "warning: Kafka member kafka/") {
		t.Errorf("groups reset -force under a Kafka member: exit %d, stderr %q", r.code, r.stderr)
	}
	gc.Close()
	cl.Close()

	if code := b.interrupt(t); code != 0 {
		t.Fatalf("serve exited %d after Ctrl-C: %s", code, b.stderr.String())
	}
	// The members left: nothing is owned any more; the commits stay.
	out = must(t, dir, "", "groups", "describe", "cli")
	if strings.Contains(out, "kafka/") {
		t.Errorf("a Kafka member is still in the group after the server stopped:\n%s", out)
	}
}

func TestServeScramLine(t *testing.T) {
	line := must(t, t.TempDir(), "hunter2\n", "serve", "-scram-line", "bob")
	lines := strings.Split(strings.TrimSpace(line), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "bob:scram-sha-256:4096:") ||
		!strings.HasPrefix(lines[1], "bob:scram-sha-512:4096:") || strings.Contains(line, "hunter2") {
		t.Fatalf("scram lines %q", line)
	}
	if _, err := kafka.ParseCredentials(strings.NewReader(line)); err != nil {
		t.Fatal(err)
	}
}
