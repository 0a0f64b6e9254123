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
	pos   runnel.StartPosition
	exact bool  // an offset: it means something in one partition only
	last  int64 // > 0: the last this many records of each partition
}

// parseOffset reads -offset (kcat's -o): beginning, end, N (an offset),
// -N (the last N records of each partition) or s@MS (the first record at
// or after MS milliseconds since 1970). earliest and latest are accepted
// too, as Kafka's tools name them.
func parseOffset(s string) (startSpec, error) {
	switch s {
	case "beginning", "earliest":
		return startSpec{pos: runnel.Earliest}, nil
	case "end", "latest":
		return startSpec{pos: runnel.Latest}, nil
	}
	if ms, ok := strings.CutPrefix(s, "s@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return startSpec{}, fmt.Errorf("%q: want s@MS, milliseconds since 1970", s)
		}
		return startSpec{pos: runnel.AtTime(time.UnixMilli(n))}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return startSpec{}, fmt.Errorf("%q: want beginning, end, N, -N (the last N records of each partition) or s@MS", s)
	case strings.HasPrefix(s, "-") && n == 0:
		return startSpec{}, fmt.Errorf("%q: the last 0 records are none; want -N with N 1 or more", s)
	case n < 0:
		return startSpec{pos: runnel.Earliest, last: -n}, nil
	}
	return startSpec{pos: runnel.AtOffset(n), exact: true}, nil
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
