package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// appendFailure is how the core fails an append it cut without storing
// it (a full disk, say), after which the partition takes appends again.
// Clients are told KAFKA_STORAGE_ERROR, which they retry.
var appendFailure = fmt.Errorf("runnel: append to 00000000000000000000.log at byte 0: %w", syscall.ENOSPC)

// lastingFailure fails an append with an error clients are told as
// UNKNOWN_SERVER_ERROR, which they do not retry.
var lastingFailure = errors.New("runnel: a failure that is not the disk's")

// setAppendHook installs testHookAppend for a test. Call it before the
// server starts (so that the server's goroutines see it) and it is
// removed after the server stops.
func setAppendHook(t *testing.T, h func(tp topicPartition, first int32) <-chan error) {
	t.Helper()
	testHookAppend = h
	t.Cleanup(func() { testHookAppend = nil })
}

// waitClosed waits until ch is closed.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// readProduce reads the answer to produce request req sent with
// correlation id corr, and returns its one partition's code and offset.
func readProduce(t *testing.T, rc *rawConn, req *kmsg.ProduceRequest, corr int32) (int16, int64) {
	t.Helper()
	resp, err := rc.readCorr(req, corr)
	if err != nil {
		t.Fatal(err)
	}
	return produceCode(t, resp)
}

