package runnel_test

import (
	"context"
	"fmt"
	"log"
	"os"

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
