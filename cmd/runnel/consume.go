package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/runnel-log/runnel"
)

type consumeFlags struct {
	group         string
	fromBeginning bool
	offset        int64
	since         string
	partition     int
	follow        bool
	count         int64
	format        string
}

func init() {
	var f consumeFlags
	register(&command{
		name:    "consume",
		args:    "TOPIC [-group G] [-from-beginning | -offset N | -since TIME] [-partition N]\n      [-follow] [-n COUNT] [-format value|json]",
		summary: "print records, one per line",
		describe: `
Prints each record's value on a line of its own, or with -format json a
JSON object with partition, offset, time, key, value and headers (keys and
values that are not UTF-8 appear as {"base64": "..."}).

Where to start: after the newest record (the default), -from-beginning,
-offset N (of -partition N, for a topic of several partitions), or -since
TIME (RFC 3339, a date, or a duration ago such as 15m).

Without -follow it stops at the end of the records there were when it
started; with -follow it waits for new ones until Ctrl-C, and exits 0.

With -group it reads as a member of that consumer group: the group's
members, in any processes, share the topic's partitions, each partition
starts at the group's committed offset (or where the flags say, if it has
none, or if that offset is no longer stored), and what was printed is
committed, including on Ctrl-C.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.group, "group", "", "consume as a member of consumer group `G`, committing what is printed")
			fs.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record")
			fs.Int64Var(&f.offset, "offset", 0, "start at offset `N`")
			fs.StringVar(&f.since, "since", "", "start at the first record at or after `TIME`")
			fs.IntVar(&f.partition, "partition", 0, "read only partition `N`")
			fs.BoolVar(&f.follow, "follow", false, "wait for new records until interrupted")
			fs.Int64Var(&f.count, "n", 0, "stop after `COUNT` records")
			fs.StringVar(&f.format, "format", "value", "`FORMAT` of each line: value or json")
		},
		nargs: [2]int{1, 1},
		run: func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) (err error) {
			starts := 0
			for _, name := range []string{"from-beginning", "offset", "since"} {
				if isSet(fs, name) {
					starts++
				}
			}
			switch {
			case starts > 1:
				return usagef("give at most one of -from-beginning, -offset and -since")
			case f.format != "value" && f.format != "json":
				return usagef("-format %q: want value or json", f.format)
			case f.count < 0:
				return usagef("-n %d: want a count, 1 or more", f.count)
			case f.group != "" && isSet(fs, "partition"):
				return usagef("-partition cannot go with -group: the group assigns partitions")
			case f.group != "" && isSet(fs, "offset"):
				return usagef("-offset cannot go with -group; use \"runnel groups reset\" to move a group")
			}
			start := runnel.Latest
			switch {
			case f.fromBeginning:
				start = runnel.Earliest
			case isSet(fs, "offset"):
				start = runnel.AtOffset(f.offset)
			case isSet(fs, "since"):
				t, err := parseTime(f.since, time.Now())
				if err != nil {
					return usagef("-since: %v", err)
				}
				start = runnel.AtTime(t)
			}
			l, err := c.open(false, nil)
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			return consume(ctx, c, l, args[0], f, fs, start)
		},
	})
}

// consumer is one consume run.
type consumer struct {
	c         *runnel.Consumer
	f         consumeFlags
	out       *bufio.Writer
	enc       *json.Encoder
	ends      []int64       // without -follow: each partition's end when the run began
	printed   map[int]int64 // partition → offset after the last record printed
	committed map[int]int64 // what was last committed, in a group
	progress  *progress
}

func consume(ctx context.Context, cl *cli, l *runnel.Log, topic string, f consumeFlags, fs *flag.FlagSet, start runnel.StartPosition) error {
	info, err := l.DescribeTopic(topic)
	if err != nil {
		return err
	}
	if isSet(fs, "offset") && !isSet(fs, "partition") && len(info.Partitions) > 1 {
		return usagef("-offset needs -partition: topic %s has %d partitions", topic, len(info.Partitions))
	}
	k := &consumer{f: f, printed: map[int]int64{}, committed: map[int]int64{}}
	k.out = bufio.NewWriterSize(cl.stdout, 256<<10)
	if f.format == "json" {
		k.enc = json.NewEncoder(k.out)
		k.enc.SetEscapeHTML(false)
	}
	for _, p := range info.Partitions {
		k.ends = append(k.ends, p.NextOffset)
	}
	opts := &runnel.ConsumerOptions{Start: start}
	if isSet(fs, "partition") {
		opts.Partitions = []int{f.partition}
	}
	if f.group != "" {
		opts.Group = f.group
		opts.DisableAutoCommit = true
		opts.OutOfRange = runnel.OutOfRangeLatest
		if f.fromBeginning {
			opts.OutOfRange = runnel.OutOfRangeEarliest
		}
		opts.OnRevoked = func(c *runnel.Consumer, parts []int) {
			if err := k.commit(parts); err != nil {
				fmt.Fprintf(cl.stderr, "runnel consume: commit before giving up partitions %v: %v\n", parts, err)
			}
		}
	}
	c, err := l.Consumer(topic, opts)
	if err != nil {
		return err
	}
	k.c = c
	defer c.Close()
	if !f.follow && f.group == "" {
		var total int64
		for _, p := range c.Partitions() {
			total += max(0, k.ends[p]-c.Position(p))
		}
		k.progress = newProgress("consume", total, false, true)
	}
	err = k.loop(ctx)
	if k.progress != nil {
		k.progress.done()
	}
	if ferr := k.out.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if f.group != "" {
		if cerr := k.commit(nil); cerr != nil && err == nil {
			err = fmt.Errorf("commit: %w", cerr)
		}
	}
	return err
}

// loop prints records until the end (without -follow), the count, Ctrl-C,
// or an error.
func (k *consumer) loop(ctx context.Context) error {
	var n int64
	began := time.Now()
	lastCommit := time.Now()
	for {
		if !k.f.follow && k.atEnd(began) {
			return nil
		}
		recs, err := k.poll(ctx)
		for _, r := range recs {
			if !k.f.follow && r.Offset >= k.ends[r.Partition] {
				continue // appended after the run began
			}
			if err := k.print(r); err != nil {
				return err
			}
			k.printed[r.Partition] = r.Offset + 1
			n++
			if k.f.count > 0 && n >= k.f.count {
				return nil
			}
		}
		if k.progress != nil {
			k.progress.update(n)
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // Ctrl-C: a clean stop
		}
		if err != nil {
			return err
		}
		if k.f.follow && k.out.Buffered() > 0 {
			if err := k.out.Flush(); err != nil {
				return err
			}
		}
		if k.f.group != "" && time.Since(lastCommit) >= time.Second {
			if err := k.commit(nil); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			lastCommit = time.Now()
		}
	}
}

// poll returns the records available; without -follow it waits only
// briefly, as the run ends once every partition is at its end.
func (k *consumer) poll(ctx context.Context) ([]runnel.Record, error) {
	if k.f.follow {
		return k.c.Poll(ctx)
	}
	recs, err := k.c.TryPoll()
	if err != nil || len(recs) > 0 {
		return recs, err
	}
	pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	recs, err = k.c.Poll(pctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nil
	}
	return recs, err
}

// atEnd reports whether every partition read is at its end as of the
// start. A group member that owns nothing yet waits a moment for the
// group to hand it partitions.
func (k *consumer) atEnd(began time.Time) bool {
	parts := k.c.Partitions()
	if len(parts) == 0 {
		return k.f.group == "" || time.Since(began) > time.Second
	}
	for _, p := range parts {
		if k.c.Position(p) < k.ends[p] {
			return false
		}
	}
	return true
}

// commit commits, for the given partitions (all owned ones if nil), the
// offset after the last record printed, once it reached standard output.
func (k *consumer) commit(parts []int) error {
	if err := k.out.Flush(); err != nil {
		return err
	}
	owned := k.c.Partitions()
	if parts == nil {
		parts = owned
	}
	offsets := map[int]int64{}
	for _, p := range parts {
		off, ok := k.printed[p]
		if ok && slices.Contains(owned, p) && off != k.committed[p] {
			offsets[p] = off
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	if err := k.c.CommitOffsets(context.Background(), offsets); err != nil {
		return err
	}
	for p, off := range offsets {
		k.committed[p] = off
	}
	return nil
}

func (k *consumer) print(r runnel.Record) error {
	if k.enc == nil {
		k.out.Write(r.Value)
		return k.out.WriteByte('\n')
	}
	headers := make([]jsonHeader, len(r.Headers))
	for i, h := range r.Headers {
		headers[i] = jsonHeader{Key: jsonBytes([]byte(h.Key)), Value: jsonBytes(h.Value)}
	}
	return k.enc.Encode(jsonRecord{
		Partition: r.Partition,
		Offset:    r.Offset,
		Time:      r.Time.UTC().Format(time.RFC3339Nano),
		Key:       jsonBytes(r.Key),
		Value:     jsonBytes(r.Value),
		Headers:   headers,
	})
}

type jsonRecord struct {
	Partition int          `json:"partition"`
	Offset    int64        `json:"offset"`
	Time      string       `json:"time"`
	Key       any          `json:"key"`
	Value     any          `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   any `json:"key"`
	Value any `json:"value"`
}

// jsonBytes shows bytes as a JSON string when they are UTF-8, as
// {"base64": "..."} when not, and as null when nil.
func jsonBytes(b []byte) any {
	switch {
	case b == nil:
		return nil
	case utf8.Valid(b):
		return string(b)
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(b)}
}
