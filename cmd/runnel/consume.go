package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

type consumeFlags struct {
	group         string
	fromBeginning bool
	offset        string // where to start; "" for the default
	offsetStop    string // -offset e@MS
	since         string
	until         string
	partition     int
	follow        bool
	count         int64
	exitAtEnd     bool       // kcat's -e: what consume does without -follow
	stopAt        *time.Time // -until or -offset e@MS
	kcatJSON      bool       // -J: kcat's JSON envelope
	null          bool       // -Z: a missing key or value prints as NULL
	unbuffered    bool       // -u: each record written out at once
	quiet         bool       // -q: no progress bar
	format        string
	keySep        string
	recordSep     string
}

func init() {
	var f consumeFlags
	register(&command{
		name: "consume",
		args: "TOPIC... [-group G] [-from-beginning | -o OFFSET | -since TIME] [-p N]\n" +
			"      [-follow] [-n COUNT] [-until TIME] [-f value|json|FORMAT | -J] [-K SEP] [-D DELIM]",
		summary: "print records, one per line",
		describe: `
Prints each record's value on a line of its own; with -K SEP (-key-sep),
its key, SEP, then its value; with -D DELIM (-record-sep), DELIM after each
record instead of a newline. SEP and DELIM may hold \n, \t, \r, \0, \\ and
\xHH.

Given several topics (consume T1 T2, as kcat -G G T1 T2), it reads each:
without -follow one after the other, in the order given, and with
-follow side by side. The flags apply to each topic (-p N reads
partition N of each; a group commits in each), but -n counts the
records of all; %t says which topic a record is of. -t TOPIC (-topic),
as kcat's -t, names a topic too (repeat it for several). An argument
beginning with ^ is a regular expression, as kcat -G takes it: the
topics whose names it matches (those there are when the run starts).

-f (-format) json prints a JSON object per line with topic, partition,
offset, time, key, value and headers (keys and values that are not UTF-8
appear as {"base64": "..."}). Any other -f is a format string, as kcat's:
` + formatTokens + `; and the escapes above.
For example: -f '%p/%o %k=%s\n'.
-Z prints a missing key or value (null, not empty) as NULL, as kcat -Z
(%h prints a header without a value as KEY=NULL with -Z or without, as
kcat's does).

-J prints each record as kcat -J does, one JSON object per line with
topic, partition, offset, tstype, ts (milliseconds), broker, headers
(when there are any: ["name", "value", ...]), key and payload, so that
a script written for kcat's output reads it; -D DELIM ends each object
instead of the newline, as kcat -J -D.

Where to start, by default: at the oldest record, or, with -follow or
-group, after the newest (a group member starts at the group's committed
offsets, and there only where it has none). Or -from-beginning,
-since TIME (RFC 3339, a date, or a duration ago such as 15m), or
-o (-offset) OFFSET: beginning, end, stored (with -group: the group's
committed offset, where a member starts anyway), N (the offset N; of each
partition without -p, one that ends before N starting at its end, as
kcat), -N (the last N records of each
partition), or s@MS (the first record at or after MS milliseconds since
1970).

Without -follow it stops at the end of the records there were when it
started; with -follow it waits for new ones until Ctrl-C, and exits 0
(a second Ctrl-C kills it, if its output is stuck). -until TIME (or -o
e@MS, beside a start: -o beginning -o e@MS) stops each partition at its
first record at or after the time, which is not printed; the run ends
when every partition has stopped (without -follow, at the end too).
-n COUNT stops after COUNT records (-n 0 prints none). It also stops,
with status 0, when the reader of its output goes away (consume -follow |
head -1).

With -group it reads as a member of that consumer group: the group's
members, in any processes, share the topic's partitions, each partition
starts at the group's committed offset (or where the flags say, if it has
none, or if that offset is no longer stored), and what was printed is
committed, including on Ctrl-C; where the group had no commit, the start
is, printed or not, as a Kafka consumer commits its position, so that
the next run goes on from there.`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVarP(&f.group, "group", "G", "", "consume as a member of consumer group `G`, committing what is printed")
			fs.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record")
			fs.VarP(offsetFlag{start: &f.offset, stop: &f.offsetStop}, "offset", "o",
				"start at `OFFSET`: beginning, end, stored, N, -N (the last N of each partition) or s@MS; e@MS stops (may be given beside a start)")
			fs.StringVar(&f.since, "since", "", "start at the first record at or after `TIME`")
			fs.StringVar(&f.until, "until", "", "stop each partition at its first record at or after `TIME`, as -o e@MS")
			fs.IntVarP(&f.partition, "partition", "p", 0, "read only partition `N` (of each topic)")
			fs.BoolVar(&f.follow, "follow", false, "wait for new records until interrupted")
			fs.Int64VarP(&f.count, "count", "n", 0, "stop after `COUNT` records")
			// kcat's letters, which kcat hands type: -c COUNT is -n,
			// and -e (exit at the end) what consume does anyway. Hidden:
			// one spelling in the help is enough.
			fs.Int64VarP(&f.count, "kcat-count", "c", 0, "")
			fs.BoolVarP(&f.exitAtEnd, "kcat-exit", "e", false, "")
			fs.MarkHidden("kcat-count")
			fs.MarkHidden("kcat-exit")
			f.format = "value"
			fs.VarP(formatFlag{&f.format}, "format", "f", "print each record as value, json, or a format string such as '%k=%s\\n'")
			fs.BoolVarP(&f.kcatJSON, "kcat-json", "J", false, "print each record as kcat -J does: a JSON object with payload, key, ts, headers...")
			fs.BoolVarP(&f.unbuffered, "unbuffered", "u", false, "write each record out as it is printed, not in blocks (kcat -u)")
			fs.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress bar on a terminal (kcat -q)")
			fs.BoolVarP(&f.null, "null", "Z", false, "print a missing key or value as NULL, as kcat -Z (JSON has null)")
			fs.StringVarP(&f.keySep, "key-sep", "K", "", "print the key, then `SEP`, then the value")
			fs.StringVarP(&f.recordSep, "record-sep", "D", `\n`, "end each record with `DELIM`")
		},
		nargs:     [2]int{1, manyArgs},
		complete:  []argKind{argTopic},
		moreArgs:  argTopic,
		topicFlag: manyArgs,
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) (err error) {
			if err := checkTopicArgs(args); err != nil {
				return err
			}
			start, err := f.start(fs)
			if err != nil {
				return err
			}
			if f.stopAt, err = f.stop(); err != nil {
				return err
			}
			if err := f.check(fs, start); err != nil {
				return err
			}
			l, err := c.open(false, nil)
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			topics, err := expandTopics(l, args)
			if err != nil {
				return err
			}
			return consume(ctx, c, l, topics, f, fs, start)
		},
	})
}

