package main

import (
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
)

// TestGroupsDescribeLease: groups describe shows a partition held back by
// a gone member's lease (runnel.ConsumerOptions.Lease, a Kafka member's
// session timeout), in text and JSON, so that an operator can tell why a
// partition no member owns is not read.
func TestGroupsDescribeLease(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Consumer("t", &runnel.ConsumerOptions{Group: "g", Lease: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for len(c.Partitions()) == 0 {
		if _, err := c.TryPoll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Abandon(); err != nil {
		t.Fatal(err)
	}
	if out := must(t, dir, "", "groups", "describe", "g"); !strings.Contains(out, "lease 45s") {
		t.Errorf("groups describe shows no lease:\n%s", out)
	}
	var g jsonGroup
	decode(t, dir, &g, "groups", "describe", "g", "-format", "json")
	if p := g.Topics[0].Partitions[0]; p.LeaseMS != 45000 || p.Owned {
		t.Errorf("groups describe -format json: partition %+v, want lease_ms 45000, not owned", p)
	}
}
