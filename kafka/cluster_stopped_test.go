package kafka

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pidReserverChildMain is a second server's producer-id allocator on
// directory childDirEnv caught inside its reservation: it takes the
// file's lock, prints "reserving", and stays there until it is killed.
func pidReserverChildMain() int {
	testHookReserving = func() {
		fmt.Println("reserving")
		select {}
	}
	if _, err := newPIDAllocator(os.Getenv(childDirEnv)).allocate(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// initProducerIDCode sends an InitProducerId request on a connection of
// its own, which no client retries, and returns the answer's error code.
func initProducerIDCode(ts *testServer) (int16, error) {
	rc := ts.raw()
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	if err := rc.trySend(init); err != nil {
		return 0, err
	}
	resp, err := rc.read(init)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.InitProducerIDResponse).ErrorCode, nil
}

// An InitProducerId is answered while another server on the directory is
// stopped (Ctrl-Z, SIGSTOP) or hung inside its reservation of a block of
// producer ids, holding kafka/producer-ids' lock: the reservation waited
// for that lock with a blocking flock, holding the allocator's mutex, so
// this request and every InitProducerId after it waited for as long as
// the other server was stopped. The answer is COORDINATOR_LOAD_IN_PROGRESS,
// as Kafka's broker answers while it waits for a block of ids, which
// clients retry: an idempotent franz-go producer's records go through
// once the other server lets go.
func TestInitProducerIDBehindStoppedReservation(t *testing.T) {
	defer func(w time.Duration) { pidReserveWait = w }(pidReserveWait)
	pidReserveWait = 200 * time.Millisecond
	ts := startServer(t, nil)
	ts.createTopic("t", 1)
	other := startChild(t, "pid-reserver", ts.log.Dir())
	t.Cleanup(other.kill) // before the wait for it, which a stopped child never ends
	if err := other.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Two at once: the second waited behind the first's reservation.
	codes := make(chan int16, 2)
	for range 2 {
		go func() {
			code, err := initProducerIDCode(ts)
			if err != nil {
				code = -2
				t.Error(err)
			}
			codes <- code
		}()
	}
	for range 2 {
		code, _ := inTime(t, "InitProducerId", func() (int16, error) { return <-codes, nil })
		if code != kerr.CoordinatorLoadInProgress.Code {
			t.Fatalf("InitProducerId behind a stopped reservation: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(code))
		}
	}

	cl := ts.client(kgo.DefaultProduceTopic("t"))
	produced := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		produced <- cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}()
	waitFor(t, "the producer's InitProducerId to be refused", func() bool {
		return refusedInits(ts) > 2 // the two above, and the producer's
	})
	other.kill()
	if err := <-produced; err != nil {
		t.Fatalf("idempotent produce once the other server is gone: %v", err)
	}
	if recs := readNative(t, ts.log, "t", 1); string(recs[0].Value) != "v" {
		t.Errorf("read %q", recs[0].Value)
	}
}

// refusedInits counts the InitProducerId requests the server answered
// COORDINATOR_LOAD_IN_PROGRESS.
func refusedInits(ts *testServer) int64 {
	for _, rc := range ts.srv.Stats().RequestsByAPI {
		if rc.APIKey == int16(kmsg.InitProducerID) && rc.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
			return rc.Count
		}
	}
	return 0
}

// inTime runs f, failing the test if it has not returned after a
// generous bound: the call it makes would otherwise wait for ever.
func inTime[T any](t *testing.T, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still waiting after 20s", what)
		var zero T
		return zero, nil
	}
}
