package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

func init() {
	var (
		partition int
		offset    int64
	)
	register(&command{
		name:    "dump",
		args:    "TOPIC [-partition N] [-offset N]",
		summary: "print frames and records as stored, for debugging",
		describe: `
Prints, for each partition (or only -partition N), every frame of its
segment files from the one holding -offset N: position, kind, commit state,
offsets, times and checksum, then its records. Frames that readers never
deliver (not committed, torn, damaged) are shown with what is wrong with
them. Long keys and values are cut short. A partition whose start
"topics delete-records" moved shows its log-start file first, and the
records below the start, still on disk but given to no reader, end in
"deleted: below the log start"; a damaged log-start file is shown as BAD,
with the byte of the damage, and the frames follow.`,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVarP(&partition, "partition", "p", 0, "only partition `N`")
			fs.Int64Var(&offset, "offset", 0, "start at the frame holding offset `N`")
		},
		nargs:    [2]int{1, 1},
		complete: []argKind{argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				// The config, not DescribeTopic: a dump must not need the
				// partitions' starts, which a damaged log-start file hides.
				cfg, err := l.TopicConfig(args[0])
				if err != nil {
					return err
				}
				parts := []int{partition}
				switch {
				case !fs.Changed("partition"):
					parts = parts[:0]
					for p := range cfg.Partitions {
						parts = append(parts, p)
					}
				case partition < 0 || partition >= cfg.Partitions:
					return partitionRangeError(args[0], partition, cfg.Partitions)
				}
				return dump(ctx, c.stdout, l, args[0], parts, offset)
			})
		},
	})
}

func dump(ctx context.Context, w io.Writer, l *runnel.Log, topic string, parts []int, from int64) error {
	for _, p := range parts {
		fmt.Fprintf(w, "partition %d\n", p)
		path := ""
		start := int64(0) // records below it are deleted
		for f, err := range l.Dump(topic, p, from) {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if f.Path != path {
				path = f.Path
				fmt.Fprintf(w, "%s\n", rel(l.Dir(), path))
			}
			if f.Kind == "log start" {
				start = max(start, f.Base)
			}
			fmt.Fprintln(w, frameLine(f))
			for _, r := range f.Records {
				line := recordLine(r)
				if r.Offset < start {
					line += " deleted: below the log start"
				}
				fmt.Fprintln(w, line)
			}
		}
	}
	return nil
}

func frameLine(f runnel.DumpFrame) string {
	var b strings.Builder
	if f.Kind == "log start" && f.Problem == "" {
		fmt.Fprintf(&b, "  log start %d: records below it are deleted, no reader is given them", f.Base)
		return b.String()
	}
	fmt.Fprintf(&b, "  @%d", f.Pos)
	switch f.Kind {
	case "log start":
		b.WriteString(" log start")
	case "records":
		state := "committed"
		if !f.Committed {
			state = "uncommitted"
		}
		fmt.Fprintf(&b, " records %s offsets %d-%d (%d) size %d first %s max %s checksum %016x",
			state, f.Base, f.Base+int64(f.Count)-1, f.Count, f.Size, stamp(f.FirstTime), stamp(f.MaxTime), f.Checksum)
	case "seal":
		fmt.Fprintf(&b, " seal next segment %d", f.Base)
	case "gap":
		if f.Count > 0 {
			fmt.Fprintf(&b, " gap offsets %d-%d (%d) lost, salvaged, size %d", f.Base, f.Base+int64(f.Count)-1, f.Count, f.Size)
		} else {
			fmt.Fprintf(&b, " gap of %d unreadable bytes, salvaged", f.Size)
		}
	}
	if f.Problem != "" {
		fmt.Fprintf(&b, " BAD: %s", f.Problem)
	}
	return b.String()
}

func recordLine(r runnel.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %d %s key %s value %s", r.Offset, r.Time.UTC().Format(time.RFC3339Nano), short(r.Key), short(r.Value))
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %s=%s", strconv.Quote(h.Key), short(h.Value))
	}
	return b.String()
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// short quotes b, cut to 100 bytes.
func short(b []byte) string {
	if b == nil {
		return "null"
	}
	const limit = 100
	if len(b) <= limit {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s…(%d bytes)", strconv.Quote(string(b[:limit])), len(b))
}

// partitionRangeError says that topic has no partition p, before anything
// is printed for it.
func partitionRangeError(topic string, p, n int) error {
	return fmt.Errorf("%w: topic %s has %d partition%s (0 to %d), not %d", runnel.ErrInvalidArgument, topic, n, plural(n), n-1, p)
}
