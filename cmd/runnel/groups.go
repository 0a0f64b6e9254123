package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/runnel-log/runnel"
)

func init() {
	register(&command{
		name:    "groups list",
		summary: "list the consumer groups, one per line",
		nargs:   [2]int{0, 0},
		run:     listNames((*runnel.Log).ListGroups),
	})
	register(&command{
		name:    "groups describe",
		args:    "GROUP",
		summary: "show a group's members, and per partition its committed offset, lag and owner",
		nargs:   [2]int{1, 1},
		run:     describeWith((*runnel.Log).DescribeGroup, printGroup),
	})
	var force bool
	register(&command{
		name:    "groups delete",
		args:    "GROUP [-force]",
		summary: "delete a consumer group and its committed offsets",
		describe: `
Removes the group's committed offsets for every topic. The group's members
must be stopped first; with -force they are not waited for, and each one's
next poll or commit fails.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&force, "force", false, "delete even while members are alive")
		},
		nargs: [2]int{1, 1},
		run: func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				err := l.DeleteGroup(ctx, args[0], &runnel.DeleteGroupOptions{Force: force})
				if errors.Is(err, runnel.ErrGroupActive) {
					return fmt.Errorf("%w: stop the group's consumers first, or use -force", err)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "deleted group %s\n", args[0])
				return nil
			})
		},
	})
	var (
		toEarliest, toLatest bool
		toOffset             int64
		toTime               string
	)
	register(&command{
		name:    "groups reset",
		args:    "GROUP TOPIC (-to-earliest | -to-latest | -to-offset N | -to-time T)",
		summary: "move a group's committed offsets for a topic",
		describe: `
Sets the group's committed offset of every partition of TOPIC: to the
oldest record still stored, past the newest, to offset N, or to the first
record at or after time T (RFC 3339, a date, or a duration ago such as 2h).
The group's members must be stopped first.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&toEarliest, "to-earliest", false, "to the oldest record still stored")
			fs.BoolVar(&toLatest, "to-latest", false, "past the newest record")
			fs.Int64Var(&toOffset, "to-offset", 0, "to offset `N` in every partition")
			fs.StringVar(&toTime, "to-time", "", "to the first record at or after `T`")
		},
		nargs: [2]int{2, 2},
		run: func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error {
			var to runnel.StartPosition
			n := 0
			if toEarliest {
				to, n = runnel.Earliest, n+1
			}
			if toLatest {
				to, n = runnel.Latest, n+1
			}
			if isSet(fs, "to-offset") {
				to, n = runnel.AtOffset(toOffset), n+1
			}
			if isSet(fs, "to-time") {
				t, err := parseTime(toTime, time.Now())
				if err != nil {
					return usagef("-to-time: %v", err)
				}
				to, n = runnel.AtTime(t), n+1
			}
			if n != 1 {
				return usagef("give exactly one of -to-earliest, -to-latest, -to-offset and -to-time")
			}
			return c.withLog(func(l *runnel.Log) error {
				offsets, err := l.ResetGroupOffsets(ctx, args[0], args[1], to, nil)
				if errors.Is(err, runnel.ErrGroupActive) {
					return fmt.Errorf("%w: stop the group's consumers first", err)
				}
				if err != nil {
					return err
				}
				parts := make([]int, 0, len(offsets))
				for p := range offsets {
					parts = append(parts, p)
				}
				slices.Sort(parts)
				tw := newTable(c.stdout)
				fmt.Fprintln(tw, "PARTITION\tCOMMITTED")
				for _, p := range parts {
					fmt.Fprintf(tw, "%d\t%d\n", p, offsets[p])
				}
				return tw.Flush()
			})
		},
	})
}

func printGroup(w io.Writer, info runnel.GroupInfo) {
	fmt.Fprintf(w, "group %s\n", info.Group)
	for _, t := range info.Topics {
		fmt.Fprintf(w, "\ntopic %s: %d live member%s\n", t.Topic, len(t.Members), plural(len(t.Members)))
		for _, m := range t.Members {
			parts := make([]string, len(m.Partitions))
			for i, p := range m.Partitions {
				parts[i] = fmt.Sprint(p)
			}
			fmt.Fprintf(w, "  member %d  %s  pid %d  joined %s  partitions [%s]\n", m.Slot, m.Name, m.PID,
				m.Joined.Local().Format(time.DateTime), strings.Join(parts, " "))
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tEND\tLAG\tOWNER\tCOMMITTED AT")
		for _, p := range t.Partitions {
			committed, lag, owner, at := "-", "-", "-", "-"
			if p.Committed >= 0 {
				committed = fmt.Sprint(p.Committed)
			}
			if p.Lag >= 0 {
				lag = fmt.Sprint(p.Lag)
			}
			switch {
			case p.Owner >= 0:
				owner = fmt.Sprintf("member %d", p.Owner)
			case p.Owned:
				owner = "yes"
			}
			if !p.CommittedAt.IsZero() {
				at = p.CommittedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", p.Partition, committed, p.End, lag, owner, at)
		}
		tw.Flush()
	}
}
