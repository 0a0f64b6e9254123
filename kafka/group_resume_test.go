package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// resumeClientOpts give a franz-go member a session far longer than any
// test (so no lease runs out and no session expires while it runs) and a
// short heartbeat: a server that forgot the member tells it within a
// heartbeat, and the client joins again, its callbacks firing. Its
// connections wait for the server to listen again (waitingDial): franz-go
// ends its group session, as lost, at a heartbeat whose coordinator
// refuses the connection, and at that heartbeat rate one falls in every
// restart.
func resumeClientOpts() []kgo.Opt {
	return append(leaseClientOpts(), kgo.HeartbeatInterval(100*time.Millisecond), kgo.RebalanceTimeout(10*time.Second), kgo.Dialer(waitingDial))
}

// serverRestarting makes waitingDial wait: a test restarting a server
// sets it until the new one listens.
var serverRestarting atomic.Bool

// waitingDial dials again while the connection is refused (no server
// listens at the address) and a test restarts the server, for up to
// 20 s: as a client dialing a server restarted with its listening socket
// kept (systemd's socket activation) would see it.
func waitingDial(ctx context.Context, network, host string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, host)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !serverRestarting.Load() {
			return nc, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// groupIdentity is what a client knows of its membership.
type groupIdentity struct {
	member     string
	generation int32
	lost       int
}

func (m *tracked) identity() groupIdentity {
	id, gen := m.cl.GroupMetadata()
	m.mu.Lock()
	defer m.mu.Unlock()
	return groupIdentity{id, gen, m.lost}
}

// commitNow commits what m consumed, through the server: an OffsetCommit
// naming its member id and generation, which a server that does not know
// them refuses.
func (m *tracked) commitNow(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.cl.CommitUncommittedOffsets(ctx)
}

// restartServer stops server (SIGKILL, or a clean shutdown) and starts
// another on the same directory and address.
func restartServer(t *testing.T, dir string, server *testChild, kill bool) *testChild {
	t.Helper()
	serverRestarting.Store(true)
	defer serverRestarting.Store(false)
	if kill {
		server.kill()
	} else {
		server.stdin.Close()
	}
	server.cmd.Wait()
	return startChild(t, "server", dir, childListenEnv+"="+server.addr)
}

// checkResumed checks that k went through a restart of its server as
// through nothing: the same member id and generation, no partition
// revoked or lost, its commit taken by the new server, and every
// partition's new records read.
func checkResumed(t *testing.T, l *runnel.Log, k *tracked, before groupIdentity, topic string, parts int) {
	t.Helper()
	if err := k.commitNow(t); err != nil {
		t.Fatalf("commit through the restarted server: %v (it forgot the member)", err)
	}
	produceSpread(t, l, topic, parts, 2, "after")
	waitFor(t, "the member to read what came after the restart", func() bool { return k.consumedSpread(parts, 2, "after") })
	if err := k.commitNow(t); err != nil {
		t.Fatalf("commit through the restarted server: %v", err)
	}
	if after := k.identity(); after != before || len(k.owned()) != parts {
		t.Fatalf("the client rejoined: member, generation, partitions lost %+v before the restart, %+v after, owning %v", before, after, k.owned())
	}
}

// TestGroupResumeServerKilled: a franz-go member owns every partition
// through a server in a process of its own, which is SIGKILLed and
// started again at the same address. The new server resumes the group
// from its state file: the client heartbeats and commits on as the same
// member in the same generation, with no rebalance, and its partitions
// are its member's again in runnel at once (its session of minutes
// never runs out in the test). Before, the new server answered
// UNKNOWN_MEMBER_ID, and the client lost its partitions and joined again.
func TestGroupResumeServerKilled(t *testing.T) {
	testGroupResume(t, true)
}

// TestGroupResumeServerShutdown: the same through a clean shutdown, the
// usual way to restart a server for an upgrade.
func TestGroupResumeServerShutdown(t *testing.T) {
	testGroupResume(t, false)
}

func testGroupResume(t *testing.T, kill bool) {
	const parts = 4
	dir, l := logWithTopic(t, "rs", parts)
	produceSpread(t, l, "rs", parts, 1, "before")
	server, k := memberThroughChild(t, dir, l, parts, "rsgrp", "rs", resumeClientOpts())
	waitFor(t, "the Kafka member to read every partition", func() bool { return k.consumedSpread(parts, 1, "before") })
	if err := k.commitNow(t); err != nil {
		t.Fatal(err)
	}
	before := k.identity()

	restartServer(t, dir, server, kill)
	checkResumed(t, l, k, before, "rs", parts)
	if owners := runnelOwners(t, l, "rsgrp", "rs"); slices.ContainsFunc(owners, func(o string) bool { return !strings.HasPrefix(o, MemberNamePrefix) }) {
		t.Fatalf("runnel owners %q: want the resumed Kafka member's for every partition", owners)
	}
}

// forgetGroupState removes the group state files of the servers on dir:
// the next server cannot resume their groups.
func forgetGroupState(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, stateDir, groupsDir)); err != nil {
		t.Fatal(err)
	}
}

