package kafka

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIdempotentProducerThroughCrashes: a franz-go idempotent producer
// streams numbered records into two partitions while the server processes
// under it are killed (SIGKILL), one after another, each holding back the
// answers to batches it stored, so that every kill leaves batches the
// producer must retry against the next server on the same directory and
// address. At the end every record is in the log once, and each partition
// holds the producer's records in the order sent. Each server is killed
// either holding back a request's answers, once its batches are
// acknowledged, or at the commit of its first idempotent batch, before
// anything else of it is done.
func TestIdempotentProducerThroughCrashes(t *testing.T) {
	t.Run("answer-held", func(t *testing.T) {
		testProducerThroughCrashes(t, func(file string) string { return childHoldEnv + "=" + file })
	})
	t.Run("at-commit", func(t *testing.T) {
		testProducerThroughCrashes(t, func(file string) string { return childStallEnv + "=committed:" + file })
	})
}

// testProducerThroughCrashes is TestIdempotentProducerThroughCrashes with
// each server killed once it creates the file that killAt's environment
// setting names.
func testProducerThroughCrashes(t *testing.T, killAt func(file string) string) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("crash", runnel.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	hold := func(k int) string { return fmt.Sprintf("%s/held-%d", t.TempDir(), k) }
	held := hold(0)
	server := startChild(t, "server", dir, killAt(held))
	addr := server.addr
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("crash"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(20*time.Millisecond), kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const n, kills = 3000, 5
	var (
		mu    sync.Mutex
		acked int
		errs  []error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			// Keys nil and empty, and headers, which a retry's
			// check of the log compares too.
			r := &kgo.Record{Partition: int32(i % 2), Value: []byte(strconv.Itoa(i)),
				Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}}
			if i%3 == 0 {
				r.Key = []byte{}
			}
			cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked++
				}
				mu.Unlock()
				wg.Done()
			})
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // a stream, not one burst
			}
		}
		wg.Wait()
	}()
	progress := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}
	// stored counts the records in the log, retries stored twice too.
	stored := func() int {
		total := 0
		for p := range 2 {
			_, end, err := l.PartitionOffsets("crash", p)
			if err != nil {
				t.Fatal(err)
			}
			total += int(end)
		}
		return total
	}
	for k := range kills {
		// Or killed once every record is stored: a server stopped at a
		// commit may have taken the rest of the stream, in larger
		// batches, before it stopped, and the next gets only retries.
		waitFor(t, fmt.Sprintf("server %d to stop where it is killed", k+1), func() bool {
			_, err := os.Stat(held)
			return err == nil || stored() >= n
		})
		server.kill()
		server.cmd.Wait()
		env := []string{childListenEnv + "=" + addr}
		if k < kills-1 {
			held = hold(k + 1)
			env = append(env, killAt(held))
		}
		server = startChild(t, "server", dir, env...)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d of %d records acknowledged after 2 minutes", progress(), n)
	}
	if len(errs) > 0 {
		t.Fatalf("%d records failed, the first: %v", len(errs), errs[0])
	}

	recs := readNative(t, l, "crash", stored())
	seen := map[int]int{}
	last := map[int]int{0: -1, 1: -1}
	dups := 0
	for _, r := range recs {
		v, err := strconv.Atoi(string(r.Value))
		if err != nil || v%2 != r.Partition {
			t.Fatalf("record %q at %d/%d", r.Value, r.Partition, r.Offset)
		}
		if seen[v]++; seen[v] > 1 {
			dups++
			continue
		}
		if v <= last[r.Partition] {
			t.Errorf("partition %d: %d after %d, out of the order sent", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
	}
	var missing []string
	for i := range n {
		if seen[i] == 0 {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged records missing: %s", len(missing), strings.Join(missing[:min(10, len(missing))], " "))
	}
	if dups > 0 {
		t.Errorf("%d records stored twice over %d kills", dups, kills)
	}
}
