package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

// maxRecord is the largest record produce takes: runnel's largest.
const maxRecord = 16 << 20

type produceFlags struct {
	keySep     string
	recordSep  string
	key        string
	headers    []string
	files      []string
	lineFiles  []string // -l: read as standard input is, instead of it
	partition  int
	durability string
	null       bool // -Z: empty values and keys are sent as none
	count      int64
	quiet      bool
}

func init() {
	var f produceFlags
	register(&command{
		name: "produce",
		args: "TOPIC [FILE]... [-K SEP] [-D DELIM] [-k KEY] [-H KEY=VALUE]... [-p N]\n" +
			"      [-l FILE]... [-n COUNT] [-durability durable|buffered]",
		summary: "append one record per line of standard input, or per file",
		describe: `
Each line of standard input, without its newline, becomes the value of one
record, stored byte for byte. -D DELIM ends records at DELIM instead of at a
newline. With -K SEP (-key-sep), the text before the first SEP is the key
and the rest the value; a record without SEP has no key. -k KEY gives every
record that key instead, or with -K, every record without SEP (and with
-Z, every one whose key is empty), as kcat does. SEP and DELIM may hold
\n, \t, \r, \0, \\ and \xHH.

With -Z, an empty value, or an empty key before SEP, is sent as none
(null, as a tombstone's value), as kcat -Z sends it.

-l FILE reads the records from FILE instead of standard input, split
the same way (repeatable: one file after the other).

With FILE arguments (or -file FILE, repeatable), standard input is not
read: each FILE, whole and byte for byte, is one record ("-" is all of
standard input as one record), as kcat -P sends its file arguments.
With -t TOPIC (-topic), as kcat's -t, every argument is a FILE.

-n COUNT (-count, kcat's -c) stops after COUNT records, without waiting
for more input. -q says nothing on standard error but errors.

-H KEY=VALUE adds a header to every record; repeat it for more. -H KEY,
without =, adds one without a value (null), as kcat -H KEY. Records
with the same key go to the same partition; keyless ones are spread,
unless -p picks one.

Input is read as a stream and sent in batches as fast as the log takes
them. With -durability durable (the default) every batch is fdatasync'd
before it counts as written, so what was produced survives a power loss;
buffered leaves the flushing to the OS (survives a crash of runnel, not a
power loss). The command returns once everything read is written. On
Ctrl-C it stops reading, writes what it read, and exits with status 1.`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVarP(&f.keySep, "key-sep", "K", "", "split each record into key and value at the first `SEP`")
			fs.StringVarP(&f.recordSep, "record-sep", "D", `\n`, "end records at `DELIM`")
			fs.StringVarP(&f.key, "key", "k", "", "give every record the key `KEY` (with -K: every record without SEP)")
			fs.StringArrayVarP(&f.headers, "header", "H", nil, "add the header `KEY=VALUE` to every record (repeatable; KEY alone: no value)")
			fs.IntVarP(&f.partition, "partition", "p", 0, "send every record to partition `N` (-1: any, as without -p)")
			fs.BoolVarP(&f.null, "null", "Z", false, "send an empty value, or an empty key before -K's SEP, as none (null), as kcat -Z")
			fs.Int64VarP(&f.count, "count", "n", 0, "stop after `COUNT` records, without waiting for more input")
			fs.Int64VarP(&f.count, "kcat-count", "c", 0, "") // kcat's letter; one spelling in the help
			fs.MarkHidden("kcat-count")
			fs.BoolVarP(&f.quiet, "quiet", "q", false, "say nothing on standard error but errors (kcat -q)")
			fs.StringArrayVarP(&f.lineFiles, "lines", "l", nil, "read records from `FILE` as from standard input, instead of it (repeatable; kcat -l)")
			fs.StringArrayVar(&f.files, "file", nil, "send `FILE` whole as one record (repeatable; - for standard input)")
			choiceVar(fs, &f.durability, "durability", "", []string{"durable", "buffered"},
				"durable (fdatasync before a batch counts as written) or buffered")
		},
		nargs:     [2]int{1, manyArgs},
		complete:  []argKind{argTopic},
		topicFlag: 1,
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) (err error) {
			f.files = append(f.files, args[1:]...) // kcat -P's file1 file2
			recs, err := f.records(c, fs)
			if err != nil {
				return err
			}
			opts := &runnel.Options{MaxRecordBytes: maxRecord}
			if f.durability == "buffered" {
				opts.Durability = runnel.Buffered
			}
			popts := &runnel.ProducerOptions{}
			// kcat's -p -1 is any partition (librdkafka's unassigned):
			// the partitioner's choice, as without -p.
			manual := fs.Changed("partition") && f.partition != -1
			if manual {
				if f.partition < 0 {
					return usagef("-partition %d: want a partition number, 0 or more (or -1 for any, as without -p)", f.partition)
				}
				popts.Partitioner = runnel.ManualPartitioner
			}
			l, err := c.open(false, opts)
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			if manual {
				// Before reading: at a terminal, the first line typed
				// would be the first to hear of it.
				cfg, err := l.TopicConfig(args[0])
				if err != nil {
					return err
				}
				if f.partition >= cfg.Partitions {
					return partitionRangeError(args[0], f.partition, cfg.Partitions)
				}
			}
			p, err := l.Producer(args[0], popts)
			if err != nil {
				return err
			}
			return produce(ctx, c, p, recs, f.quiet)
		},
	})
}

