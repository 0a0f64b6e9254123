package kafka

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// countLines counts each line of kcat outputs.
func countLines(outs ...string) map[string]int {
	n := map[string]int{}
	for _, out := range outs {
		for _, line := range strings.Split(out, "\n") {
			if line != "" {
				n[line]++
			}
		}
	}
	return n
}

// TestKcatEagerKill: two kcat -G processes (librdkafka's default
// eager assignors) share a topic; every record produced while they are
// settled is read once. One is killed with SIGKILL once all it read was
// committed: the other takes every partition after the session timeout
// and reads each record produced after the kill exactly once, starting
// from the commits, without rereading any committed record. (Not -o
// beginning: kcat -G then starts every assigned partition at the start,
// whatever was committed.)
func TestKcatEagerKill(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("ek", parts)
	start := func() (*exec.Cmd, *syncBuffer, *syncBuffer) {
		cmd := exec.Command(bin, "-b", ts.addr, "-G", "ekgrp", "-u", "-X", "auto.offset.reset=earliest", "-f", "%s\n",
			"-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=200",
			"-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", "ek")
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		return cmd, &out, &errb
	}
	owners := func() map[string]int {
		if _, err := ts.log.DescribeGroup("ekgrp"); err != nil {
			return nil
		}
		n := map[string]int{}
		for _, o := range runnelOwners(t, ts.log, "ekgrp", "ek") {
			n[o]++
		}
		return n
	}
	a, aOut, aErr := start()
	waitFor(t, "kcat a to own every partition", func() bool {
		n := owners()
		return len(n) == 1 && n[""] == 0
	})
	_, bOut, bErr := start()
	waitFor(t, "kcat a and b to share the partitions", func() bool {
		n := owners()
		return len(n) == 2 && n[""] == 0
	})
	// Let both finish the rebalance: each has been assigned something
	// since b joined.
	waitFor(t, "both kcat processes to report an assignment", func() bool {
		return strings.Count(aErr.String(), "assigned:") >= 2 && strings.Count(bErr.String(), "assigned:") >= 1
	})

	produceSpread(t, ts.log, "ek", parts, 10, "one")
	waitFor(t, "every record read by a or b, and committed", func() bool {
		got := countLines(aOut.String(), bOut.String())
		for p := range parts {
			for i := range 10 {
				if got[fmt.Sprintf("one-%d-%d", p, i)] == 0 {
					return false
				}
			}
		}
		return committedTotal(t, ts.log, "ekgrp") == parts*10
	})
	a.Process.Kill()
	a.Wait()
	produceSpread(t, ts.log, "ek", parts, 10, "two")
	waitFor(t, "b to read every record produced after the kill", func() bool {
		got := countLines(bOut.String())
		for p := range parts {
			for i := range 10 {
				if got[fmt.Sprintf("two-%d-%d", p, i)] == 0 {
					return false
				}
			}
		}
		return true
	})
	for line, n := range countLines(aOut.String(), bOut.String()) {
		if n != 1 {
			t.Errorf("%q read %d times (all reads were committed before the kill)", line, n)
		}
	}
	if t.Failed() {
		t.Logf("a out:\n%s\nb out:\n%s\na stderr:\n%s\nb stderr:\n%s", aOut.String(), bOut.String(), aErr.String(), bErr.String())
	}
}

// TestKcatIdempotentPartitions: librdkafka's idempotent producer
// (kcat -P -X enable.idempotence=true) writing keyed records to several
// partitions stores each record once, in order per partition.
func TestKcatIdempotentPartitions(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, nil)
	const parts, n = 4, 400
	ts.createTopic("kid", parts)
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "k%d:%d\n", i%17, i)
	}
	runKcat(t, bin, in.String(), "-b", ts.addr, "-P", "-t", "kid", "-K", ":",
		"-X", "enable.idempotence=true", "-X", "linger.ms=5", "-X", "batch.num.messages=7")
	recs := readNative(t, ts.log, "kid", n)
	seen := map[string]int{}
	last := map[int]int{}
	used := map[int]bool{}
	for _, r := range recs {
		seen[string(r.Value)]++
		var v int
		fmt.Sscan(string(r.Value), &v)
		if prev, ok := last[r.Partition]; ok && v < prev {
			t.Errorf("partition %d: %d after %d", r.Partition, v, prev)
		}
		last[r.Partition] = v
		used[r.Partition] = true
	}
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("record %d stored %d times", i, seen[fmt.Sprint(i)])
		}
	}
	if len(used) < 2 {
		t.Errorf("records went to %d partitions, want several", len(used))
	}
	var total int64
	for p := range parts {
		start, end, err := ts.log.PartitionOffsets("kid", p)
		if err != nil {
			t.Fatal(err)
		}
		total += end - start
	}
	if total != n {
		t.Errorf("topic holds %d records, want %d", total, n)
	}
}

