package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/runnel-log/runnel"
)

func init() {
	var follow bool
	register(&command{
		name:    "stat",
		args:    "[-follow]",
		summary: "show per partition offsets, bytes and append rates, and the groups' lag",
		describe: `
Shows every topic's partitions (first and next offset, records, segments,
bytes, records appended per second) and every consumer group's members,
committed offsets, lag and records committed per second. Rates are
measured over one second, so stat takes a second. With -follow it shows
them again every second until Ctrl-C.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&follow, "follow", false, "refresh every second until interrupted")
		},
		nargs: [2]int{0, 0},
		run: func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				clear := follow && isTerminal(os.Stdout.Fd())
				prev, err := snapshot(l)
				if err != nil {
					return err
				}
				for {
					select {
					case <-ctx.Done():
						return nil // Ctrl-C
					case <-time.After(time.Second):
					}
					cur, err := snapshot(l)
					if err != nil {
						return err
					}
					if clear {
						fmt.Fprint(c.stdout, "\x1b[H\x1b[2J")
					} else if follow {
						fmt.Fprintf(c.stdout, "%s\n", cur.at.Format(time.DateTime))
					}
					printStat(c.stdout, prev, cur)
					if !follow {
						return nil
					}
					if !clear {
						fmt.Fprintln(c.stdout)
					}
					prev = cur
				}
			})
		},
	})
}

// stats is one look at every topic and group.
type stats struct {
	at     time.Time
	topics []runnel.TopicInfo
	groups []runnel.GroupInfo
}

func snapshot(l *runnel.Log) (stats, error) {
	s := stats{at: time.Now()}
	names, err := l.Topics()
	if err != nil {
		return s, err
	}
	for _, n := range names {
		info, err := l.DescribeTopic(n)
		if err != nil {
			continue // deleted meanwhile
		}
		s.topics = append(s.topics, info)
	}
	groups, err := l.ListGroups()
	if err != nil {
		return s, err
	}
	for _, g := range groups {
		info, err := l.DescribeGroup(g)
		if err != nil {
			continue
		}
		s.groups = append(s.groups, info)
	}
	return s, nil
}

func printStat(w io.Writer, prev, cur stats) {
	dt := cur.at.Sub(prev.at).Seconds()
	before := map[string]map[int]int64{}
	for _, t := range prev.topics {
		before[t.Name] = map[int]int64{}
		for _, p := range t.Partitions {
			before[t.Name][p.Partition] = p.NextOffset
		}
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART\tEND\tRECORDS\tSEGMENTS\tBYTES\tIN/s")
	if len(cur.topics) == 0 {
		fmt.Fprintln(tw, "(no topics)")
	}
	for _, t := range cur.topics {
		for _, p := range t.Partitions {
			rate := "-"
			if old, ok := before[t.Name][p.Partition]; ok && dt > 0 {
				rate = humanRate(float64(max(0, p.NextOffset-old)) / dt)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", t.Name, p.Partition, p.StartOffset, p.NextOffset,
				p.NextOffset-p.StartOffset, p.Segments, humanBytes(p.Bytes), rate)
		}
	}
	tw.Flush()
	if len(cur.groups) == 0 {
		return
	}
	committed := map[string]int64{}
	for _, g := range prev.groups {
		for _, t := range g.Topics {
			committed[g.Group+"\x00"+t.Topic] = sumCommitted(t)
		}
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tMEMBERS\tCOMMITTED\tLAG\tOUT/s")
	for _, g := range cur.groups {
		for _, t := range g.Topics {
			var lag int64
			for _, p := range t.Partitions {
				if p.Lag > 0 {
					lag += p.Lag
				}
			}
			sum := sumCommitted(t)
			rate := "-"
			if old, ok := committed[g.Group+"\x00"+t.Topic]; ok && dt > 0 {
				rate = humanRate(float64(max(0, sum-old)) / dt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", g.Group, t.Topic, len(t.Members), sum, lag, rate)
		}
	}
	tw.Flush()
}

func sumCommitted(t runnel.GroupTopic) int64 {
	var n int64
	for _, p := range t.Partitions {
		if p.Committed > 0 {
			n += p.Committed
		}
	}
	return n
}