// TestIdempotentSuccessorOfFailedBatch: a producer's batch B that arrives
// while the append of its predecessor A is in flight is stored only if A
// is. When A's append fails, B gets OUT_OF_ORDER_SEQUENCE_NUMBER, as
// Kafka's broker answers it (its sequence check is made at append time,
// after A's), and the client's retries of A and then B are stored in that
// order. (B was stored with A missing, and the retry of A refused.)
func TestIdempotentSuccessorOfFailedBatch(t *testing.T) {
	failA := make(chan error, 1)
	begunB := make(chan struct{})
	var calls atomic.Int32
	setAppendHook(t, func(_ topicPartition, _ int32) <-chan error {
		switch calls.Add(1) {
		case 1:
			return failA
		case 2:
			close(begunB)
		}
		return nil
	})
	ts := startServer(t, nil)
	ts.createTopic("seq", 1)
	rc := ts.raw()
	pid, epoch := rc.initProducer()

	a, b := produceBatch("seq", 0, pid, epoch, 0, "a", 9), produceBatch("seq", 0, pid, epoch, 1, "b", 9)
	rc.send(a)
	corrA := rc.corr
	rc.send(b)
	corrB := rc.corr
	waitClosed(t, "B to be taken", begunB)
	failA <- appendFailure
	if code, _ := readProduce(t, rc, a, corrA); code != kerr.KafkaStorageError.Code {
		t.Fatalf("A, whose append failed for a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if code, _ := readProduce(t, rc, b, corrB); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("B, sent while A's append was in flight, after A failed: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(code))
	}

	// The client retries both, in order.
	for i, v := range []string{"a", "b"} {
		code, off := produceCode(t, rc.request(produceBatch("seq", 0, pid, epoch, int32(i), v, 9)))
		if code != 0 || off != int64(i) {
			t.Fatalf("the retry of %s: %v at offset %d, want offset %d", v, kerr.ErrorForCode(code), off, i)
		}
	}
	if got := values(readNative(t, ts.log, "seq", 2)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("the log holds %q, want a then b", got)
	}
}

// failBehind has a franz-go producer send record w, then A and B, B in
// flight while A's append is held, and fails A's append with failure. It
// returns the server, the client and what franz-go told of A and of B.
func failBehind(t *testing.T, failure error) (ts *testServer, cl *kgo.Client, errA, errB error) {
	failA := make(chan error, 1)
	begunA, begunB := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	setAppendHook(t, func(_ topicPartition, _ int32) <-chan error {
		switch calls.Add(1) {
		case 2:
			close(begunA)
			return failA
		case 3:
			close(begunB)
		}
		return nil
	})
	ts = startServer(t, nil)
	ts.createTopic("seq", 1)
	// A retried batch waits for a metadata refresh, which waits out
	// MetadataMinAge (5 s by default).
	cl = ts.client(kgo.DefaultProduceTopic("seq"), kgo.MetadataMinAge(50*time.Millisecond))
	ctx := context.Background()

	// franz-go sends one request at a time to a broker until its first
	// answer; then up to five.
	if err := cl.ProduceSync(ctx, kgo.StringRecord("w")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	gotA, gotB := make(chan error, 1), make(chan error, 1)
	cl.Produce(ctx, kgo.StringRecord("a"), func(_ *kgo.Record, err error) { gotA <- err })
	waitClosed(t, "A to be taken", begunA)
	cl.Produce(ctx, kgo.StringRecord("b"), func(_ *kgo.Record, err error) { gotB <- err })
	waitClosed(t, "B to be taken", begunB)
	failA <- failure
	return ts, cl, <-gotA, <-gotB
}

// TestIdempotentFailedBatchFranzGo: franz-go, when a batch fails for good
// (UNKNOWN_SERVER_ERROR is not retried), fails every record buffered or
// in flight for the partition and carries on at a new epoch; the records
// of the batch it had in flight behind the failed one must then not be
// in the log. (They were stored, and an application that sent them again
// would have had them twice.)
func TestIdempotentFailedBatchFranzGo(t *testing.T) {
	ts, cl, errA, errB := failBehind(t, lastingFailure)
	if errA == nil {
		t.Error("A, whose append failed, was acknowledged")
	}
	// franz-go's answer for B is its own: the test is the log.
	if err := cl.ProduceSync(context.Background(), kgo.StringRecord("c")).FirstErr(); err != nil {
		t.Fatalf("a record after the failure: %v", err)
	}
	want := []string{"w", "c"}
	if errB == nil {
		want = []string{"w", "b", "c"}
	}
	if got := values(readNative(t, ts.log, "seq", len(want))); !slices.Equal(got, want) {
		t.Errorf("the log holds %q, want %q (B's outcome told the client: %v)", got, want, errB)
	}
}

// TestIdempotentFullDiskRetried: an append that fails for a full disk is
// KAFKA_STORAGE_ERROR, which franz-go retries, with the batch it had in
// flight behind it: once the disk takes them, both are acknowledged and
// stored once each, in order. (The disk's errors were
// UNKNOWN_SERVER_ERROR, which clients give up on at once.)
func TestIdempotentFullDiskRetried(t *testing.T) {
	ts, _, errA, errB := failBehind(t, appendFailure)
	if errA != nil {
		t.Errorf("A, whose first append met a full disk: %v, want it retried and stored", errA)
	}
	if errB != nil {
		t.Errorf("B, in flight behind A: %v, want it retried and stored", errB)
	}
	want := []string{"w", "a", "b"}
	if got := values(readNative(t, ts.log, "seq", len(want))); !slices.Equal(got, want) {
		t.Errorf("the log holds %q, want %q", got, want)
	}
}

// values returns the records' values as strings.
func values(recs []runnel.Record) []string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return vs
}

// TestIdempotentRetryOfBatchInFlight: a retry of a batch whose first
// attempt is still being stored (its request timed out) waits for that
// attempt and is answered with its outcome; the batch is stored once.
func TestIdempotentRetryOfBatchInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome error
	}{{"stored", nil}, {"failed", appendFailure}} {
		t.Run(tc.name, func(t *testing.T) {
			hold := make(chan error, 1)
			var calls atomic.Int32
			setAppendHook(t, func(_ topicPartition, _ int32) <-chan error {
				if calls.Add(1) == 1 {
					return hold
				}
				return nil
			})
			ts := startServer(t, nil)
			ts.createTopic("seq", 1)
			rc := ts.raw()
			pid, epoch := rc.initProducer()

			a := produceBatch("seq", 0, pid, epoch, 0, "a", 9)
			a.TimeoutMillis = 100 // A is held until the retry below waits for it
			if code, _ := produceCode(t, rc.request(a)); code != kerr.RequestTimedOut.Code {
				t.Fatalf("A while held: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
			}
			retry := produceBatch("seq", 0, pid, epoch, 0, "a", 9)
			rc.send(retry)
			waitFor(t, "the retry to wait for A", func() bool { return ts.srv.Stats().DuplicateBatches == 1 })
			hold <- tc.outcome
			code, off := readProduce(t, rc, retry, rc.corr)
			if tc.outcome != nil {
				if code == 0 {
					t.Fatalf("the retry of A, whose append failed: acknowledged at %d", off)
				}
				// The client retries again: now it is stored.
				code, off = produceCode(t, rc.request(produceBatch("seq", 0, pid, epoch, 0, "a", 9)))
			}
			if code != 0 || off != 0 {
				t.Fatalf("the retry of A: %v at offset %d, want offset 0", kerr.ErrorForCode(code), off)
			}
			if code, off := produceCode(t, rc.request(produceBatch("seq", 0, pid, epoch, 1, "b", 9))); code != 0 || off != 1 {
				t.Fatalf("B: %v at offset %d, want offset 1", kerr.ErrorForCode(code), off)
			}
			if got := values(readNative(t, ts.log, "seq", 2)); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("the log holds %q, want a then b", got)
			}
		})
	}
}