// start reads where to start from -from-beginning, -offset or -since, or
// the default, which -follow and -group decide.
func (f *consumeFlags) start(fs *pflag.FlagSet) (startSpec, error) {
	given := 0
	for _, name := range []string{"from-beginning", "since"} {
		if fs.Changed(name) {
			given++
		}
	}
	if f.offset != "" {
		given++
	}
	switch {
	case given > 1:
		return startSpec{}, usagef("give at most one of -from-beginning, -offset and -since")
	case f.fromBeginning:
		return startSpec{pos: runnel.Earliest}, nil
	case f.offset != "":
		s, err := parseOffset(f.offset)
		if err != nil {
			return s, usagef("-offset %v", err)
		}
		return s, nil
	case fs.Changed("since"):
		t, err := parseTime(f.since, time.Now())
		if err != nil {
			return startSpec{}, usagef("-since: %v", err)
		}
		return startSpec{pos: runnel.AtTime(t)}, nil
	case !f.follow && f.group == "":
		// A run that stops at the end prints what is there, as cat and
		// kcat -e do: started after the newest record, it could only
		// ever print nothing, which reads as an empty topic.
		return startSpec{pos: runnel.Earliest}, nil
	}
	// Following, after the newest record, as tail -f and
	// kafka-console-consumer; a group member's partitions start at the
	// group's committed offsets, and those without one here, as Kafka's
	// default auto.offset.reset does.
	return startSpec{pos: runnel.Latest}, nil
}

