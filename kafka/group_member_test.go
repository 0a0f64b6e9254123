package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// subscribedMember is a runnel side of a Kafka member of group, with no
// Kafka client, subscribed to topics; it leaves with the test.
func subscribedMember(t *testing.T, ts *testServer, group string, topics ...string) *runnelMember {
	t.Helper()
	rm, err := newRunnelMember(ts.srv.groups.group(group, true), "m", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rm.close()
		rm.wait()
	})
	meta := kmsg.ConsumerMemberMetadata{Topics: topics}
	rm.subscribe([]kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}, false)
	return rm
}

// TestMemberConsumersReadNothing: a Kafka member's runnel Consumers
// take part in the runnel group and read no record, the Kafka client
// fetching what the member owns. They read every record appended to the
// member's partitions, 4 KiB a partition each tick, and threw it away:
// each record a Kafka group consumer read was read twice.
func TestMemberConsumersReadNothing(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 2)
	rm := subscribedMember(t, ts, "g", "t")
	ticks := func() uint64 {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		return rm.ticks
	}
	waitFor(t, "the member to own t's partitions", func() bool {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		return len(rm.owned["t"]) == 2
	})

	before := ts.log.Stats()
	produceSpread(t, ts.log, "t", 2, 100, "x")
	// Each tick TryPolls every Consumer: the first after the appends
	// read them.
	produced := ticks()
	waitFor(t, "two ticks of the member", func() bool { return ticks() >= produced+2 })
	after := ts.log.Stats()
	if n := after.BytesRead - before.BytesRead; n != 0 {
		t.Errorf("the member's Consumers read %d records (%d bytes)", after.RecordsRead-before.RecordsRead, n)
	}
	type partitions struct{ owned, paused []int }
	got := make(chan partitions, 1)
	rm.cmds <- func(cons map[string]*runnel.Consumer) {
		got <- partitions{cons["t"].Partitions(), cons["t"].Paused()}
	}
	if ps := <-got; len(ps.owned) != 2 || !slices.Equal(ps.paused, ps.owned) {
		t.Errorf("the member's Consumer owns %v and paused %v", ps.owned, ps.paused)
	}
}
