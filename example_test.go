package runnel_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
)

// The quickstart: open a log, create a topic, send records, read them back.
func Example() {
	dir, _ := os.MkdirTemp("", "runnel-example-")
	defer os.RemoveAll(dir)

	l, err := runnel.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("events", runnel.TopicConfig{Partitions: 1}); err != nil {
		log.Fatal(err)
	}

	p, _ := l.Producer("events", nil)
	ctx := context.Background()
	for _, v := range []string{"signed up", "logged in", "logged out"} {
		pos, err := p.Send(ctx, runnel.Record{Key: []byte("user-1"), Value: []byte(v)})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("stored at offset", pos.Offset)
	}

	c, _ := l.Consumer("events", &runnel.ConsumerOptions{Start: runnel.Earliest})
	defer c.Close()
	recs, err := c.Poll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("%d %s: %s\n", r.Offset, r.Key, r.Value)
	}
	// Output:
	// stored at offset 0
	// stored at offset 1
	// stored at offset 2
	// 0 user-1: signed up
	// 1 user-1: logged in
	// 2 user-1: logged out
}

// Records offers a consumer as an iterator that waits for new records.
func ExampleConsumer_Records() {
	dir, _ := os.MkdirTemp("", "runnel-example-")
	defer os.RemoveAll(dir)
	l, _ := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	defer l.Close()
	l.CreateTopic("jobs", runnel.TopicConfig{Partitions: 1})

	p, _ := l.Producer("jobs", nil)
	for _, job := range []string{"resize", "thumbnail", "publish"} {
		p.SendAsync(runnel.Record{Value: []byte(job)}, nil)
	}
	p.Flush(context.Background())

	c, _ := l.Consumer("jobs", nil)
	defer c.Close()
	n := 0
	for r, err := range c.Records(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Offset, string(r.Value))
		if n++; n == 3 {
			break
		}
	}
	// Output:
	// 0 resize
	// 1 thumbnail
	// 2 publish
}

// newExampleLog opens a log in a fresh temporary directory with a topic of
// one partition; cleanup removes both.
func newExampleLog(topic string) (l *runnel.Log, cleanup func()) {
	dir, err := os.MkdirTemp("", "runnel-example-")
	if err != nil {
		log.Fatal(err)
	}
	l, err = runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: 1}); err != nil {
		log.Fatal(err)
	}
	return l, func() {
		l.Close()
		os.RemoveAll(dir)
	}
}

// A worker in consumer group "workers": it handles each batch Poll
// returns, then commits it. Run several such processes and they share the
// topic's partitions; if one dies, the others take over from its last
// commit.
func ExampleConsumer_Commit() {
	l, cleanup := newExampleLog("jobs")
	defer cleanup()
	p, _ := l.Producer("jobs", nil)
	for _, job := range []string{"resize", "thumbnail", "publish"} {
		p.SendAsync(runnel.Record{Value: []byte(job)}, nil)
	}
	p.Flush(context.Background())

	ctx := context.Background()
	c, err := l.Consumer("jobs", &runnel.ConsumerOptions{Group: "workers", DisableAutoCommit: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for handled := 0; handled < 3; {
		recs, err := c.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range recs {
			fmt.Println("handling", string(r.Value))
			handled++
		}
		// Everything Poll returned is handled: commit it.
		if err := c.Commit(ctx); err != nil {
			log.Fatal(err)
		}
	}
	info, _ := l.DescribeGroup("workers")
	part := info.Topics[0].Partitions[0]
	fmt.Printf("committed %d, lag %d\n", part.Committed, part.Lag)
	// Output:
	// handling resize
	// handling thumbnail
	// handling publish
	// committed 3, lag 0
}

// A pool of workers that finish jobs in any order. Each marks what it
// finished; CommitMarked commits only up to the first job still in hand,
// so a crash never loses one. (ConsumerOptions.AutoCommitMarks does the
// committing instead, every AutoCommitInterval and at Close.)
func ExampleConsumer_MarkRecords() {
	l, cleanup := newExampleLog("jobs")
	defer cleanup()
	p, _ := l.Producer("jobs", nil)
	for i := range 10 {
		p.SendAsync(runnel.Record{Value: fmt.Appendf(nil, "job %d", i)}, nil)
	}
	p.Flush(context.Background())

	ctx := context.Background()
	c, err := l.Consumer("jobs", &runnel.ConsumerOptions{Group: "workers", DisableAutoCommit: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	jobs := make(chan runnel.Record)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range jobs {
				// ... handle r ...
				c.MarkRecords(r) // from any goroutine
			}
		}()
	}
	recs, err := c.Poll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		// A record's bytes are valid until the next Poll: hand a worker
		// a copy if it may need them longer. MarkRecords needs only
		// Partition and Offset.
		r.Value = bytes.Clone(r.Value)
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	if err := c.CommitMarked(ctx); err != nil {
		log.Fatal(err)
	}
	info, _ := l.DescribeGroup("workers")
	fmt.Println("committed", info.Topics[0].Partitions[0].Committed)
	// Output:
	// committed 10
}

// SendAsync returns at once and calls back when the record is stored;
// Flush waits for every record sent before it.
func ExampleProducer_SendAsync() {
	l, cleanup := newExampleLog("events")
	defer cleanup()
	p, _ := l.Producer("events", nil)
	var mu sync.Mutex
	var stored []int64
	for _, v := range []string{"a", "b", "c"} {
		p.SendAsync(runnel.Record{Value: []byte(v)}, func(pos runnel.Position, err error) {
			if err != nil {
				log.Print(err)
				return
			}
			mu.Lock()
			stored = append(stored, pos.Offset)
			mu.Unlock()
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored at", stored) // every callback has run
	// Output:
	// stored at [0 1 2]
}

// A consumer can start at a time: at the first record whose timestamp is
// at or after it.
func ExampleAtTime() {
	l, cleanup := newExampleLog("readings")
	defer cleanup()
	p, _ := l.Producer("readings", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, v := range []string{"18.5", "18.9", "19.4", "19.1"} {
		at := start.Add(time.Duration(i) * time.Hour)
		p.SendAsync(runnel.Record{Value: []byte(v), Time: at}, nil)
	}
	p.Flush(context.Background())

	from := time.Date(2026, 3, 1, 13, 30, 0, 0, time.UTC)
	c, _ := l.Consumer("readings", &runnel.ConsumerOptions{Start: runnel.AtTime(from)})
	defer c.Close()
	recs, err := c.Poll(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Println(r.Time.UTC().Format(time.Kitchen), string(r.Value))
	}
	// Output:
	// 2:00PM 19.4
	// 3:00PM 19.1
}

// Verify reads every frame and index and names the file and byte of any
// damage; it may run while other processes use the log.
func ExampleLog_Verify() {
	l, cleanup := newExampleLog("audit")
	defer cleanup()
	p, _ := l.Producer("audit", nil)
	for range 100 {
		p.SendAsync(runnel.Record{Value: []byte("login")}, nil)
	}
	p.Flush(context.Background())

	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		log.Fatal(err) // could not check: I/O, ctx
	}
	for _, part := range rep.Partitions {
		fmt.Printf("%s/%d: %d records, offsets %d to %d\n", part.Topic, part.Partition, part.Records, part.StartOffset, part.NextOffset)
	}
	for _, prob := range rep.Problems {
		fmt.Println(prob) // file, byte position, offset and what is wrong
	}
	fmt.Println("ok:", rep.OK())
	// Output:
	// audit/0: 100 records, offsets 0 to 100
	// ok: true
}
