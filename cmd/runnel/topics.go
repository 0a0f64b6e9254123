package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

// topicFlags are the config flags shared by topics create and alter; a
// flag the user did not give leaves the setting alone.
type topicFlags struct {
	partitions     int
	segmentBytes   string
	retention      string
	retentionBytes string
}

// define defines the flags, -partitions with create's meaning or, for
// alter (create false), a growth's.
func (tf *topicFlags) define(fs *pflag.FlagSet, create bool) {
	if create {
		fs.IntVar(&tf.partitions, "partitions", 1, "split the topic into `N` partitions")
	} else {
		fs.IntVar(&tf.partitions, "partitions", 0, "grow the topic to `N` partitions (never fewer); new ones start empty, and keys may map to other partitions than before")
	}
	fs.StringVar(&tf.segmentBytes, "segment-bytes", "", "roll a partition to a new segment file at `N` bytes, e.g. 64MiB (default 64MiB, at least 64KiB)")
	fs.StringVar(&tf.retention, "retention", "", "remove sealed segments whose newest record is older than `DURATION`, e.g. 7d or 36h; 0 keeps records forever (the default)")
	fs.StringVar(&tf.retentionBytes, "retention-bytes", "", "remove a partition's oldest sealed segments while it holds more than `N` bytes, e.g. 10GiB; 0 means no limit (the default)")
}

// apply sets the given flags in cfg and reports whether any was given.
func (tf *topicFlags) apply(fs *pflag.FlagSet, cfg *runnel.TopicConfig) (bool, error) {
	var err error
	given := false
	fs.Visit(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		switch f.Name {
		case "partitions":
			cfg.Partitions = tf.partitions
		case "segment-bytes":
			cfg.SegmentBytes, err = parseBytes(tf.segmentBytes)
		case "retention":
			cfg.RetentionAge, err = parseDuration(tf.retention)
		case "retention-bytes":
			cfg.RetentionBytes, err = parseBytes(tf.retentionBytes)
		default:
			return
		}
		given = true
	})
	if err != nil {
		return given, usagef("%v", err)
	}
	return given, nil
}

func init() {
	var tf topicFlags
	register(&command{
		name:    "topics create",
		args:    "NAME [-partitions N] [-segment-bytes N] [-retention DURATION] [-retention-bytes N]",
		summary: "create a topic",
		describe: `
Creates the topic, and the log directory if there is none yet. Topic names
are 1 to 249 characters of [a-zA-Z0-9._-].`,
		flags: func(fs *pflag.FlagSet) { tf.define(fs, true) },
		nargs: [2]int{1, 1},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) (err error) {
			cfg := runnel.TopicConfig{Partitions: tf.partitions}
			if _, err := tf.apply(fs, &cfg); err != nil {
				return err
			}
			l, err := c.open(true, nil)
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			if err := l.CreateTopicContext(ctx, args[0], cfg); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "created topic %s with %d partition%s\n", args[0], cfg.Partitions, plural(cfg.Partitions))
			return nil
		},
	})
	var listFormat string
	register(&command{
		name:    "topics list",
		args:    "[-format text|json]",
		summary: "list the topics, one per line",
		describe: `
With -format json: an array of {"name", "partitions"}.`,
		flags: func(fs *pflag.FlagSet) { outputFlag(fs, &listFormat) },
		nargs: [2]int{0, 0},
		run: listWith(&listFormat, (*runnel.Log).Topics, func(l *runnel.Log) func(string) (any, error) {
			return func(name string) (any, error) {
				cfg, err := l.TopicConfig(name)
				return jsonTopicEntry{Name: name, Partitions: cfg.Partitions}, err
			}
		}),
	})
	var describeFormat string
	register(&command{
		name:    "topics describe",
		args:    "NAME [-format text|json]",
		summary: "show a topic's config and, per partition, its offsets and size",
		describe: `
With -format json: {"name", "partitions", "config" (as stored in the
topic's topic.json, but for its id), "offsets": [{"partition",
"start_offset", "next_offset", "records", "segments", "bytes"}]}.`,
		flags:    func(fs *pflag.FlagSet) { outputFlag(fs, &describeFormat) },
		nargs:    [2]int{1, 1},
		complete: []argKind{argTopic},
		run:      describeWith(&describeFormat, (*runnel.Log).DescribeTopic, printTopic, newJSONTopic),
	})
	var atf topicFlags
	register(&command{
		name:    "topics alter",
		args:    "NAME [-partitions N] [-segment-bytes N] [-retention DURATION] [-retention-bytes N]",
		summary: "add partitions to a topic, or change its segment size or retention",
		describe: `
Changes only the settings given. Retention applies at once: segments now
outside the limits are removed before the command returns. Processes that
have the log open pick the change up within a minute, or when they reopen
it.

-partitions N grows the topic to N partitions, as Kafka's kafka-topics.sh
--alter --partitions does; it never shrinks. The records stay where they
are; the new partitions start empty, and consumer groups take them at
once (from where -group consumers start a partition without a commit).
A record's key picks its partition by hash modulo the count, so records
of one key sent after the growth may go to another partition than those
sent before it.`,
		flags:    func(fs *pflag.FlagSet) { atf.define(fs, false) },
		nargs:    [2]int{1, 1},
		complete: []argKind{argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			var changes runnel.TopicConfig
			given, err := atf.apply(fs, &changes)
			if err != nil {
				return err
			}
			if !given {
				return usagef("nothing to change: give -partitions, -segment-bytes, -retention or -retention-bytes")
			}
			return c.withLog(func(l *runnel.Log) error {
				before, err := l.DescribeTopic(args[0])
				if err != nil {
					return err
				}
				err = l.AlterTopicContext(ctx, args[0], func(cfg *runnel.TopicConfig) {
					_, _ = atf.apply(fs, cfg)
				})
				if err != nil {
					return err
				}
				if err := l.EnforceRetention(ctx); err != nil {
					return fmt.Errorf("topic altered, but applying retention failed: %w", err)
				}
				after, err := l.DescribeTopic(args[0])
				if err != nil {
					return err
				}
				cfg := after.Config
				fmt.Fprintf(c.stdout, "altered topic %s: segment bytes %d, retention %s, retention bytes %s\n",
					args[0], cfg.SegmentBytes, humanDuration(cfg.RetentionAge), limitBytes(cfg.RetentionBytes))
				if added := cfg.Partitions - before.Config.Partitions; added > 0 {
					fmt.Fprintf(c.stdout, "added %d partition%s: %d now\n", added, plural(added), cfg.Partitions)
				}
				var segs int
				var bytes int64
				for i, p := range before.Partitions {
					segs += p.Segments - after.Partitions[i].Segments
					bytes += p.Bytes - after.Partitions[i].Bytes
				}
				if segs > 0 {
					fmt.Fprintf(c.stdout, "retention removed %d segment%s (%s)\n", segs, plural(segs), humanBytes(max(0, bytes)))
				}
				return nil
			})
		},
	})
	register(&command{
		name:     "topics delete",
		args:     "NAME",
		summary:  "delete a topic and all its records",
		nargs:    [2]int{1, 1},
		complete: []argKind{argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				if err := l.DeleteTopicContext(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "deleted topic %s\n", args[0])
				return nil
			})
		},
	})
}

