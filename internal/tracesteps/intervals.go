package main

import (
	"slices"

	"github.com/runnel-log/runnel/internal/tracefmt"
)

// within returns the intervals of r (not cross) in the events of one
// process, sorted by time.
func within(events []tracefmt.Event, r row) []int64 {
	var out []int64
	from, pending := int64(0), false
	for _, e := range events {
		switch e.Step {
		case r.from:
			from, pending = e.Time, true
		case r.to:
			if pending {
				out = append(out, e.Time-from)
				pending = false
			}
		}
	}
	return out
}

// across returns the intervals of cross row r in the merged events of
// every process, sorted by time: byRank[k] holds the (k+1)th process's
// to after each from.
func across(events []tracefmt.Event, r row) (byRank [][]int64) {
	for i, e := range events {
		if e.Step != r.from {
			continue
		}
		var seen []int
		for _, f := range events[i+1:] {
			if f.Step == r.from {
				break
			}
			if f.Step != r.to || f.PID == e.PID || slices.Contains(seen, f.PID) {
				continue
			}
			if len(byRank) == len(seen) {
				byRank = append(byRank, nil)
			}
			byRank[len(seen)] = append(byRank[len(seen)], f.Time-e.Time)
			seen = append(seen, f.PID)
		}
	}
	return byRank
}