// records checks the flags and returns the records they describe.
func (f *produceFlags) records(c *cli, fs *pflag.FlagSet) (iter.Seq2[runnel.Record, error], error) {
	var headers []runnel.Header
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if k == "" {
			return nil, usagef("-header %q: want KEY=VALUE or KEY", h)
		}
		var value []byte // none (null) without "=", as kcat's -H KEY
		if ok {
			value = []byte(v)
		}
		headers = append(headers, runnel.Header{Key: k, Value: value})
	}
	keySep, err := unescape(f.keySep)
	if err != nil {
		return nil, usagef("-key-sep: %v", err)
	}
	recordSep, err := unescape(f.recordSep)
	if err != nil {
		return nil, usagef("-record-sep: %v", err)
	}
	switch {
	case f.count < 0:
		return nil, usagef("-n %d: want a count, 0 or more", f.count)
	case len(recordSep) == 0:
		return nil, usagef("-record-sep is empty")
	case len(f.files) > 0 && (fs.Changed("key-sep") || fs.Changed("record-sep")):
		return nil, usagef("FILE and -file send each file whole: -key-sep and -record-sep do not apply (-l FILE reads records from a file)")
	case len(f.files) > 0 && len(f.lineFiles) > 0:
		return nil, usagef("give FILE or -file (each file one record) or -l FILE (records from the file), not both")
	}
	for _, name := range f.files {
		if err := checkWhole(name); err != nil {
			return nil, err
		}
	}
	for _, name := range f.lineFiles {
		if _, err := statInput(name); err != nil {
			return nil, err
		}
	}
	var key []byte
	if fs.Changed("key") {
		key = []byte(f.key)
	}
	recs := func(yield func(runnel.Record, error) bool) {
		base := runnel.Record{Key: key, Headers: headers, Partition: f.partition}
		if len(f.files) > 0 {
			for _, name := range f.files {
				value, err := readWhole(c, name)
				rec := base
				rec.Value = f.orNil(value)
				if !yield(rec, err) || err != nil {
					return
				}
			}
			return
		}
		split := func(value []byte) runnel.Record {
			rec := base
			rec.Value = value
			if len(keySep) > 0 {
				if k, v, ok := bytes.Cut(rec.Value, keySep); ok {
					// A key that -Z makes none leaves -k's, as in kcat.
					if k = f.orNil(k); k != nil || !fs.Changed("key") {
						rec.Key = k
					}
					rec.Value = v
				}
			}
			rec.Value = f.orNil(rec.Value)
			return rec
		}
		if len(f.lineFiles) == 0 {
			scanRecords(c.stdin, "standard input", recordSep, split, yield)
			return
		}
		for _, name := range f.lineFiles {
			if !scanFile(c, name, recordSep, split, yield) {
				return
			}
		}
	}
	if fs.Changed("count") || fs.Changed("kcat-count") {
		return take(recs, f.count), nil
	}
	return recs, nil
}

// take is the first n records of recs (or an error before them): at a
// terminal or a pipe, the command returns without waiting for more input.
func take(recs iter.Seq2[runnel.Record, error], n int64) iter.Seq2[runnel.Record, error] {
	return func(yield func(runnel.Record, error) bool) {
		if n == 0 {
			return
		}
		var taken int64
		for rec, err := range recs {
			if !yield(rec, err) || err != nil {
				return
			}
			if taken++; taken == n {
				return
			}
		}
	}
}