func printTopic(w io.Writer, info runnel.TopicInfo) {
	cfg := info.Config
	fmt.Fprintf(w, "topic %s\n", info.Name)
	fmt.Fprintf(w, "  partitions       %d\n", cfg.Partitions)
	fmt.Fprintf(w, "  segment bytes    %d (%s)\n", cfg.SegmentBytes, humanBytes(cfg.SegmentBytes))
	fmt.Fprintf(w, "  index interval   %d bytes\n", cfg.IndexIntervalBytes)
	fmt.Fprintf(w, "  retention        %s\n", humanDuration(cfg.RetentionAge))
	fmt.Fprintf(w, "  retention bytes  %s\n\n", limitBytes(cfg.RetentionBytes))
	tw := newTable(w)
	fmt.Fprintln(tw, "PARTITION\tSTART\tEND\tRECORDS\tSEGMENTS\tBYTES")
	var total runnel.PartitionInfo
	for _, p := range info.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\n", p.Partition, p.StartOffset, p.NextOffset, p.NextOffset-p.StartOffset, p.Segments, humanBytes(p.Bytes))
		total.NextOffset += p.NextOffset - p.StartOffset
		total.Segments += p.Segments
		total.Bytes += p.Bytes
	}
	if len(info.Partitions) > 1 {
		fmt.Fprintf(tw, "all\t\t\t%d\t%d\t%s\n", total.NextOffset, total.Segments, humanBytes(total.Bytes))
	}
	tw.Flush()
}

func limitBytes(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d (%s)", n, humanBytes(n))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// listWith is the run of a list command: the names list returns, one per
// line, or with -format json an array of what the function asJSON returns
// makes of each (names removed meanwhile are left out). asJSON is called
// once, after the listing, so that it may look at every name at once.
func listWith(format *string, list func(*runnel.Log) ([]string, error), asJSON func(*runnel.Log) func(string) (any, error)) runFunc {
	return func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
		return c.withLog(func(l *runnel.Log) error {
			names, err := list(l)
			if err != nil {
				return err
			}
			if *format == "text" {
				for _, n := range names {
					fmt.Fprintln(c.stdout, shownName(n))
				}
				return nil
			}
			out := []any{}
			var left []error
			entry := asJSON(l)
			for _, n := range names {
				v, err := entry(n)
				if errors.Is(err, runnel.ErrTopicNotFound) || errors.Is(err, runnel.ErrGroupNotFound) {
					continue
				}
				if err != nil && !partial(err) {
					return err
				}
				if err != nil {
					left = append(left, err)
				}
				out = append(out, v)
			}
			if err := writeJSON(c.stdout, out); err != nil {
				return err
			}
			return errors.Join(left...)
		})
	}
}

// describeWith is the run of a command that looks up its one argument with
// get and prints what it finds with text, or as JSON. A partial answer is
// printed, and its error then fails the command.
func describeWith[T, J any](format *string, get func(*runnel.Log, string) (T, error), text func(io.Writer, T), asJSON func(T) J) runFunc {
	return func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
		return c.withLog(func(l *runnel.Log) error {
			info, err := get(l, args[0])
			if err != nil && !partial(err) {
				return err
			}
			if *format == "json" {
				if err := writeJSON(c.stdout, asJSON(info)); err != nil {
					return err
				}
			} else {
				text(c.stdout, info)
			}
			return err
		})
	}
}