// stop reads where to stop from -until or -offset e@MS: nil for nowhere.
func (f *consumeFlags) stop() (*time.Time, error) {
	switch {
	case f.until != "" && f.offsetStop != "":
		return nil, usagef("give -until or -offset e@MS, not both")
	case f.offsetStop != "":
		t, err := parseMillis(f.offsetStop)
		if err != nil {
			return nil, usagef("-offset %v", err)
		}
		return &t, nil
	case f.until != "":
		t, err := parseTime(f.until, time.Now())
		if err != nil {
			return nil, usagef("-until: %v", err)
		}
		return &t, nil
	}
	return nil, nil
}

// check rejects flags that do not go together.
func (f *consumeFlags) check(fs *pflag.FlagSet, start startSpec) error {
	switch {
	case f.count < 0:
		return usagef("-n %d: want a count, 0 or more", f.count)
	case f.exitAtEnd && f.follow:
		return usagef("-e stops at the end, -follow waits for more: give one")
	case f.group != "" && fs.Changed("partition"):
		return usagef("-partition cannot go with -group: the group assigns partitions")
	case start.stored && f.group == "":
		return usagef("-offset stored is a group's committed offset: it goes with -group")
	case f.group != "" && (start.exact || start.last > 0):
		return usagef("-offset %s cannot go with -group; use \"runnel groups reset\" to move a group", f.offset)
	case f.group != "" && f.stopAt != nil:
		// A member skips the records of a stopped partition unprinted,
		// and the group's bookkeeping (followResets) would take the
		// skip for a reset and commit past the time.
		return usagef("-until and -offset e@MS cannot go with -group")
	case f.kcatJSON && fs.Changed("format"):
		return usagef("-J prints kcat's JSON, -format its own form: give one")
	case f.kcatJSON && fs.Changed("key-sep"):
		return usagef("-key-sep goes with -format value, not -J")
	case f.format != "value" && (fs.Changed("key-sep") || fs.Changed("record-sep")):
		return usagef("-key-sep and -record-sep go with -format value; a format string says where the key and the end go")
	}
	return nil
}

// printer builds the record printer the flags ask for.
func (f *consumeFlags) printer(out *bufio.Writer, topic string, fs *pflag.FlagSet) (*printer, error) {
	p := &printer{out: out, topic: topic}
	if f.null {
		p.null = []byte("NULL")
	}
	switch {
	case f.kcatJSON || f.format == "json":
		p.enc = json.NewEncoder(out)
		p.enc.SetEscapeHTML(false)
		p.json = func(topic string, r runnel.Record) any { return newJSONRecord(topic, r) }
		if f.kcatJSON {
			p.json = func(topic string, r runnel.Record) any { return newKcatRecord(topic, r) }
		}
		if f.kcatJSON && fs.Changed("record-sep") {
			// kcat -J -D: DELIM ends each object instead of the
			// newline the encoder ends it with.
			end, err := unescape(f.recordSep)
			if err != nil {
				return nil, usagef("-record-sep: %v", err)
			}
			p.jsonEnd = end
			p.enc = json.NewEncoder(&p.jsonBuf)
			p.enc.SetEscapeHTML(false)
		}
	case f.format == "value":
		var keySep []byte
		if fs.Changed("key-sep") {
			var err error
			if keySep, err = unescape(f.keySep); err != nil {
				return nil, usagef("-key-sep: %v", err)
			}
		}
		recordSep, err := unescape(f.recordSep)
		if err != nil {
			return nil, usagef("-record-sep: %v", err)
		}
		p.format = valueFormat(keySep, recordSep)
	default:
		format, err := parseFormat(f.format)
		if err != nil {
			return nil, usagef("-format: %v", err)
		}
		p.format = format
	}
	return p, nil
}

