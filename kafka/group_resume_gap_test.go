package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupResumeHeartbeatInGap: a franz-go member with its default
// dialer, whose heartbeat meets the restart gap (the connection refused,
// which franz-go takes as its session lost), joins again as the member
// the restarted server resumed: it gets every partition back in one
// rebalance and reads what comes after the restart, well within the
// session's two minutes, which a new member would wait out as the
// partitions' lease (waitFor gives up after one minute).
func TestGroupResumeHeartbeatInGap(t *testing.T) {
	const parts = 4
	dir, l := logWithTopic(t, "gp", parts)
	opts := append(leaseClientOpts(), kgo.HeartbeatInterval(100*time.Millisecond), kgo.RebalanceTimeout(10*time.Second))
	server, k := memberThroughChild(t, dir, l, parts, "gpgrp", "gp", opts)
	before := k.identity()

	server.kill()
	server.cmd.Wait()
	// With no server at its address, the client's heartbeats are refused
	// (a tenth of a second apart): it ends its session.
	waitFor(t, "the client to give its session up", func() bool { return k.identity().lost > before.lost })
	startChild(t, "server", dir, childListenEnv+"="+server.addr)
	produceSpread(t, l, "gp", parts, 1, "after")
	waitFor(t, "the member to own every partition again and read what came after the restart", func() bool {
		return len(k.owned()) == parts && k.consumedSpread(parts, 1, "after")
	})
	if after := k.identity(); after.member != before.member {
		t.Errorf("member id %q after the restart, %q before: the client joined as a new member", after.member, before.member)
	}
}
