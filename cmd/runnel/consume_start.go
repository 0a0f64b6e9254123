package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-log/runnel"
)

// startSpec is where consume starts reading each partition.
type startSpec struct {
	pos    runnel.StartPosition
	exact  bool  // an offset: of -p's partition, or of each (seekEach)
	offset int64 // with exact: the offset
	last   int64 // > 0: the last this many records of each partition
	// stored is kcat's -o stored: a group's committed offset, which is
	// where a member starts anyway; the end where there is none.
	stored bool
}

// parseOffset reads -offset (kcat's -o): beginning, end, stored (a
// group's committed offset), N (an offset), -N (the last N records of
// each partition) or s@MS (the first record at or after MS milliseconds
// since 1970). earliest and latest are accepted
// too, as Kafka's tools name them.
func parseOffset(s string) (startSpec, error) {
	switch s {
	case "beginning", "earliest":
		return startSpec{pos: runnel.Earliest}, nil
	case "end", "latest":
		return startSpec{pos: runnel.Latest}, nil
	case "stored":
		return startSpec{pos: runnel.Latest, stored: true}, nil
	}
	if strings.HasPrefix(s, "s@") {
		t, err := parseMillis(s)
		return startSpec{pos: runnel.AtTime(t)}, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return startSpec{}, fmt.Errorf("%q: want beginning, end, stored, N, -N (the last N records of each partition) or s@MS", s)
	case strings.HasPrefix(s, "-") && n == 0:
		return startSpec{}, fmt.Errorf("%q: the last 0 records are none; want -N with N 1 or more", s)
	case n < 0:
		return startSpec{pos: runnel.Earliest, last: -n}, nil
	}
	return startSpec{pos: runnel.AtOffset(n), exact: true, offset: n}, nil
}

// seekLast moves each partition c reads to its last n records as of ends
// (each partition's next offset when the run began), or to its oldest
// record if it holds fewer.
func seekLast(c *runnel.Consumer, info runnel.TopicInfo, ends []int64, n int64) error {
	for _, p := range c.Partitions() {
		from := max(info.Partitions[p].StartOffset, ends[p]-n)
		err := c.Seek(p, runnel.AtOffset(from))
		if errors.Is(err, runnel.ErrOutOfRange) {
			// Retention removed the oldest of them since.
			err = c.Seek(p, runnel.Earliest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// seekEach moves each partition c reads to offset, or to its
// end as of ends if it ends before it: kcat's -o N without -p starts
// every partition at N, and one that holds fewer records at its end
// (its consumer's offset reset). An offset that retention removed is an
// error, as with -p.
func seekEach(c *runnel.Consumer, ends []int64, offset int64) error {
	for _, p := range c.Partitions() {
		if err := c.Seek(p, runnel.AtOffset(min(offset, ends[p]))); err != nil {
			return err
		}
	}
	return nil
}

// parseMillis reads kcat's s@MS and e@MS: a time in milliseconds since
// 1970 after a two-byte prefix.
func parseMillis(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s[2:], 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%q: want %sMS, milliseconds since 1970", s, s[:2])
	}
	return time.UnixMilli(n), nil
}

// offsetFlag is -offset (kcat's -o), which may be given twice, as kcat
// takes it: once for where to start and once, as e@MS, for where to stop
// (-o beginning -o e@1700000000000). Each is checked where it is used.
type offsetFlag struct{ start, stop *string }

func (o offsetFlag) String() string { return *o.start }
func (o offsetFlag) Type() string   { return "OFFSET" }

func (o offsetFlag) Set(s string) error {
	target, what := o.start, "where to start"
	if strings.HasPrefix(s, "e@") {
		target, what = o.stop, "where to stop (e@MS)"
	}
	if *target != "" {
		return fmt.Errorf("%s given twice (%s, then %s)", what, *target, s)
	}
	*target = s
	return nil
}
