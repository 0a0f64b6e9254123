package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStubBrokerRoundTrip: what franz-go produces to the stub broker,
// compressed or not, a consumer reads back, all of it and in order, in
// fetches the stub cuts at the client's byte limits and at its chunks'
// ends; and a stub started on the same directory after the first one
// saved serves it too.
func TestStubBrokerRoundTrip(t *testing.T) {
	defer func(was int) { stubChunk = was }(stubChunk)
	stubChunk = 8 << 10
	dir := t.TempDir()
	const n = 5000
	serveStub := func() (*stubBroker, string) {
		b, err := newStubBroker(dir)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go b.serve(ln)
		t.Cleanup(func() { ln.Close() })
		return b, ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first, addr := serveStub()
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.SnappyCompression()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(runnelTopic), kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(2000))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n / 2 {
			cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "value %d", i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	want := func(i int) string { return fmt.Sprintf("value %d", i%(n/2)) }
	consumeAll := func(addr string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(runnelTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(20000))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		got := 0
		for got < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("after %d records: %v", got, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(got) || string(r.Value) != want(got) {
					t.Fatalf("record %d: offset %d, value %q; want %q", got, r.Offset, r.Value, want(got))
				}
				got++
			})
		}
	}
	consumeAll(addr)

	if err := first.save(); err != nil {
		t.Fatal(err)
	}
	_, addr = serveStub()
	consumeAll(addr)
}