// damageGroupState flips a bit in the last byte of the group state file of
// the server at addr, which its checksum covers.
func damageGroupState(t *testing.T, dir, addr string) {
	t.Helper()
	path := groupStatePath(dir, addr)
	b, err := os.ReadFile(path)
	if err != nil || len(b) <= groupStateHeader {
		t.Fatalf("group state %s: %d bytes, %v", path, len(b), err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGroupResumeStale: a server restarted with a group state older than
// its clients — written before a member left and the other took over
// its partitions — resumes that stale generation; the remaining client,
// a generation ahead, is refused (ILLEGAL_GENERATION) and joins again, the
// member that left and never comes back drops out at the rebalance, and
// the client ends up owning and reading every partition: no record lost,
// no partition owned by two members. Before the resumed member took what
// it took back as held by its client, it released the partitions the
// stale file did not name at once, to the member that left, while the
// client still read them.
func TestGroupResumeStale(t *testing.T) {
	const parts = 4
	dir, l := logWithTopic(t, "sl", parts)
	server := startServerChild(t, dir)
	ts := &testServer{t: t, log: l, addr: server.addr, logs: &syncBuffer{}}
	// A heartbeat seconds apart leaves the remaining client reading, for
	// seconds after the restart, the partitions it was given after the
	// state was written: a partition the server let go of meanwhile shows
	// as owned by the other member.
	slow := append(resumeClientOpts(), kgo.HeartbeatInterval(2*time.Second))
	stays := ts.member("stays", slow, groupOpts("slgrp", "sl")...)
	leaves := ts.member("leaves", slow, groupOpts("slgrp", "sl")...)
	waitFor(t, "the members to split the partitions", func() bool { return balanced(parts, stays, leaves) })
	path := groupStatePath(dir, server.addr)
	waitFor(t, "the state file to hold both members", func() bool {
		b, _ := os.ReadFile(path)
		groups, err := decodeGroupState(path, b)
		return err == nil && len(groups) == 1 && len(groups[0].members) == 2
	})
	stale, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves.halt()
	leaves.cl.Close() // LeaveGroup
	waitFor(t, "the remaining member to own every partition", func() bool { return len(stays.owned()) == parts })

	server.kill()
	server.cmd.Wait()
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	startChild(t, "server", dir, childListenEnv+"="+server.addr)
	produceSpread(t, l, "sl", parts, 2, "after")
	var last string
	defer func() {
		if t.Failed() {
			t.Log(last)
		}
	}()
	waitFor(t, "the remaining member to join again, own every partition in runnel and in its client, and read them", func() bool {
		owners := runnelOwners(t, l, "slgrp", "sl")
		client := stays.owned()
		for p, o := range owners {
			if strings.HasPrefix(o, MemberNamePrefix+"leaves") && slices.Contains(client, int32(p)) {
				t.Fatalf("partition %d is the resumed member's that left, and the remaining client reads it (owners %q)", p, owners)
			}
		}
		mine := !slices.ContainsFunc(owners, func(o string) bool { return !strings.HasPrefix(o, MemberNamePrefix+"stays") })
		last = fmt.Sprintf("owners %q, client %v, leaves there %v, consumed %v, identity %+v", owners, client, hasRunnelMember(t, l, "slgrp", MemberNamePrefix+"leaves"), stays.consumedSpread(parts, 2, "after"), stays.identity())
		return mine && len(client) == parts && !hasRunnelMember(t, l, "slgrp", MemberNamePrefix+"leaves") && stays.consumedSpread(parts, 2, "after")
	})
}

// hasRunnelMember reports whether a live member of group in runnel has a
// name beginning with prefix.
func hasRunnelMember(t *testing.T, l *runnel.Log, group, prefix string) bool {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, gt := range info.Topics {
		if slices.ContainsFunc(gt.Members, func(m runnel.GroupMember) bool { return strings.HasPrefix(m.Name, prefix) }) {
			return true
		}
	}
	return false
}