// orNil is b, or with -Z nil when b is empty: kcat -Z's NULL key or
// value, which a consumer tells from an empty one (consume -Z prints
// NULL, %S -1).
func (f *produceFlags) orNil(b []byte) []byte {
	if f.null && len(b) == 0 {
		return nil
	}
	return b
}

// scanFile reads the records of a file of -l (standard input for "-")
// as scanRecords does, and reports whether to go on.
func scanFile(c *cli, name string, sep []byte, split func([]byte) runnel.Record, yield func(runnel.Record, error) bool) bool {
	if name == "-" {
		return scanRecords(c.stdin, "standard input", sep, split, yield)
	}
	file, err := os.Open(name)
	if err != nil {
		yield(runnel.Record{}, err)
		return false
	}
	defer file.Close()
	return scanRecords(file, name, sep, split, yield)
}

// scanRecords yields the records of r, named name in errors: each run of
// bytes up to sep, made a record by split. It reports whether to go on:
// not after an error, nor when yield says stop.
func scanRecords(r io.Reader, name string, sep []byte, split func([]byte) runnel.Record, yield func(runnel.Record, error) bool) bool {
	sc := bufio.NewScanner(r)
	// Room for the largest record and the separator after it, however
	// long: the scanner must see the separator to end the record.
	sc.Buffer(make([]byte, 256<<10), maxRecord+len(sep))
	sc.Split(splitAt(sep))
	n := 0
	for sc.Scan() {
		n++
		if !yield(split(sc.Bytes()), nil) {
			return false
		}
	}
	err := sc.Err()
	if err == nil {
		return true
	}
	if errors.Is(err, bufio.ErrTooLong) {
		err = fmt.Errorf("record %d is longer than %d bytes, the largest record", n+1, maxRecord)
	}
	yield(runnel.Record{}, fmt.Errorf("reading %s: %w", name, err))
	return false
}

// checkWhole fails if name cannot be sent whole: before anything is sent,
// so that a mistyped name does not leave the other files half sent.
func checkWhole(name string) error {
	st, err := statInput(name)
	if err == nil && st != nil && st.Mode().IsRegular() && st.Size() > maxRecord {
		return fmt.Errorf("%s is %d bytes; the largest record is %d", name, st.Size(), maxRecord)
	}
	return err
}

// statInput fails if name, a file to read records from, is missing or a
// directory, checked before anything is sent, as checkWhole does. "-",
// standard input, has no FileInfo.
func statInput(name string) (os.FileInfo, error) {
	if name == "-" {
		return nil, nil
	}
	st, err := os.Stat(name)
	switch {
	case err != nil:
		return nil, err
	case st.IsDir():
		return nil, fmt.Errorf("%s is a directory", name)
	}
	return st, nil
}

// readWhole reads a file, or standard input for "-", as one record.
func readWhole(c *cli, name string) ([]byte, error) {
	r := c.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	} else {
		name = "standard input"
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", name, err)
	case len(data) > maxRecord:
		return nil, fmt.Errorf("%s is more than %d bytes, the largest record", name, maxRecord)
	}
	return data, nil
}

// produce sends recs through p. Reading stdin cannot be interrupted, so a
// signal is handled beside it: flush what was read, and exit.
func produce(ctx context.Context, c *cli, p *runnel.Producer, recs iter.Seq2[runnel.Record, error], quiet bool) error {
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
		case <-stopSignals:
			return
		}
		select {
		case <-stopSignals:
			return // done already; ctx ends as the command returns
		default:
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

	for rec, err := range recs {
		if err != nil {
			p.Flush(context.Background())
			return fmt.Errorf("%w (%d records written)", err, acked.Load())
		}
		if failed.Load() != nil {
			break
		}
		// SendAsync encodes the record before it returns, so the
		// scanner's buffer may be reused at once.
		p.SendAsync(rec, done)
		sent++
	}
	if err := p.Flush(context.Background()); err != nil {
		return err
	}
	if errp := failed.Load(); errp != nil {
		return fmt.Errorf("%w (%d of %d records written)", *errp, acked.Load(), sent)
	}
	if !quiet && isTerminal(os.Stderr) && !isTerminal(os.Stdin) {
		fmt.Fprintf(c.stderr, "produced %d records\n", sent)
	}
	return nil
}

// splitAt splits input at sep only: with the default "\n", a '\r' stays
// data, so what comes out of consume is exactly what went in.
func splitAt(sep []byte) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (advance int, token []byte, err error) {
		if i := bytes.Index(data, sep); i >= 0 {
			return i + len(sep), data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}
