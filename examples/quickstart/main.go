// Command quickstart shows runnel's basics: open a log, create a topic,
// produce records and read them back.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/runnel-log/runnel"
)

func main() {
	dir, err := os.MkdirTemp("", "runnel-quickstart-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// One directory holds the whole log. Any number of processes may open
	// it at once; nil options mean durable appends with group commit.
	l, err := runnel.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	if err := l.CreateTopic("orders", runnel.TopicConfig{Partitions: 3}); err != nil {
		log.Fatal(err)
	}

	p, err := l.Producer("orders", nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// Records with the same key go to the same partition, in order.
	for i, customer := range []string{"ada", "grace", "ada", "linus", "grace", "ada"} {
		pos, err := p.Send(ctx, runnel.Record{
			Key:   []byte(customer),
			Value: []byte(fmt.Sprintf("order #%d", i+1)),
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("sent    %-5s order #%d -> partition %d offset %d\n", customer, i+1, pos.Partition, pos.Offset)
	}

	// Read everything from the start; Poll waits for records and returns
	// what is available.
	c, err := l.Consumer("orders", &runnel.ConsumerOptions{Start: runnel.Earliest})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for read := 0; read < 6; {
		recs, err := c.Poll(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range recs {
			fmt.Printf("read    %-5s %s (partition %d offset %d)\n", r.Key, r.Value, r.Partition, r.Offset)
			read++
		}
	}

	info, err := l.DescribeTopic("orders")
	if err != nil {
		log.Fatal(err)
	}
	for _, pi := range info.Partitions {
		fmt.Printf("partition %d: offsets %d..%d, %d bytes in %d segment(s)\n",
			pi.Partition, pi.StartOffset, pi.NextOffset, pi.Bytes, pi.Segments)
	}
	fmt.Printf("backend: %s\n", l.Stats().Backend)
}
