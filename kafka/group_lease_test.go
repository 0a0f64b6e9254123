package kafka

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaseSession is the session timeout, so the lease, of the franz-go
// members of the lease tests, and their heartbeat interval is half of it:
// neither runs out while a test runs, so the client keeps fetching its
// assignment from whatever server answers at its address, unaware that
// the server it joined through is gone.
const leaseSession = 2 * time.Minute

// heartbeatsAnswered counts the Heartbeat responses a franz-go client
// read (a kgo hook). A cooperative member sends its first heartbeat half
// a second into its session, to learn soon of a rebalance, and the next
// a heartbeat interval later: a test that must have no heartbeat reach a
// server restarted under the client waits for the first one's answer
// before it stops the server.
type heartbeatsAnswered struct{ n atomic.Int32 }

func (h *heartbeatsAnswered) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Heartbeat.Int16() && err == nil {
		h.n.Add(1)
	}
}

func leaseClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SessionTimeout(leaseSession), kgo.HeartbeatInterval(leaseSession / 2),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(20 * time.Millisecond),
	}
}

// memberThroughChild starts a server child serving dir (which l has
// open) and a franz-go member "k" of group, subscribed to topic, through
// it, and waits until the member owns all parts partitions: the start of
// each test that restarts or kills the server under its Kafka member.
func memberThroughChild(t *testing.T, dir string, l *runnel.Log, parts int, group, topic string, opts []kgo.Opt) (*testChild, *tracked) {
	t.Helper()
	server := startServerChild(t, dir)
	ts := &testServer{t: t, log: l, addr: server.addr, logs: &syncBuffer{}}
	k := ts.member("k", opts, groupOpts(group, topic)...)
	waitFor(t, "the Kafka member to own every partition", func() bool { return len(k.owned()) == parts })
	return server, k
}

// logWithTopic opens a Log on a new directory with topic of parts
// partitions, for server children to serve.
func logWithTopic(t *testing.T, topic string, parts int) (string, *runnel.Log) {
	t.Helper()
	dir := t.TempDir()
	l, err := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	return dir, l
}

