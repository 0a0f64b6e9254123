package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestServiceServesKafka(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, t.TempDir(), "127.0.0.1:0", func(a string) { addrc <- a }, pw)
		pw.Close()
	}()
	addr := <-addrc

	// A Kafka client reads the service's orders...
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	var got []*kgo.Record
	for len(got) == 0 && pctx.Err() == nil {
		got = cl.PollFetches(pctx).Records()
	}
	if len(got) == 0 || !strings.HasPrefix(string(got[0].Value), "order ") {
		t.Fatalf("orders read over Kafka: %v", got)
	}

	// ...and sends it a payment, which the service prints.
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "payments", Key: []byte("ada"), Value: []byte("paid 3.20")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "payment from ada: paid 3.20\n" {
		t.Fatalf("service printed %q (%v)", line, err)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
