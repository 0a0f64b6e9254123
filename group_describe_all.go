package runnel

import (
	"errors"
	"iter"
)

// DescribeGroups describes every group, in name order, as DescribeGroup
// describes one, yielding each group's info with DescribeGroup's error
// for it (a partial answer's GroupTopicErrors among them). Each
// partition's end is found once for all the groups, when the first
// group with offsets for it is described, so that lags are as of that
// moment: describing 5,000 groups of one topic this way costs about a
// fifth of describing each with DescribeGroup. A group deleted while the
// sequence runs is left out. An error listing the groups is yielded
// once, with a zero GroupInfo, and ends the sequence.
func (l *Log) DescribeGroups() iter.Seq2[GroupInfo, error] {
	return func(yield func(GroupInfo, error) bool) {
		names, err := l.ListGroups()
		if err != nil {
			yield(GroupInfo{}, err)
			return
		}
		ends := endMemo{}
		for _, name := range names {
			info, err := l.describeGroup(name, ends)
			if errors.Is(err, ErrGroupNotFound) {
				continue // deleted since the listing
			}
			if !yield(info, err) {
				return
			}
		}
	}
}

// endMemo keeps the partitions' extents found for one Stats call, which
// describes every group: each end is walked to once, not once for every
// group with offsets for the partition. A nil endMemo keeps nothing.
type endMemo map[*partition]memoEnd

type memoEnd struct {
	start, end int64
	err        error
}

// offsets is p.offsets, kept.
func (m endMemo) offsets(p *partition) (start, end int64, err error) {
	if m == nil {
		return p.offsets()
	}
	e, ok := m[p]
	if !ok {
		e.start, e.end, e.err = p.offsets()
		m[p] = e
	}
	return e.start, e.end, e.err
}
