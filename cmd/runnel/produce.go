package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runnel-log/runnel"
)

// maxLine is the longest line produce takes: runnel's largest record.
const maxLine = 16 << 20

func init() {
	var (
		keySep     string
		partition  int
		durability string
	)
	register(&command{
		name:    "produce",
		args:    "TOPIC [-key-sep SEP] [-partition N] [-durability durable|buffered]",
		summary: "append one record per line of standard input",
		describe: `
Each line of standard input, without its newline, becomes the value of one
record, stored byte for byte. With -key-sep, the text before the first SEP
is the key and the rest the value; a line without SEP has no key. Records
with the same key go to the same partition; keyless ones are spread, unless
-partition picks one.

Input is read as a stream and sent in batches as fast as the log takes
them. With -durability durable (the default) every batch is fdatasync'd
before it counts as written, so what was produced survives a power loss;
buffered leaves the flushing to the OS (survives a crash of runnel, not a
power loss). The command returns once everything read is written. On
Ctrl-C it stops reading, writes what it read, and exits with status 1.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&keySep, "key-sep", "", "split each line into key and value at the first `SEP`")
			fs.IntVar(&partition, "partition", -1, "send every record to partition `N`")
			fs.StringVar(&durability, "durability", "durable", "`MODE`: durable (fdatasync before a batch counts as written) or buffered")
		},
		nargs: [2]int{1, 1},
		run: func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) (err error) {
			opts := &runnel.Options{MaxRecordBytes: maxLine}
			switch durability {
			case "durable":
			case "buffered":
				opts.Durability = runnel.Buffered
			default:
				return usagef("-durability %q: want durable or buffered", durability)
			}
			var popts *runnel.ProducerOptions
			if partition >= 0 {
				popts = &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner}
			} else if isSet(fs, "partition") {
				return usagef("-partition %d: want a partition number, 0 or more", partition)
			}
			l, err := c.open(false, opts)
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			p, err := l.Producer(args[0], popts)
			if err != nil {
				return err
			}
			return produce(ctx, c, p, []byte(keySep), partition)
		},
	})
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// produce streams lines to p. Reading stdin cannot be interrupted, so a
// signal is handled beside it: flush what was read, and exit.
func produce(ctx context.Context, c *cli, p *runnel.Producer, sep []byte, partition int) error {
	var (
		failed  atomic.Pointer[error]
		acked   atomic.Int64
		sent    int64
		onceErr sync.Once
	)
	done := func(_ runnel.Position, err error) {
		if err != nil {
			onceErr.Do(func() { failed.Store(&err) })
			return
		}
		acked.Add(1)
	}
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	go func() {
		select {
		case <-ctx.Done():
			// main cancels ctx once produce has returned too: when this
			// goroutine wakes late, both are ready, and only a ctx that
			// ended first is an interrupt.
			select {
			case <-stopSignals:
				return
			default:
			}
		case <-stopSignals:
			return
		}
		// Interrupted: what was sent is flushed, the rest never read.
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := p.Flush(fctx)
		msg := fmt.Sprintf("interrupted; %d records written", acked.Load())
		if err != nil {
			msg += fmt.Sprintf(" (flush: %v)", err)
		}
		fmt.Fprintf(c.stderr, "runnel produce: %s\n", msg)
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		os.Exit(1)
	}()

	sc := bufio.NewScanner(c.stdin)
	sc.Buffer(make([]byte, 256<<10), maxLine+1)
	sc.Split(scanLines)
	line := 0
	for sc.Scan() {
		line++
		if errp := failed.Load(); errp != nil {
			break
		}
		b := sc.Bytes()
		rec := runnel.Record{Value: b, Partition: partition}
		if len(sep) > 0 {
			if k, v, ok := bytes.Cut(b, sep); ok {
				rec.Key, rec.Value = k, v
			}
		}
		// SendAsync encodes the record before it returns, so the
		// scanner's buffer may be reused at once.
		p.SendAsync(rec, done)
		sent++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", line+1, maxLine)
		}
		p.Flush(context.Background())
		return fmt.Errorf("reading standard input: %w (%d records written)", err, acked.Load())
	}
	if err := p.Flush(context.Background()); err != nil {
		return err
	}
	if errp := failed.Load(); errp != nil {
		return fmt.Errorf("%w (%d of %d records written)", *errp, acked.Load(), sent)
	}
	if isTerminal(os.Stderr.Fd()) && !isTerminal(os.Stdin.Fd()) {
		fmt.Fprintf(c.stderr, "produced %d records\n", sent)
	}
	return nil
}

// scanLines splits at '\n' only, keeping a '\r' as data: what comes out of
// consume is then exactly what went in.
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