// TestSaramaIdempotentAsync: Sarama's idempotent async producer
// sending to several partitions stores each record once.
func TestSaramaIdempotentAsync(t *testing.T) {
	ts := startServer(t, nil)
	const parts, n = 3, 300
	ts.createTopic("sid", parts)
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Messages = 5
	p, err := sarama.NewAsyncProducer([]string{ts.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range n {
			p.Input() <- &sarama.ProducerMessage{Topic: "sid", Value: sarama.StringEncoder(fmt.Sprint(i))}
		}
	}()
	for i := 0; i < n; i++ {
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			t.Fatalf("Sarama: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of %d acknowledged", i, n)
		}
	}
	p.Close()
	seen := map[string]int{}
	for _, r := range readNative(t, ts.log, "sid", n) {
		seen[string(r.Value)]++
	}
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("record %d stored %d times", i, seen[fmt.Sprint(i)])
		}
	}
}

// TestSaramaStaticRestart: a Sarama static member
// (Consumer.Group.InstanceId) that closes (Sarama sends no LeaveGroup
// for a static member) and starts again with the same instance id well
// within its session timeout takes its place at once: the group, shared
// with a dynamic member, splits the partitions again without waiting for
// the old session, and the records produced after are all read.
func TestSaramaStaticRestart(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("ss", parts)
	static := saramaConfig(sarama.V3_6_0_0)
	static.Consumer.Group.InstanceId = "sarama-1"
	static.Consumer.Group.Session.Timeout = 10 * time.Minute
	static.Consumer.Group.Rebalance.Timeout = 10 * time.Minute
	dyn := saramaConfig(sarama.V3_6_0_0)

	s1 := startSaramaMember(t, ts, static, "ssg", "ss")
	d := startSaramaMember(t, ts, dyn, "ssg", "ss")
	shared := func(a, b *saramaMember) bool {
		ca, cb := a.claims(), b.claims()
		all := append(slices.Clone(ca), cb...)
		slices.Sort(all)
		return len(ca) > 0 && len(cb) > 0 && slices.Equal(all, []int{0, 1, 2, 3})
	}
	waitFor(t, "the static and the dynamic member to share the partitions", func() bool { return shared(s1, d) })
	s1.stop()
	s2 := startSaramaMember(t, ts, static, "ssg", "ss")
	waitFor(t, "the static member's new instance and the dynamic member to share the partitions", func() bool {
		if !shared(s2, d) {
			return false
		}
		// runnel agrees: no partition is still the old instance's.
		n := map[string]bool{}
		for _, o := range runnelOwners(t, ts.log, "ssg", "ss") {
			if o == "" {
				return false
			}
			n[o] = true
		}
		return len(n) == 2
	})
	produceSpread(t, ts.log, "ss", parts, 5, "after")
	waitFor(t, "the records produced after the restart to be read", func() bool {
		return s2.read()+d.read() >= parts*5
	})
}

// TestCommitGenerations: OffsetCommit from a member with a stale
// generation gets ILLEGAL_GENERATION and one from an unknown member
// UNKNOWN_MEMBER_ID; a commit from outside the group (generation -1, no
// member id) while the group has members gets UNKNOWN_MEMBER_ID, which
// is what Kafka's coordinator answers ("When the group is non-empty,
// only members can commit offsets"). OffsetFetch with require_stable
// answers the committed offsets while the group rebalances (Kafka's
// UNSTABLE_OFFSET_COMMIT is only for pending transactional commits).
func TestCommitGenerations(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("cg2", 1)
	produceSpread(t, ts.log, "cg2", 1, 5, "x")
	m := ts.member("m", nil, groupOpts("cg2g", "cg2")...)
	waitFor(t, "the member to own the partition", func() bool { return len(m.owned()) == 1 })
	memberID, gen := m.cl.GroupMetadata()
	commit := func(memberID string, gen int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation, req.MemberID = 8, "cg2g", gen, memberID
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "cg2"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 2
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return ts.raw().request(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(memberID, gen-1); code != kerr.IllegalGeneration.Code {
		t.Errorf("stale generation: %v, want ILLEGAL_GENERATION", codeName(code))
	}
	if code := commit("nobody", gen); code != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member: %v, want UNKNOWN_MEMBER_ID", codeName(code))
	}
	if code := commit("", -1); code != kerr.UnknownMemberID.Code {
		t.Errorf("commit from outside an active group: %v, want UNKNOWN_MEMBER_ID", codeName(code))
	}

	// A second member starts a rebalance; OffsetFetch v7 with
	// require_stable answers meanwhile.
	ts.member("m2", nil, groupOpts("cg2g", "cg2")...)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group, fetch.RequireStable = 7, "cg2g", true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 20 {
		resp, err := fetch.RequestWith(ctx, m.cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("OffsetFetch require_stable during a rebalance: %v", codeName(resp.ErrorCode))
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("OffsetFetch require_stable, partition %d: %v", rp.Partition, codeName(rp.ErrorCode))
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
