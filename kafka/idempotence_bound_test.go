package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProducerStatesBounded: past maxProducers, the producers used
// longest ago are forgotten (their next batch is taken as is, as a
// producer's the server never knew), and one in use is kept however early
// it came.
func TestProducerStatesBounded(t *testing.T) {
	defer func(n int) { maxProducers = n }(maxProducers)
	maxProducers = 64
	var ps producerStates
	ps.init()
	tp := topicPartition{topic: "t"}
	store := func(pid int64, seq int32) {
		t.Helper()
		b, dup, code := ps.begin(pid, 0, tp, seq, 1)
		if dup || code != 0 {
			t.Fatalf("producer %d seq %d: dup %v code %d", pid, seq, dup, code)
		}
		ps.finish(b, int64(seq), 0)
	}
	const busy = 1 << 40 // sends a batch between every two new producers
	for i := range 1000 {
		store(int64(i), 0)
		store(busy, int32(i))
		if n := len(ps.m); n > maxProducers {
			t.Fatalf("after %d producers, state for %d, over the bound %d", i+1, n, maxProducers)
		}
	}
	if _, dup, _ := ps.begin(busy, 0, tp, 999, 1); !dup {
		t.Error("the producer in use all along was forgotten: its retry is not a duplicate")
	}
	if _, dup, _ := ps.begin(999, 0, tp, 0, 1); !dup {
		t.Error("the newest producer was forgotten: its retry is not a duplicate")
	}
	if _, dup, code := ps.begin(0, 0, tp, 5, 1); dup || code != 0 {
		t.Errorf("the first producer, forgotten, sent seq 5: dup %v code %d, want it taken as is", dup, code)
	}
}

// TestProducerIdleExpiry: a producer idle past the expiry is a producer
// the server does not know, as in Kafka: its next batch is taken as is,
// and the server takes over stopped servers' journals for it.
func TestProducerIdleExpiry(t *testing.T) {
	var ps producerStates
	ps.init()
	tp := topicPartition{topic: "t"}
	b, _, _ := ps.begin(7, 0, tp, 0, 1)
	ps.finish(b, 0, 0)
	if !ps.knows(7, tp) {
		t.Fatal("a producer just used is not known")
	}
	if _, _, code := ps.begin(7, 0, tp, 42, 1); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("a gap while in use: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	ps.m[7].lastUsed = time.Now().Add(-producerIdleExpiry - time.Minute)
	if ps.knows(7, tp) {
		t.Error("a producer idle past the expiry is still known")
	}
	if _, dup, code := ps.begin(7, 0, tp, 42, 1); dup || code != 0 {
		t.Errorf("after the expiry, seq 42: dup %v code %d, want it taken as is", dup, code)
	}
}

// TestInitProducerIDKeepsNoState: InitProducerId hands out ids without
// keeping state for them (a producer's state begins with its first
// batch), so a client asking in a loop does not grow the server.
func TestInitProducerIDKeepsNoState(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	for range 200 {
		rc.initProducer()
	}
	ts.srv.seqs.mu.Lock()
	n := len(ts.srv.seqs.m)
	ts.srv.seqs.mu.Unlock()
	if n != 0 {
		t.Errorf("after 200 InitProducerId requests, state for %d producers, want none", n)
	}
}