// nativeMember is a native member of group on topic that made its first
// membership check, which takes every free partition it may.
func nativeMember(t *testing.T, l *runnel.Log, group, topic string) *runnel.Consumer {
	t.Helper()
	c, err := l.Consumer(topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.TryPoll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGroupLeaseServerKilled: a franz-go member owns every partition
// through a server in a process of its own, which is SIGKILLed and
// started again at the same address without its group state (so it
// cannot resume the group: group_resume_test.go). The
// client, its heartbeat far off, fetches its partitions from the new
// server; a native member that joins after the kill must not own any of
// them meanwhile. Before the lease, its first check took them all at
// once (the kernel dropped the dead server's locks), and two members read
// each partition.
//
// Nothing may tell the client that its server is gone, or it joins the
// new server as a new member, which gets no partition under the lease,
// and reads nothing: so the kill waits for its first heartbeat to be
// answered (heartbeatsAnswered), and it commits nothing (an OffsetCommit
// the new server refuses makes franz-go join again).
func TestGroupLeaseServerKilled(t *testing.T) {
	const parts = 4
	dir, l := logWithTopic(t, "lz", parts)
	produceSpread(t, l, "lz", parts, 1, "before")
	var heartbeats heartbeatsAnswered
	opts := append(leaseClientOpts(), kgo.DisableAutoCommit(), kgo.WithHooks(&heartbeats))
	server, k := memberThroughChild(t, dir, l, parts, "lzgrp", "lz", opts)
	waitFor(t, "the Kafka member to read every partition", func() bool { return k.consumedSpread(parts, 1, "before") })
	waitFor(t, "the Kafka member's first heartbeat to be answered", func() bool { return heartbeats.n.Load() > 0 })

	server.kill()
	server.cmd.Wait()
	c := nativeMember(t, l, "lzgrp", "lz") // before leases, it took every partition here
	forgetGroupState(t, dir)
	startChild(t, "server", dir, childListenEnv+"="+server.addr)
	produceSpread(t, l, "lz", parts, 1, "after")
	waitFor(t, "the Kafka member to read its partitions from the new server", func() bool {
		return k.consumedSpread(parts, 1, "after")
	})
	if _, err := c.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps, kps := c.Partitions(), k.owned(); len(ps) > 0 || len(kps) != parts {
		t.Fatalf("the native member owns %v while the Kafka client, assigned %v, reads them from the new server (an overlap), or the client joined again (it cannot tell)", ps, kps)
	}
	checkLeased(t, l, "lzgrp")
}

// TestGroupLeaseServerShutdown: a server shut down cleanly leaves its
// Kafka members' partitions under their leases, as its death does: its
// clients are alive, and fetch on from the next server at the address
// until their next heartbeat. A member that leaves its group
// (LeaveGroup) hands its partitions over at once.
func TestGroupLeaseServerShutdown(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 2
	ts.createTopic("sd", parts)
	leaves := ts.member("leaves", leaseClientOpts(), groupOpts("leaves", "sd")...)
	stays := ts.member("stays", leaseClientOpts(), groupOpts("stays", "sd")...)
	waitFor(t, "the Kafka members to own every partition", func() bool {
		return len(leaves.owned()) == parts && len(stays.owned()) == parts
	})

	leaves.halt()
	leaves.cl.Close() // LeaveGroup
	n := nativeMember(t, ts.log, "leaves", "sd")
	waitFor(t, "the native member to own every partition the Kafka member left", func() bool {
		if _, err := n.TryPoll(); err != nil {
			t.Fatal(err)
		}
		return len(n.Partitions()) == parts
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n = nativeMember(t, ts.log, "stays", "sd")
	if ps := n.Partitions(); len(ps) > 0 {
		t.Fatalf("the native member owns %v right after the server of the Kafka member that owned them shut down", ps)
	}
	checkLeased(t, ts.log, "stays")
}

// checkLeased checks that DescribeGroup reports every partition of the
// group's one topic free under a lease of leaseSession.
func checkLeased(t *testing.T, l *runnel.Log, group string) {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Owned || gp.Lease != leaseSession {
			t.Errorf("DescribeGroup: partition %d: owned %v, lease %v; want free under the Kafka member's session timeout %v", gp.Partition, gp.Owned, gp.Lease, leaseSession)
		}
	}
}

// TestGroupLeaseServerRestartConverges: after its server is SIGKILLed and
// started again with its group state damaged, which it reports and
// ignores, a franz-go member whose heartbeat soon tells it to join
// again gets its partitions back from the new server once their lease
// (its session timeout) has run, and reads on: no partition stays
// unowned under a lease.
func TestGroupLeaseServerRestartConverges(t *testing.T) {
	const parts = 2
	dir, l := logWithTopic(t, "rc", parts)
	server, k := memberThroughChild(t, dir, l, parts, "rcgrp", "rc", []kgo.Opt{kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond)})

	server.kill()
	server.cmd.Wait()
	killed := time.Now()
	damageGroupState(t, dir, server.addr)
	restarted := startChild(t, "server", dir, childListenEnv+"="+server.addr)
	waitFor(t, "the restarted server to report the damaged group state, with its path and position", func() bool {
		log := restarted.stderr.String()
		return strings.Contains(log, "group state ignored") && strings.Contains(log, groupStatePath(dir, server.addr)) && strings.Contains(log, "damaged at byte")
	})
	waitFor(t, "the new server's member to own every partition in runnel", func() bool {
		owners := runnelOwners(t, l, "rcgrp", "rc")
		return len(owners) == parts && !slices.ContainsFunc(owners, func(o string) bool { return !strings.HasPrefix(o, MemberNamePrefix) })
	})
	t.Logf("the new server's member owns every partition %v after the kill", time.Since(killed))
	produceSpread(t, l, "rc", parts, 3, "after")
	waitFor(t, "the Kafka member to own every partition again and read what came after", func() bool {
		return len(k.owned()) == parts && k.consumedSpread(parts, 3, "after")
	})
}

// TestGroupLeaseShutdownStalled: a server shutting down waits for a
// request under way (here a Produce it never answers, as for a client
// stopped mid-request), and meanwhile answers no heartbeat, so its Kafka
// members' sessions run out. Such a member's partitions keep their lease
// as at the shutdown's end: its client is alive, and fetches on from the
// next server at the address. Before, the timeout handed them over at
// once, as for a client gone quiet, and a native member took them.
func TestGroupLeaseShutdownStalled(t *testing.T) {
	const parts, session = 2, time.Second
	dir, l := logWithTopic(t, "st", parts)
	held := filepath.Join(t.TempDir(), "held")
	server := startChild(t, "server", dir, childHoldEnv+"="+held)
	defer server.kill() // its shutdown never ends
	ts := &testServer{t: t, log: l, addr: server.addr, logs: &syncBuffer{}}
	k := ts.member("k", []kgo.Opt{kgo.SessionTimeout(session), kgo.HeartbeatInterval(session / 10)}, groupOpts("stgrp", "st")...)
	waitFor(t, "the Kafka member to own every partition", func() bool { return len(k.owned()) == parts })

	stalled, err := kgo.NewClient(kgo.SeedBrokers(server.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stalled.ProduceSync(ctx, &kgo.Record{Topic: "st", Value: []byte("never answered")})
	waitFor(t, "the server to hold a Produce", func() bool { _, err := os.Stat(held); return err == nil })

	server.stdin.Close() // shut down: it waits for the held Produce
	waitFor(t, "the Kafka member's session to run out at the server shutting down", func() bool {
		return strings.Contains(server.stderr.String(), "session timed out")
	})
	waitFor(t, "the Kafka member's runnel memberships to let go", func() bool {
		return !slices.ContainsFunc(runnelOwners(t, l, "stgrp", "st"), func(o string) bool { return o != "" })
	})
	if ps := nativeMember(t, l, "stgrp", "st").Partitions(); len(ps) > 0 {
		t.Fatalf("the native member owns %v right after the session of the Kafka member that owned them ran out at its server's shutdown", ps)
	}
	info, err := l.DescribeGroup("stgrp")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Lease != session {
			t.Errorf("DescribeGroup: partition %d: lease %v; want the Kafka member's session %v", gp.Partition, gp.Lease, session)
		}
	}
}

// TestGroupLeaseShutdownMidRevoke: a server shut down while one of its
// Kafka members is losing a partition to a native member — runnel asked
// for it back, and the member waits for its client, which still reads
// it, to let go — leaves that partition under the lease too: the client
// fetches on from the next server. Before, the member's wait ended at the
// shutdown and its Consumer released the partition without the lease, so
// the native member took it at once.
func TestGroupLeaseShutdownMidRevoke(t *testing.T) {
	ts := startServer(t, fastGroups)
	const parts = 2
	ts.createTopic("mr", parts)
	k := ts.member("k", leaseClientOpts(), groupOpts("mrgrp", "mr")...)
	waitFor(t, "the Kafka member to own every partition", func() bool { return len(k.owned()) == parts })

	n := nativeMember(t, ts.log, "mrgrp", "mr")
	waitFor(t, "the Kafka member to wait for its client to let a partition go", func() bool {
		return revoking(ts.srv, "mrgrp")
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.TryPoll(); err != nil {
		t.Fatal(err)
	}
	if ps := n.Partitions(); len(ps) > 0 {
		t.Fatalf("the native member owns %v right after the server shut down while the Kafka client still read them", ps)
	}
	checkLeased(t, ts.log, "mrgrp")
}

// revoking reports whether a Kafka member of group waits for its client to
// let go of partitions runnel takes away.
func revoking(s *Server, group string) bool {
	s.groups.mu.Lock()
	g := s.groups.groups[group]
	s.groups.mu.Unlock()
	if g == nil {
		return false
	}
	g.mu.Lock()
	var rms []*runnelMember
	for _, m := range g.members {
		if m.rn != nil {
			rms = append(rms, m.rn)
		}
	}
	g.mu.Unlock()
	for _, rm := range rms {
		rm.mu.Lock()
		n := len(rm.revoking)
		rm.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}
