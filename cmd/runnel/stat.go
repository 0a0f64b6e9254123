package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

func init() {
	var (
		follow bool
		format string
	)
	register(&command{
		name:    "stat",
		args:    "[-follow] [-format text|json]",
		summary: "show per partition offsets, bytes and append rates, and the groups' lag",
		describe: `
Shows every topic's partitions (first and next offset, records, segments,
bytes, records appended per second) and every consumer group's members,
committed offsets, lag and records committed per second. Rates are
measured over one second, so stat takes a second. With -follow it shows
them again every second until Ctrl-C.

With -format json it prints {"time", "topics": [{"topic", "partition",
"start_offset", "next_offset", "records", "segments", "bytes",
"append_rate"}], "groups": [{"group", "topic", "members", "committed",
"lag", "commit_rate"}]}, one line per second with -follow. Rates are per
second, null in the first look at a partition or group. A group's
committed and lag are sums over the partitions that have them, null (-
in text) while it has committed nothing.

A topic that cannot be described (a damaged topic.json or partition), a
group's topic whose offsets file is damaged, or a group that cannot be
read is left out, the other topics and groups shown, and named on
standard error after the report with the file at fault: the exit status
is then 1, or with -follow it is named after each look and stat goes on.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&follow, "follow", false, "refresh every second until interrupted")
			outputFlag(fs, &format)
		},
		nargs: [2]int{0, 0},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				json := format == "json"
				clear := follow && !json && isTerminal(os.Stdout)
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
					report := compare(prev, cur)
					switch {
					case json:
						if err := writeJSON(c.stdout, report); err != nil {
							return err
						}
					case clear:
						fmt.Fprint(c.stdout, "\x1b[H\x1b[2J")
						printStat(c.stdout, report)
					case follow:
						fmt.Fprintf(c.stdout, "%s\n", cur.at.Format(time.DateTime))
						printStat(c.stdout, report)
						fmt.Fprintln(c.stdout)
					default:
						printStat(c.stdout, report)
					}
					if !follow {
						return errors.Join(cur.unread...)
					}
					for _, err := range cur.unread {
						fmt.Fprintf(c.stderr, "warning: %v\n", err)
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
	// unread are the errors of the topics and groups that could not be
	// read, and of the topics of a group whose offsets could not be
	// (damage), whose other topics are in groups.
	unread []error
}

func snapshot(l *runnel.Log) (stats, error) {
	s := stats{at: time.Now()}
	names, err := l.Topics()
	if err != nil {
		return s, err
	}
	for _, n := range names {
		info, err := l.DescribeTopic(n)
		switch {
		case errors.Is(err, runnel.ErrTopicNotFound):
			continue // deleted meanwhile
		case err != nil:
			// The error names the file (topic.json, a partition's
			// directory or segment) when there is one to name.
			s.unread = append(s.unread, fmt.Errorf("topic %s: %w", n, err))
			continue
		}
		s.topics = append(s.topics, info)
	}
	// One DescribeGroups finds each partition's end once for every group.
	for info, err := range l.DescribeGroups() {
		if info.Group == "" { // the listing failed
			return s, err
		}
		gtes := runnel.GroupTopicErrors(err)
		if err != nil && gtes == nil {
			s.unread = append(s.unread, err)
			continue
		}
		for _, gte := range gtes {
			s.unread = append(s.unread, gte)
		}
		s.groups = append(s.groups, info)
	}
	return s, nil
}

// statReport is what stat shows: each partition and each group's topic,
// with rates over the time between two looks.
type statReport struct {
	Time   string          `json:"time"`
	Topics []statPartition `json:"topics"`
	Groups []statGroup     `json:"groups"`
}

type statPartition struct {
	Topic string `json:"topic"`
	jsonPartitionState
	AppendRate *float64 `json:"append_rate"` // records per second; null if not seen before
}

type statGroup struct {
	Group      string   `json:"group"`
	Topic      string   `json:"topic"`
	Members    int      `json:"members"`
	Committed  *int64   `json:"committed"`   // sum over the partitions that have one; null if none has
	Lag        *int64   `json:"lag"`         // likewise: a group that committed nothing has no lag to show
	CommitRate *float64 `json:"commit_rate"` // records committed per second; null if not seen before
}

// compare measures cur against prev.
func compare(prev, cur stats) statReport {
	dt := cur.at.Sub(prev.at).Seconds()
	rate := func(now, before int64, ok bool) *float64 {
		if !ok || dt <= 0 {
			return nil
		}
		r := float64(max(0, now-before)) / dt
		return &r
	}
	type partKey struct {
		topic     string
		partition int
	}
	type groupKey struct{ group, topic string }
	appended := map[partKey]int64{}
	committed := map[groupKey]int64{}
	for _, t := range prev.topics {
		for _, p := range t.Partitions {
			appended[partKey{t.Name, p.Partition}] = p.NextOffset
		}
	}
	for _, g := range prev.groups {
		for _, t := range g.Topics {
			sum, _ := groupSums(t)
			committed[groupKey{g.Group, t.Topic}] = orZero(sum)
		}
	}
	r := statReport{Time: jsonTime(cur.at), Topics: []statPartition{}, Groups: []statGroup{}}
	for _, t := range cur.topics {
		for _, p := range t.Partitions {
			old, ok := appended[partKey{t.Name, p.Partition}]
			r.Topics = append(r.Topics, statPartition{Topic: t.Name, jsonPartitionState: newPartitionState(p), AppendRate: rate(p.NextOffset, old, ok)})
		}
	}
	for _, g := range cur.groups {
		for _, t := range g.Topics {
			sum, lag := groupSums(t)
			old, ok := committed[groupKey{g.Group, t.Topic}]
			r.Groups = append(r.Groups, statGroup{Group: g.Group, Topic: t.Topic, Members: len(t.Members), Committed: sum, Lag: lag, CommitRate: rate(orZero(sum), old, ok)})
		}
	}
	return r
}

func printStat(w io.Writer, r statReport) {
	showRate := func(r *float64) string {
		if r == nil {
			return "-"
		}
		return humanRate(*r)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART\tEND\tRECORDS\tSEGMENTS\tBYTES\tIN/s")
	if len(r.Topics) == 0 {
		fmt.Fprintln(tw, "(no topics)")
	}
	for _, p := range r.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.StartOffset, p.NextOffset,
			p.Records, p.Segments, humanBytes(p.Bytes), showRate(p.AppendRate))
	}
	tw.Flush()
	if len(r.Groups) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tMEMBERS\tCOMMITTED\tLAG\tOUT/s")
	showSum := func(n *int64) string {
		if n == nil {
			return "-"
		}
		return fmt.Sprint(*n)
	}
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", shownName(g.Group), g.Topic, g.Members, showSum(g.Committed), showSum(g.Lag), showRate(g.CommitRate))
	}
	tw.Flush()
}

// groupSums sums a group's committed offsets and lags for a topic over the
// partitions where each is known, and is nil where none is: a partition
// without a committed offset has no lag, as in "groups describe", and a
// group that committed nothing is not caught up.
func groupSums(t runnel.GroupTopic) (committed, lag *int64) {
	add := func(sum *int64, n int64) *int64 {
		if n < 0 {
			return sum // unknown
		}
		return ptr(orZero(sum) + n)
	}
	for _, p := range t.Partitions {
		committed, lag = add(committed, p.Committed), add(lag, p.Lag)
	}
	return committed, lag
}

func orZero(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}