// consumer reads one topic of a consume run.
type consumer struct {
	c         *runnel.Consumer
	f         consumeFlags
	out       *output
	print     *printer
	ends      []int64               // without -follow: each partition's end when the run began
	restartAt *runnel.StartPosition // in a group: where a partition whose offset is not stored starts, if no policy says
	printed   map[int]int64         // partition → offset after the last record printed
	committed map[int]int64         // what was last committed, in a group
	stopped   map[int]bool          // partitions that reached -until's time
	progress  *progress
}

// consumeRun is one consume command: what it was asked, and the output
// the topics it reads share.
type consumeRun struct {
	cl    *cli
	l     *runnel.Log
	f     consumeFlags
	fs    *pflag.FlagSet
	start startSpec
	out   *output
}

// consume prints the records of topics: without -follow one topic after
// the other, in the order given; with -follow side by side, as kcat -G
// reads the topics it is given.
func consume(ctx context.Context, cl *cli, l *runnel.Log, topics []string, f consumeFlags, fs *pflag.FlagSet, start startSpec) error {
	// Every topic is checked before the first record is printed.
	infos := make([]runnel.TopicInfo, len(topics))
	printers := make([]*printer, len(topics))
	out := &output{w: bufio.NewWriterSize(cl.stdout, 256<<10), unbuffered: f.unbuffered, count: f.count}
	for i, topic := range topics {
		info, err := l.DescribeTopic(topic)
		if err != nil {
			return err
		}
		if n := len(info.Partitions); fs.Changed("partition") && (f.partition < 0 || f.partition >= n) {
			return partitionRangeError(topic, f.partition, n)
		}
		if printers[i], err = f.printer(out.w, topic, fs); err != nil {
			return err
		}
		infos[i] = info
	}
	if (fs.Changed("count") || fs.Changed("kcat-count")) && f.count == 0 {
		return nil
	}
	run := &consumeRun{cl: cl, l: l, f: f, fs: fs, start: start, out: out}

	// A reader that goes away ends the run: its write fails with EPIPE
	// (rather than killing the process, so that a group commits what
	// was printed), or, while waiting for records, the pipe reports it.
	signal.Ignore(syscall.SIGPIPE)
	ctx, gone := context.WithCancel(ctx)
	defer gone()
	stopWatch := watchReader(os.Stdout, gone)
	defer stopWatch()

	var err error
	if f.follow && len(topics) > 1 {
		errs := make([]error, len(topics))
		var wg sync.WaitGroup
		for i := range topics {
			wg.Go(func() {
				errs[i] = run.topic(ctx, infos[i], printers[i])
				if errs[i] != nil || out.reached() {
					gone() // the others stop cleanly, and commit
				}
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
	} else {
		for i := range topics {
			err = run.topic(ctx, infos[i], printers[i])
			if err != nil || out.reached() || ctx.Err() != nil {
				break
			}
		}
	}
	if ferr := out.flush(); ferr != nil && err == nil {
		err = ferr
	}
	if readerGone(err) {
		return nil // the reader has all it wanted
	}
	return err
}

// topic prints the records of one topic, described by info, with print.
func (run *consumeRun) topic(ctx context.Context, info runnel.TopicInfo, print *printer) error {
	f, fs, start := run.f, run.fs, run.start
	n := len(info.Partitions)
	k := &consumer{f: f, out: run.out, print: print, printed: map[int]int64{}, committed: map[int]int64{}, stopped: map[int]bool{}}
	for _, p := range info.Partitions {
		k.ends = append(k.ends, p.NextOffset)
	}
	opts := &runnel.ConsumerOptions{Start: start.pos}
	if fs.Changed("partition") {
		opts.Partitions = []int{f.partition}
	}
	// kcat's -o N without -p: every partition at N, each placed once
	// the consumer is open (seekEach).
	everyAt := start.exact && !fs.Changed("partition") && n > 1
	if everyAt {
		opts.Start = runnel.Earliest
	}
	stderr := run.cl.stderr
	if f.group != "" {
		opts.Group = f.group
		opts.DisableAutoCommit = true
		switch start.pos {
		case runnel.Earliest:
			opts.OutOfRange = runnel.OutOfRangeEarliest
		case runnel.Latest:
			opts.OutOfRange = runnel.OutOfRangeLatest
		default:
			// A time (-since, s@MS), which no OutOfRange policy names:
			// Poll reports the partition, and the loop seeks it there.
			opts.OutOfRange = runnel.OutOfRangeFail
			k.restartAt = &start.pos
		}
		if k.restartAt == nil {
			opts.OnAssigned = func(c *runnel.Consumer, parts []int) { k.assigned(c, parts) }
		}
		opts.OnRevoked = func(c *runnel.Consumer, parts []int) {
			if err := k.commit(parts); err != nil && !readerGone(err) {
				fmt.Fprintf(stderr, "runnel consume: commit before giving up partitions %v of %s: %v\n", parts, info.Name, err)
			}
		}
		opts.OnLost = func(c *runnel.Consumer, parts []int) {
			fmt.Fprintf(stderr, "runnel consume: output blocked for longer than the group's poll interval: left group %s; partitions %v of %s went to the other members, and with them the records printed since the last commit; joining again\n", f.group, parts, info.Name)
		}
	}
	c, err := run.l.ConsumerContext(ctx, info.Name, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // Ctrl-C while joining the group: a clean stop
		}
		return err
	}
	k.c = c
	defer c.Close()
	if start.last > 0 {
		if err := seekLast(c, info, k.ends, start.last); err != nil {
			return err
		}
	}
	if everyAt {
		if err := seekEach(c, k.ends, start.offset); err != nil {
			return err
		}
	}
	if !f.follow && f.group == "" && !f.quiet {
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
	if f.group != "" {
		if cerr := k.commit(nil); cerr != nil && err == nil && !readerGone(cerr) {
			err = fmt.Errorf("commit: %w", cerr)
		}
	}
	return err
}

// loop prints records until the end (without -follow), the count, Ctrl-C,
// the reader going away, or an error.
func (k *consumer) loop(ctx context.Context) error {
	var n int64
	began := time.Now()
	lastCommit := time.Now()
	for {
		if k.finished(began) {
			return nil
		}
		recs, err := k.poll(ctx)
		for _, r := range recs {
			if !k.f.follow && r.Offset >= k.ends[r.Partition] {
				continue // appended after the run began
			}
			past, err := k.past(r)
			if err != nil {
				return err
			}
			if past {
				continue
			}
			if next, ok := k.printed[r.Partition]; ok && r.Offset != next {
				k.jumped(r.Partition, r.Offset)
			}
			printed, err := k.out.print(k.print, r)
			if err != nil {
				return err
			}
			if !printed {
				return nil // another topic's records reached the count
			}
			k.printed[r.Partition] = r.Offset + 1
			n++
			if k.out.reached() {
				return nil
			}
		}
		if k.progress != nil {
			k.progress.update(n)
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // Ctrl-C, or the reader went away: a clean stop
		}
		if restarted, serr := k.restart(err); restarted {
			if serr != nil {
				return serr
			}
			continue
		}
		if err != nil {
			return err
		}
		if k.f.follow {
			if err := k.out.flush(); err != nil {
				return err
			}
		}
		if k.f.group != "" {
			k.followResets(recs)
			if time.Since(lastCommit) >= time.Second {
				if err := k.commit(nil); err != nil {
					return fmt.Errorf("commit: %w", err)
				}
				lastCommit = time.Now()
			}
		}
	}
}

// poll returns the records available. Without -follow it waits only
// briefly, as the run ends once every partition is at its end; a group
// member that follows waits at most a second, so that what it printed is
// committed while no new records come.
func (k *consumer) poll(ctx context.Context) ([]runnel.Record, error) {
	wait := 100 * time.Millisecond
	switch {
	case k.f.follow && k.f.group == "":
		return k.c.Poll(ctx)
	case k.f.follow:
		wait = time.Second
	default:
		recs, err := k.c.TryPoll()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	recs, err := k.c.Poll(pctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nil
	}
	return recs, err
}

// restart moves the partition of err, a group member's offset that is
// not stored (retention removed it), to restartAt, and reports whether
// it did.
func (k *consumer) restart(err error) (bool, error) {
	var oor *runnel.OutOfRangeError
	if k.restartAt == nil || !errors.As(err, &oor) {
		return false, nil
	}
	return true, k.c.Seek(oor.Partition, *k.restartAt)
}

// finished reports whether every partition read has stopped at -until's
// time or, without -follow, is at its end as of the start. A group member
// that owns nothing yet waits a moment for the group to hand it
// partitions.
func (k *consumer) finished(began time.Time) bool {
	parts := k.c.Partitions()
	if len(parts) == 0 {
		return !k.f.follow && (k.f.group == "" || time.Since(began) > time.Second)
	}
	for _, p := range parts {
		if !k.stopped[p] && (k.f.follow || k.c.Position(p) < k.ends[p]) {
			return false
		}
	}
	return true
}

// past reports whether r is at or after -until's time, or follows such a
// record in its partition: kcat's e@MS stops a partition there, and
// prints neither that record nor the ones after it. The partition is
// paused, so that -follow reads no more of it.
func (k *consumer) past(r runnel.Record) (bool, error) {
	switch {
	case k.stopped[r.Partition]:
		return true, nil
	case k.f.stopAt == nil || r.Time.Before(*k.f.stopAt):
		return false, nil
	}
	k.stopped[r.Partition] = true
	return true, k.c.Pause(r.Partition)
}

// assigned takes the position each partition the member has just taken
// starts at, the group's commit or, where it has none, the end (or the
// oldest record), as printed up to: the start is then committed, as a
// Kafka consumer commits its position, and the group's next run goes on
// from there. Committing only what was printed, a new group's run that
// printed nothing left no commit, and each run started at the end again:
// without -follow it could never print a record. A start at a time
// (restartAt) is not taken: its position may still be searching for it.
func (k *consumer) assigned(c *runnel.Consumer, parts []int) {
	for _, p := range parts {
		if pos := c.Position(p); pos >= 0 {
			k.printed[p] = pos
		}
	}
}

// jumped notes that partition p's position moved to offset without this
// run reading up to it: a forced "groups reset" applied inside Poll, or a
// partition taken back after another member moved it on. Either way the
// group's committed offset is now offset, not what this run last
// committed, so the next commit must be written even if it repeats that.
func (k *consumer) jumped(p int, offset int64) {
	k.committed[p] = offset
}

// followResets catches the jumps of partitions that delivered no record
// in the last poll: it takes the new position as what was printed and
// committed, so that the next commit does not move the group back.
func (k *consumer) followResets(recs []runnel.Record) {
	delivered := map[int]bool{}
	for _, r := range recs {
		delivered[r.Partition] = true
	}
	for p, off := range k.printed {
		if pos := k.c.Position(p); !delivered[p] && pos >= 0 && pos != off {
			k.jumped(p, pos)
			k.printed[p] = pos
		}
	}
}

// commit commits, for the given partitions (all owned ones if nil), the
// offset after the last record printed, once it reached standard output.
func (k *consumer) commit(parts []int) error {
	if err := k.out.flush(); err != nil {
		return err
	}
	owned := k.c.Partitions()
	if parts == nil {
		parts = owned
	}
	offsets := map[int]int64{}
	for _, p := range parts {
		off, ok := k.printed[p]
		last, done := k.committed[p]
		if ok && slices.Contains(owned, p) && (!done || off != last) {
			offsets[p] = off
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	if err := k.c.CommitOffsets(context.Background(), offsets); err != nil {
		if errors.Is(err, runnel.ErrMemberExpired) {
			return nil // not ours any more: OnLost says so at the next poll
		}
		return err
	}
	for p, off := range offsets {
		k.committed[p] = off
	}
	return nil
}
