package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A Kafka group id outside runnel's topic rule is a runnel group of the
// same name (issue 13): a franz-go member of "app:prod/1 x" commits, the
// admin APIs list, describe and delete it by that name, and a native
// member of the group resumes from its commits. An id whose directory
// name would be too long is INVALID_GROUP_ID.
func TestGroupIDOutsideTopicRule(t *testing.T) {
	const group = "app:prod/1 x"
	ts := startServer(t, fastGroups)
	ts.createTopic("gn", 2)
	produceSpread(t, ts.log, "gn", 2, 5, "x")
	cl := ts.client(append(groupOpts(group, "gn"), kgo.DisableAutoCommit())...)
	recs := pollN(t, cl, 10)
	if err := cl.CommitRecords(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg[group]; !ok {
		t.Errorf("ListGroups: %q", lg.Groups())
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if g := dg[group]; g.Err != nil || g.State != "Stable" || len(g.Members) != 1 {
		t.Errorf("DescribeGroups: %+v", g)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, ok := offs.Lookup("gn", p); !ok || o.At != 5 {
			t.Errorf("FetchOffsets partition %d: %+v", p, o)
		}
	}
	cl.Close()

	produceSpread(t, ts.log, "gn", 2, 1, "y")
	if got := nativeValues(t, ts.log, "gn", group, 2); !slices.Equal(got, []string{"y-0-0", "y-1-0"}) {
		t.Errorf("the native member resumed with %v, want only the two new records", got)
	}

	del, err := adm.DeleteGroups(ctx, group)
	if err != nil || del[group].Err != nil {
		t.Fatalf("DeleteGroups: %+v, %v", del, err)
	}
	if names, err := ts.log.ListGroups(); err != nil || len(names) > 0 {
		t.Errorf("after DeleteGroups: ListGroups = %q, %v", names, err)
	}

	long := strings.Repeat(":", 84) // 252 bytes escaped
	dg, err = adm.DescribeGroups(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	if g := dg[long]; !errors.Is(g.Err, kerr.InvalidGroupID) {
		t.Errorf("DescribeGroups of a too long id: %v, want INVALID_GROUP_ID", g.Err)
	}
	var co kadm.Offsets
	co.Add(kadm.Offset{Topic: "gn", Partition: 0, At: 1})
	cr, err := adm.CommitOffsets(ctx, long, co)
	if err != nil {
		t.Fatal(err)
	}
	if err := cr.Error(); !errors.Is(err, kerr.InvalidGroupID) {
		t.Errorf("OffsetCommit with a too long id: %v, want INVALID_GROUP_ID", err)
	}
}
