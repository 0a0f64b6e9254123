package kafka

import (
	"context"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestDescribeLogDirs: the runnel directory is the one log dir, with each
// partition's size as DescribeTopic reports it and the filesystem's space;
// a request for some partitions gets those that exist.
func TestDescribeLogDirs(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("ld", 2)
	ts.createTopic("other", 1)
	produceNative(t, ts.log, "ld", []runnel.Record{{Partition: 1, Value: make([]byte, 5000)}})
	info, err := ts.log.DescribeTopic("ld")
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[0]
	d, ok := dirs[ts.log.Dir()]
	if len(all) != 1 || len(dirs) != 1 || !ok || d.Err != nil {
		t.Fatalf("log dirs %+v, want the one dir %s", all, ts.log.Dir())
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Errorf("dir space: total %d, usable %d", d.TotalBytes, d.UsableBytes)
	}
	for _, pi := range info.Partitions {
		p, ok := d.Topics.Lookup("ld", int32(pi.Partition))
		if !ok || p.Size != pi.Bytes {
			t.Errorf("partition %d: %+v, want size %d", pi.Partition, p, pi.Bytes)
		}
	}
	if p, _ := d.Topics.Lookup("ld", 1); p.Size < 5000 {
		t.Errorf("partition 1 holds a 5000-byte record, size %d", p.Size)
	}
	if _, ok := d.Topics.Lookup("other", 0); !ok {
		t.Errorf("topic other not described: %+v", d.Topics)
	}

	var some kadm.TopicsSet
	some.Add("ld", 1, 7)
	some.Add("nosuch", 0)
	dirs, err = adm.DescribeBrokerLogDirs(ctx, 0, some)
	if err != nil {
		t.Fatal(err)
	}
	got := dirs[ts.log.Dir()].Topics
	if _, ok := got.Lookup("ld", 1); !ok || len(got) != 1 || len(got["ld"]) != 1 {
		t.Errorf("asked for ld 1 and 7 and nosuch 0, got %+v", got)
	}
}
