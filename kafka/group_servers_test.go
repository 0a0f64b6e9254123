package kafka

import "testing"

// TestGroupAcrossServers: two servers on one directory, the second in a
// process of its own, share a Kafka group through runnel's ownership
// locks: a member of each gets half the partitions, none twice, and runnel
// names each partition's owner. When the second server's process is
// SIGKILLed, the kernel drops its locks and the first server's member
// takes every partition and goes on reading.
func TestGroupAcrossServers(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("xs", parts)
	produceSpread(t, ts.log, "xs", parts, 10, "a")
	child := startServerChild(t, ts.log.Dir())
	other := &testServer{t: t, log: ts.log, addr: child.addr, logs: &syncBuffer{}}

	a := ts.member("a", nil, groupOpts("xsgrp", "xs")...)
	b := other.member("b", nil, groupOpts("xsgrp", "xs")...)
	waitFor(t, "members of two servers to share four partitions", func() bool { return balanced(parts, a, b) })
	waitFor(t, "every record consumed", func() bool {
		all := map[string]bool{}
		for _, m := range []*tracked{a, b} {
			for v := range m.consumed() {
				all[v] = true
			}
		}
		return len(all) == parts*10
	})
	owners := map[string]int{}
	for p, owner := range runnelOwners(t, ts.log, "xsgrp", "xs") {
		if len(owner) < 6 || owner[:6] != "kafka/" {
			t.Fatalf("partition %d owned by %q in runnel, want a Kafka member", p, owner)
		}
		owners[owner]++
	}
	if len(owners) != 2 {
		t.Fatalf("runnel's owners of the partitions: %v, want two Kafka members", owners)
	}

	child.kill()
	waitFor(t, "the first server's member to own every partition after the other server died", func() bool {
		return len(a.owned()) == parts
	})
	produceSpread(t, ts.log, "xs", parts, 5, "b")
	waitFor(t, "new records consumed by the survivor", func() bool { return a.consumedSpread(parts, 5, "b") })
}
