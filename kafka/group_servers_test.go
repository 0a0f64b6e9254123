package kafka

import "testing"

// TestGroupAcrossServers: two servers on one directory, the second in a
// process of its own, share a Kafka group through runnel's ownership
// locks: a member of each gets half the partitions, none twice, and runnel
// names each partition's owner. When the second server's process is
// SIGKILLed, the kernel drops its locks and, once its member's lease (its
// session timeout) has run, the first server's member takes every
// partition and goes on reading.
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

// TestGroupNativeMemberDies: a Kafka member and a native member in a
// process of its own share a group; when the native member's process is
// SIGKILLed, the kernel drops its locks and the Kafka member rebalances
// onto every partition, without waiting for any session timeout.
func TestGroupNativeMemberDies(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("nd", parts)
	k := ts.member("k", nil, groupOpts("nd", "nd")...)
	waitFor(t, "the Kafka member to own every partition", func() bool { return len(k.owned()) == parts })
	native := startChild(t, "native-member", ts.log.Dir(), childGroupEnv+"=nd")
	waitFor(t, "the Kafka and the native member to split the partitions", func() bool {
		kafka, other := 0, 0
		for _, o := range runnelOwners(t, ts.log, "nd", "nd") {
			switch {
			case len(o) >= 6 && o[:6] == "kafka/":
				kafka++
			case o != "":
				other++
			}
		}
		return kafka == parts/2 && other == parts/2 && len(k.owned()) == parts/2
	})
	native.kill()
	waitFor(t, "the Kafka member to own every partition after the native member died", func() bool {
		return len(k.owned()) == parts
	})
	produceSpread(t, ts.log, "nd", parts, 3, "after")
	waitFor(t, "records of every partition consumed", func() bool { return k.consumedSpread(parts, 3, "after") })
}