// TestProducerStatesFollowers: a batch begun while the producer's previous
// one is still being stored follows it (prev); when that one fails without
// being stored, every batch begun behind it fails at once, however many,
// and its retry is taken where it was; one that committed and failed after
// (its fdatasync) is forgotten alone.
func TestProducerStatesFollowers(t *testing.T) {
	ooo := kerr.OutOfOrderSequenceNumber.Code
	tp := topicPartition{topic: "t"}
	for _, tc := range []struct {
		followers int
		window    bool // the window keeps a stored batch before them
	}{{2, true}, {seqWindow + 2, false}} {
		followers := tc.followers
		t.Run(fmt.Sprintf("followers=%d", followers), func(t *testing.T) {
			var ps producerStates
			ps.init()
			first, _, _ := ps.begin(1, 0, tp, 0, 1)
			first.stored()
			ps.finish(first, 0, 0)
			a, _, _ := ps.begin(1, 0, tp, 1, 1)
			if a.prev != nil {
				t.Fatal("a batch behind a stored one waits for it")
			}
			var behind []*seqBatch
			for i := range followers {
				b, dup, code := ps.begin(1, 0, tp, int32(2+i), 1)
				if code != 0 || dup {
					t.Fatalf("follower %d: code %d dup %v", i, code, dup)
				}
				if want := append([]*seqBatch{a}, behind...)[i]; b.prev != want {
					t.Fatalf("follower %d does not follow the batch before it", i)
				}
				behind = append(behind, b)
			}
			ps.finish(a, 0, kerr.UnknownServerError.Code)
			for i, b := range behind {
				select {
				case <-b.decided:
				default:
					t.Fatalf("follower %d still pending after its predecessor failed", i)
				}
				if b.state.Load() != seqFailed {
					t.Errorf("follower %d: state %d, want failed", i, b.state.Load())
				}
			}
			if tc.window {
				// A follower's retry finds the gap.
				if _, _, code := ps.begin(1, 0, tp, 2, 1); code != ooo {
					t.Errorf("a follower's retry before the failed batch's: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
				}
			}
			r, dup, code := ps.begin(1, 0, tp, 1, 1)
			if code != 0 || dup || r.prev != nil {
				t.Fatalf("the failed batch's retry: code %d dup %v prev %v", code, dup, r.prev != nil)
			}
		})
	}

	t.Run("failed after commit", func(t *testing.T) {
		var ps producerStates
		ps.init()
		a, _, _ := ps.begin(1, 0, tp, 0, 1)
		b, _, _ := ps.begin(1, 0, tp, 1, 1)
		a.stored()
		ps.finish(a, 0, kerr.UnknownServerError.Code)
		if b.state.Load() != seqPending {
			t.Errorf("the batch behind one that committed: state %d, want still pending", b.state.Load())
		}
		if got, dup, _ := ps.begin(1, 0, tp, 1, 1); !dup || got != b {
			t.Error("the retry of the batch behind it is not answered like it")
		}
	})
}
