package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDescribeGroups: DescribeGroups yields every group in name order,
// each as DescribeGroup describes it (a damaged offsets file's partial
// answer too), walking to each partition's end once for all of them; on
// a closed Log it yields the one error.
func TestDescribeGroups(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	const nparts, groups = 2, 12
	mustCreate(t, l, "t", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "t", nparts, 3)
	var names []string
	for g := range groups {
		name := fmt.Sprintf("g%02d", g)
		names = append(names, name)
		if _, err := l.ResetGroupOffsets(ctx, name, "t", AtOffset(int64(g%4)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// A bit of g03's offsets header: its answer is partial.
	damaged := offsetsPath(l.Dir(), "g03", "t")
	flipByte(t, damaged, 12)

	var want []GroupInfo
	var wantErrs []string
	for _, name := range names {
		info, err := l.DescribeGroup(name)
		want = append(want, info)
		wantErrs = append(wantErrs, fmt.Sprint(err))
	}
	var walks atomic.Int64
	testHookEndWalk = func() { walks.Add(1) }
	t.Cleanup(func() { testHookEndWalk = nil })
	var got []GroupInfo
	var gotErrs []string
	var partial []*GroupTopicError
	for info, err := range l.DescribeGroups() {
		got = append(got, info)
		gotErrs = append(gotErrs, fmt.Sprint(err))
		partial = append(partial, GroupTopicErrors(err)...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DescribeGroups against DescribeGroup of each (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(partial) != 1 || partial[0].Group != "g03" {
		t.Errorf("partial answers: %v, want g03's alone", partial)
	}
	if n := walks.Load(); n > nparts {
		t.Errorf("DescribeGroups walked to a partition's end %d times for %d groups of %d partitions, want once a partition", n, groups, nparts)
	}

	l.Close()
	var errs []error
	for info, err := range l.DescribeGroups() {
		if info.Group != "" {
			t.Errorf("closed Log described group %q", info.Group)
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
		t.Errorf("DescribeGroups on a closed Log yielded %v, want ErrClosed once", errs)
	}
}
