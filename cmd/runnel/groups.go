package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/kafka"
)

func init() {
	var listFormat string
	register(&command{
		name:    "groups list",
		args:    "[-format text|json]",
		summary: "list the consumer groups, one per line",
		describe: `
With -format json: an array of {"name", "topics"}, the topics being those
the group has offsets for. A damaged offsets file is named on standard
error after the list, which lists its topic, and the exit status is 1.`,
		flags: func(fs *pflag.FlagSet) { outputFlag(fs, &listFormat) },
		nargs: [2]int{0, 0},
		run:   listWith(&listFormat, (*runnel.Log).ListGroups, groupEntries),
	})
	var describeFormat string
	register(&command{
		name:    "groups describe",
		args:    "GROUP [-format text|json]",
		summary: "show a group's members, and per partition its committed offset, lag and owner",
		describe: `
With -format json: {"name", "topics": [{"topic", "members": [{"slot",
"name", "pid", "joined", "partitions"}], "partitions": [{"partition",
"committed", "committed_at", "end", "lag", "owned", "owner"}]}]}, where
committed, committed_at, end, lag and owner are null when unknown.

A topic whose offsets file is damaged is left out: the others are shown,
the damage (topic, file and byte) is named on standard error, and the
exit status is 1.`,
		flags:    func(fs *pflag.FlagSet) { outputFlag(fs, &describeFormat) },
		nargs:    [2]int{1, 1},
		complete: []argKind{argGroup},
		run:      describeWith(&describeFormat, (*runnel.Log).DescribeGroup, printGroup, newJSONGroup),
	})
	var (
		deleteForce bool
		deleteParts []int
	)
	register(&command{
		name:    "groups delete",
		args:    "GROUP [TOPIC [-partition N]...] [-force]",
		summary: "delete a consumer group, or its committed offsets for a topic",
		describe: `
Removes the group's committed offsets for every topic. The group's members
must be stopped first: the command fails and deletes nothing while one is
alive, unless -force is given; then each live member's next poll or commit
fails.

With TOPIC, removes only the group's committed offsets for that topic (for
the partitions given with -partition, repeated or comma-separated, or all),
as kafka-consumer-groups --delete-offsets does: a member that takes such a
partition starts where a new group would. The group's members of that
topic must be stopped; there is no -force.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&deleteForce, "force", false, "delete even while members are alive")
			fs.IntSliceVarP(&deleteParts, "partition", "p", nil, "with TOPIC: delete only partition `N`'s offset (repeat, or N,M,...)")
		},
		nargs:    [2]int{1, 2},
		complete: []argKind{argGroup, argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			if len(args) == 1 && deleteParts != nil {
				return usagef("-partition needs a TOPIC")
			}
			if len(args) == 2 && deleteForce {
				return usagef("-force deletes a whole group; a topic's offsets are deleted only with its members stopped")
			}
			return c.withLog(func(l *runnel.Log) error {
				if len(args) == 2 {
					return deleteGroupOffsets(ctx, c, l, args[0], args[1], deleteParts)
				}
				err := l.DeleteGroup(ctx, args[0], &runnel.DeleteGroupOptions{Force: deleteForce})
				if errors.Is(err, runnel.ErrGroupActive) {
					return fmt.Errorf("%w; -force forces it", err)
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
		partitions           []int
		force                bool
	)
	register(&command{
		name:    "groups reset",
		args:    "GROUP TOPIC (-to-earliest | -to-latest | -to-offset N | -to-time T)\n      [-partition N]... [-force]",
		summary: "move a group's committed offsets for a topic",
		describe: `
Sets the group's committed offset of every partition of TOPIC (or only of
those given with -partition, repeated or comma-separated): to the oldest
record still stored, past the newest, to offset N, or to the first record
at or after time T (RFC 3339, a date, or a duration ago such as 2h).

Partitions that live members own are not reset: the command fails and
changes nothing, unless -force is given. With -force each owner is asked to
move to the new offset and commit it, which it does at its next poll, and
the command waits until every owner has; Ctrl-C stops the wait, and the
requests stay and take effect when the owners next poll. A Kafka client
(a member through runnel serve) keeps its own position while it owns a
partition: it does not see a forced reset, and its next commit replaces
it. Stop Kafka members before a reset, as Kafka requires.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&toEarliest, "to-earliest", false, "to the oldest record still stored")
			fs.BoolVar(&toLatest, "to-latest", false, "past the newest record")
			fs.Int64Var(&toOffset, "to-offset", 0, "to offset `N` in every partition")
			fs.StringVar(&toTime, "to-time", "", "to the first record at or after `T`")
			fs.IntSliceVarP(&partitions, "partition", "p", nil, "reset only partition `N` (repeat, or N,M,...)")
			fs.BoolVar(&force, "force", false, "reset partitions that live members own, and wait until they have moved")
		},
		nargs:    [2]int{2, 2},
		complete: []argKind{argGroup, argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			var to runnel.StartPosition
			n := 0
			if toEarliest {
				to, n = runnel.Earliest, n+1
			}
			if toLatest {
				to, n = runnel.Latest, n+1
			}
			if fs.Changed("to-offset") {
				to, n = runnel.AtOffset(toOffset), n+1
			}
			if fs.Changed("to-time") {
				t, err := parseTime(toTime, time.Now())
				if err != nil {
					return usagef("-to-time: %v", err)
				}
				to, n = runnel.AtTime(t), n+1
			}
			if n != 1 {
				return usagef("give exactly one of -to-earliest, -to-latest, -to-offset and -to-time")
			}
			opts := &runnel.ResetOptions{Partitions: partitions, Force: force}
			return c.withLog(func(l *runnel.Log) error {
				if force {
					warnKafkaOwners(c, l, args[0], args[1])
				}
				offsets, err := l.ResetGroupOffsets(ctx, args[0], args[1], to, opts)
				switch {
				case errors.Is(err, runnel.ErrGroupActive):
					return fmt.Errorf("%w; -force forces it", err)
				case force && ctx.Err() != nil && errors.Is(err, ctx.Err()):
					return errors.New("interrupted: the owners have not all moved yet; they will at their next poll")
				case err != nil:
					return err
				}
				parts := slices.Sorted(maps.Keys(offsets))
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

// partial reports whether err is DescribeGroup's report of the topics
// whose offsets it could not read (damage), which comes with the group's
// other topics: a command prints those, and fails with err after them, as
// sqlite3 and kcat show what is readable and name the damage.
func partial(err error) bool {
	return runnel.GroupTopicErrors(err) != nil
}

// warnKafkaOwners warns before a forced reset of topic in group when
// Kafka clients (members runnel serve named kafka/...) own partitions of
// it: they keep their own positions and will commit over the reset. The
// group's other topics' offsets files do not matter, damaged or not;
// whatever keeps topic from being described, the reset reports.
func warnKafkaOwners(c *cli, l *runnel.Log, group, topic string) {
	info, err := l.DescribeGroup(group)
	if err != nil && !partial(err) {
		return
	}
	for _, t := range info.Topics {
		if t.Topic != topic {
			continue
		}
		for _, m := range t.Members {
			if strings.HasPrefix(m.Name, kafka.MemberNamePrefix) && len(m.Partitions) > 0 {
				fmt.Fprintf(c.stderr, "warning: Kafka member %s owns partitions %v: a Kafka client does not see a forced reset, and its next commit replaces it; stop it first\n", shownName(m.Name), m.Partitions)
			}
		}
	}
}

func printGroup(w io.Writer, info runnel.GroupInfo) {
	fmt.Fprintf(w, "group %s\n", shownName(info.Group))
	for _, t := range info.Topics {
		fmt.Fprintf(w, "\ntopic %s: %d live member%s\n", t.Topic, len(t.Members), plural(len(t.Members)))
		for _, m := range t.Members {
			parts := make([]string, len(m.Partitions))
			for i, p := range m.Partitions {
				parts[i] = fmt.Sprint(p)
			}
			fmt.Fprintf(w, "  member %d  %s  pid %d  joined %s  partitions [%s]\n", m.Slot, shownName(m.Name), m.PID,
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
			case p.Lease > 0:
				owner = "lease " + p.Lease.String() // a gone owner's: see ConsumerOptions.Lease
			}
			if !p.CommittedAt.IsZero() {
				at = p.CommittedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", p.Partition, committed, p.End, lag, owner, at)
		}
		tw.Flush()
	}
}

// deleteGroupOffsets is groups delete with a TOPIC.
func deleteGroupOffsets(ctx context.Context, c *cli, l *runnel.Log, group, topic string, parts []int) error {
	err := l.DeleteGroupOffsets(ctx, group, topic, parts)
	if errors.Is(err, runnel.ErrGroupActive) {
		return err // it says to stop them first
	}
	if err != nil {
		return err
	}
	which := "all partitions"
	if parts != nil {
		which = fmt.Sprintf("partitions %v", parts)
	}
	fmt.Fprintf(c.stdout, "deleted group %s's offsets for topic %s, %s\n", group, topic, which)
	return nil
}

// groupEntries describes every group at once (DescribeGroups finds each
// partition's end once for all of them, where a DescribeGroup per group
// took 5.7 s for 5,000 groups) and returns the lookup of "groups list
// -format json"'s entry for a name. A name missing from the description
// was deleted since the listing.
func groupEntries(l *runnel.Log) func(string) (any, error) {
	type described struct {
		info runnel.GroupInfo
		err  error
	}
	all := map[string]described{}
	var listErr error
	for info, err := range l.DescribeGroups() {
		if info.Group == "" { // the listing failed
			listErr = err
			break
		}
		all[info.Group] = described{info, err}
	}
	return func(name string) (any, error) {
		d, ok := all[name]
		switch {
		case listErr != nil:
			return nil, listErr
		case !ok:
			return nil, fmt.Errorf("%w: %s", runnel.ErrGroupNotFound, name)
		}
		return newJSONGroupEntry(d.info, d.err), d.err
	}
}
