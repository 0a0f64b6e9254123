package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

// topics offsets: kcat -Q, which asks Kafka for the offset of each
// partition's first record at or after a time (ListOffsets).

// The times kcat -Q passes on to librdkafka that are not times: a
// partition's end and its start.
const (
	queryEnd       = -1
	queryBeginning = -2
)

// offsetQuery is one partition asked for: kcat -Q's TOPIC:PARTITION:MS.
type offsetQuery struct {
	topic     string
	partition int
	ms        int64 // milliseconds since 1970, or queryEnd or queryBeginning
}

// offsetAnswer is what topics offsets found: the offset, or -1 where no
// record is at or after the time, and the time of the record found.
type offsetAnswer struct {
	offsetQuery
	offset int64
	at     time.Time // zero for queryEnd and queryBeginning, and where none was found
}

type jsonOffsetAnswer struct {
	Topic     string  `json:"topic"`
	Partition int     `json:"partition"`
	Offset    *int64  `json:"offset"`
	Time      *string `json:"time"`
}

func init() {
	var format, at string
	register(&command{
		name:    "topics offsets",
		args:    "TOPIC[:PARTITION[:MS]]... [-time TIME] [-format text|json]",
		summary: "find each partition's offset at a time, as kcat -Q",
		describe: `
Prints, for each partition asked for, the offset of its first record at
or after a time, as kcat -Q -t TOPIC:PARTITION:MS does over Kafka: one
line "TOPIC [PARTITION] offset N" each, sorted by topic and partition,
offset -1 where no record is at or after the time. MS is milliseconds
since 1970, or -1 for the partition's end (the offset the next record
will get) and -2 for its start (the oldest record still stored), as kcat
takes them. Without :PARTITION, every partition of TOPIC; without :MS,
the time -time gives (RFC 3339, a date, or a duration ago such as 2h).

With -format json: an array of {"topic", "partition", "offset", "time"},
time being the record's found (RFC 3339), and offset and time null where
no record is at or after the time.`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&at, "time", "", "look up `TIME` for the arguments without :MS (RFC 3339, a date, or a duration ago)")
			outputFlag(fs, &format)
		},
		nargs:    [2]int{1, manyArgs},
		complete: []argKind{argTopic},
		moreArgs: argTopic,
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			ms := int64(0)
			if fs.Changed("time") {
				t, err := parseTime(at, time.Now())
				if err != nil {
					return usagef("-time: %v", err)
				}
				ms = max(0, t.UnixMilli())
			}
			return c.withLog(func(l *runnel.Log) error {
				queries, err := offsetQueries(l, args, ms, fs.Changed("time"))
				if err != nil {
					return err
				}
				var answers []offsetAnswer
				for _, q := range queries {
					a, err := findOffset(l, q)
					if err != nil {
						return err
					}
					answers = append(answers, a)
				}
				if format == "json" {
					out := []jsonOffsetAnswer{}
					for _, a := range answers {
						j := jsonOffsetAnswer{Topic: a.topic, Partition: a.partition, Offset: known(a.offset)}
						if !a.at.IsZero() {
							t := jsonTime(a.at)
							j.Time = &t
						}
						out = append(out, j)
					}
					return writeJSON(c.stdout, out)
				}
				for _, a := range answers {
					fmt.Fprintf(c.stdout, "%s [%d] offset %d\n", a.topic, a.partition, a.offset)
				}
				return nil
			})
		},
	})
}

// offsetQueries reads the arguments, TOPIC[:PARTITION[:MS]], into the
// partitions to look up, sorted by topic and partition as kcat prints
// them; ms is the time of those without :MS if given is set. A topic or
// partition that does not exist fails before any is looked up.
func offsetQueries(l *runnel.Log, args []string, ms int64, given bool) ([]offsetQuery, error) {
	var queries []offsetQuery
	for _, arg := range args {
		parts := strings.SplitN(arg, ":", 3)
		q := offsetQuery{topic: parts[0], partition: -1, ms: ms}
		var err error
		if len(parts) > 1 {
			q.partition, err = strconv.Atoi(parts[1])
			if err == nil && q.partition < 0 {
				err = errors.New("a partition below 0")
			}
		}
		if len(parts) > 2 && err == nil {
			q.ms, err = strconv.ParseInt(parts[2], 10, 64)
			if err == nil && q.ms < queryBeginning {
				err = errors.New("a time before -2")
			}
		}
		switch {
		case err != nil || q.topic == "":
			return nil, usagef("%q: want TOPIC[:PARTITION[:MS]], MS milliseconds since 1970 (or -1 for the end, -2 for the start)", arg)
		case len(parts) < 3 && !given:
			return nil, usagef("%q has no time: give each a time, as TOPIC:PARTITION:MS or with -time", arg)
		}
		cfg, err := l.TopicConfig(q.topic)
		if err != nil {
			return nil, err
		}
		if q.partition >= cfg.Partitions {
			return nil, partitionRangeError(q.topic, q.partition, cfg.Partitions)
		}
		if q.partition >= 0 {
			queries = append(queries, q)
			continue
		}
		for p := range cfg.Partitions {
			q.partition = p
			queries = append(queries, q)
		}
	}
	slices.SortStableFunc(queries, func(a, b offsetQuery) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), a.partition-b.partition)
	})
	return queries, nil
}

// findOffset answers q: the partition's end or start, or the offset and
// time of its first record at or after q's time (-1 if it has none).
func findOffset(l *runnel.Log, q offsetQuery) (offsetAnswer, error) {
	a := offsetAnswer{offsetQuery: q, offset: -1}
	if q.ms == queryEnd || q.ms == queryBeginning {
		start, end, err := l.PartitionOffsets(q.topic, q.partition)
		a.offset = end
		if q.ms == queryBeginning {
			a.offset = start
		}
		return a, err
	}
	rec, ok, err := l.FirstRecord(q.topic, q.partition, runnel.AtTime(time.UnixMilli(q.ms)))
	if err != nil || !ok {
		return a, err
	}
	a.offset, a.at = rec.Offset, rec.Time
	return a, nil
}
