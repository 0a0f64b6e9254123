// Command multiprocess shows runnel's multi-process model: it starts itself
// as several producer processes and one consumer process, all on one log
// directory and one partition, with no daemon between them, and prints
// what each saw.
//
//	go run ./examples/multiprocess
//	go run ./examples/multiprocess -producers 8 -records 50000
//
// The producers take turns at the partition's writer lock (a byte-range
// lock the kernel releases if a producer dies); the consumer sleeps in the
// kernel until one of them appends. Each record's value names its producer
// and sequence number, so the consumer can check that every producer's
// records arrive in the order they were sent.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
)

const topic = "jobs"

// The role and its arguments travel in the environment of the child.
const (
	envRole = "RUNNEL_EXAMPLE_ROLE" // "producer" or "consumer"
	envDir  = "RUNNEL_EXAMPLE_DIR"
	envID   = "RUNNEL_EXAMPLE_ID" // producer number
	envN    = "RUNNEL_EXAMPLE_N"  // records per producer (producer), in all (consumer)
)

func main() {
	log.SetFlags(0)
	switch os.Getenv(envRole) {
	case "producer":
		produce()
		return
	case "consumer":
		consume()
		return
	}
	producers := flag.Int("producers", 4, "producer processes")
	records := flag.Int("records", 25_000, "records per producer")
	flag.Parse()

	dir, err := os.MkdirTemp("", "runnel-multiprocess-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := runnel.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: 1}); err != nil {
		log.Fatal(err)
	}
	l.Close() // this process only starts the others
	fmt.Printf("log in %s: %d producer processes × %d records, 1 consumer process, 1 partition\n\n", dir, *producers, *records)

	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	start := func(role string, env ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), append([]string{envRole + "=" + role, envDir + "=" + dir}, env...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		return cmd, &out
	}

	began := time.Now()
	consumer, consumerOut := start("consumer", envN+"="+strconv.Itoa(*producers**records))
	var wg sync.WaitGroup
	outs := make([]*bytes.Buffer, *producers)
	failed := false
	var mu sync.Mutex
	for i := range *producers {
		cmd, out := start("producer", envID+"="+strconv.Itoa(i), envN+"="+strconv.Itoa(*records))
		outs[i] = out
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
				fmt.Fprintf(out, "exited: %v\n", err)
			}
		})
	}
	wg.Wait()
	if err := consumer.Wait(); err != nil {
		failed = true
		fmt.Fprintf(consumerOut, "exited: %v\n", err)
	}
	for i, out := range outs {
		printIndented(fmt.Sprintf("producer %d", i), out)
	}
	printIndented("consumer", consumerOut)
	fmt.Printf("all processes done in %v\n", time.Since(began).Round(time.Millisecond))
	if failed {
		os.Exit(1)
	}
}

func printIndented(title string, out *bytes.Buffer) {
	fmt.Println(title + ":")
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		fmt.Println("  " + line)
	}
	fmt.Println()
}

// produce sends this producer's records and reports what was acknowledged.
func produce() {
	id, _ := strconv.Atoi(os.Getenv(envID))
	n, _ := strconv.Atoi(os.Getenv(envN))
	// Buffered: acknowledged once committed in the page cache, visible to
	// every process and safe from a crash of this one. The default,
	// Durable, would add a shared fdatasync per batch.
	l, err := runnel.Open(os.Getenv(envDir), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	p, err := l.Producer(topic, nil)
	if err != nil {
		log.Fatal(err)
	}
	first, last := int64(-1), int64(-1)
	var acked int
	var sendErr error
	began := time.Now()
	for seq := range n {
		rec := runnel.Record{Key: []byte("producer-" + strconv.Itoa(id)), Value: fmt.Appendf(nil, "%d/%d", id, seq)}
		// Callbacks run in send order on one goroutine, after the
		// record is committed.
		p.SendAsync(rec, func(pos runnel.Position, err error) {
			if err != nil {
				sendErr = err
				return
			}
			if first < 0 {
				first = pos.Offset
			}
			last = pos.Offset
			acked++
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	if sendErr != nil {
		log.Fatal(sendErr)
	}
	took := time.Since(began)
	fmt.Printf("pid %d sent %d records in %v (%.0f/s)\n", os.Getpid(), n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	fmt.Printf("acknowledged %d, offsets %d … %d (interleaved with the other producers)\n", acked, first, last)
}

// consume reads until it has every record and checks each producer's order.
func consume() {
	want, _ := strconv.Atoi(os.Getenv(envN))
	l, err := runnel.Open(os.Getenv(envDir), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	c, err := l.Consumer(topic, &runnel.ConsumerOptions{Start: runnel.Earliest})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type seen struct {
		count      int
		next       int // next sequence number expected
		firstOff   int64
		lastOff    int64
		outOfOrder int
	}
	per := map[int]*seen{}
	got, polls := 0, 0
	first, last := int64(-1), int64(-1)
	gaps := 0
	for got < want {
		recs, err := c.Poll(ctx) // sleeps until a producer appends
		if err != nil {
			log.Fatalf("after %d records: %v", got, err)
		}
		polls++
		for _, r := range recs {
			if last >= 0 && r.Offset != last+1 {
				gaps++
			}
			if first < 0 {
				first = r.Offset
			}
			last = r.Offset
			var id, seq int
			if _, err := fmt.Sscanf(string(r.Value), "%d/%d", &id, &seq); err != nil {
				log.Fatalf("offset %d: value %q", r.Offset, r.Value)
			}
			s := per[id]
			if s == nil {
				s = &seen{firstOff: r.Offset}
				per[id] = s
			}
			if seq != s.next {
				s.outOfOrder++
			}
			s.next = seq + 1
			s.count++
			s.lastOff = r.Offset
			got++
		}
	}
	fmt.Printf("pid %d read %d records in %d polls, offsets %d … %d, %d gaps\n", os.Getpid(), got, polls, first, last, gaps)
	for id := range len(per) {
		s := per[id]
		if s == nil {
			continue
		}
		order := "in order"
		if s.outOfOrder > 0 || s.next != s.count {
			order = fmt.Sprintf("NOT in order (%d breaks)", s.outOfOrder)
		}
		fmt.Printf("producer %d: %d records, offsets %d … %d, sequence 0 … %d %s\n", id, s.count, s.firstOff, s.lastOff, s.next-1, order)
	}
}
