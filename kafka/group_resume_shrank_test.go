package kafka

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupResumeShareShrank: a franz-go member owns every partition
// through a server child, which is SIGKILLed; a native member joins the
// group in another process while it is down, so the resumed member's
// share is half. The resumed member takes back all of its partitions all
// the same, and hands the half beyond its share over only once the
// client let go of it: the client's OnPartitionsRevoked is held past the
// lease (its session timeout) since the native member joined, and the
// native member takes none of the partitions the client still holds
// meanwhile, gets its share once the client gave it up, and resumes
// where the client committed; every record produced after is read by
// one of them. Before, the resumed member took back only its share, and
// the native member took the rest once the dead server's lease ran,
// while the client, in its revoke, still held them: two readers of one
// partition.
func TestGroupResumeShareShrank(t *testing.T) {
	const parts = 4
	// The lease: longer than the server's restart takes, so that the
	// native member, which first sees the partitions free while the
	// server is down, finds them under it until the resumed member took
	// them back.
	const session = 8 * time.Second
	dir, l := logWithTopic(t, "sh", parts)
	produceSpread(t, l, "sh", parts, 1, "before")
	gate := newRevokeGate()
	opts := append(resumeClientOpts(), kgo.SessionTimeout(session), gate.opt())
	server, k := memberThroughChild(t, dir, l, parts, "sh", "sh", opts)
	gate.k.Store(k)
	t.Cleanup(gate.open) // before the client closes, which waits for the callback
	waitFor(t, "the Kafka member to read every partition", func() bool { return k.consumedSpread(parts, 1, "before") })
	if err := k.commitNow(t); err != nil {
		t.Fatal(err)
	}

	serverRestarting.Store(true) // the client keeps its session through the gap
	defer serverRestarting.Store(false)
	server.kill()
	server.cmd.Wait()
	native := startChild(t, "native-member", dir, childGroupEnv+"=sh", childMemberEnv+"=1", childReportEnv+"=1") // returns once it joined
	defer native.kill()                                                                                          // it polls until killed
	nativeJoined := time.Now()
	n := followNative(native, k.owned)
	gate.armed.Store(true)
	startChild(t, "server", dir, childListenEnv+"="+server.addr)
	serverRestarting.Store(false)

	var revoking []int32
	waitFor(t, "the client to give up the resumed member's extra share in OnPartitionsRevoked", func() bool {
		n.check(t)
		select {
		case r := <-gate.holding:
			revoking = slices.Sorted(slices.Values(r["sh"]))
			return true
		default:
			return false
		}
	})
	if len(revoking) != parts/2 {
		t.Fatalf("the client revokes %v; want the half beyond the resumed member's share", revoking)
	}
	// Past the lease since the native member first saw the partitions
	// free (at its first check, right after it joined), with time to
	// spare: before, it took them then.
	for time.Since(nativeJoined) < session+4*time.Second {
		n.check(t)
		time.Sleep(10 * time.Millisecond)
	}
	owners := runnelOwners(t, l, "sh", "sh")
	for _, p := range revoking {
		if !strings.HasPrefix(owners[p], MemberNamePrefix) {
			t.Fatalf("partition %d, which the client is still giving up, is not the Kafka member's in runnel (owners %q)", p, owners)
		}
	}
	gate.open()

	waitFor(t, "the native member to get its share once the client let go of it", func() bool {
		n.check(t)
		got := n.ownedList()
		return slices.Equal(got, revoking) && !slices.ContainsFunc(k.owned(), func(p int32) bool { return slices.Contains(got, p) })
	})
	produceSpread(t, l, "sh", parts, 2, "after")
	waitFor(t, "every record produced after to be read by the client or the native member", func() bool {
		n.check(t)
		got := k.consumed()
		for p := range parts {
			for i := range 2 {
				v := fmt.Sprintf("after-%d-%d", p, i)
				if got[v] == 0 && n.readTimes(v) == 0 {
					return false
				}
			}
		}
		return true
	})
	for p := range parts {
		if v := fmt.Sprintf("before-%d-0", p); n.readTimes(v) > 0 {
			t.Errorf("the native member read %s, which the client had committed", v)
		}
	}
}

// revokeGate holds a franz-go member's first OnPartitionsRevoked of any
// partition after it is armed until open, as an application
// finishing its work in the callback does: the member holds the
// partitions (tracked.owned) until the callback returns.
type revokeGate struct {
	armed   atomic.Bool
	k       atomic.Pointer[tracked]
	holding chan map[string][]int32 // the revoke being held
	release chan struct{}
	once    sync.Once
}

// open lets the revoke held, and any after, go on.
func (g *revokeGate) open() { g.once.Do(func() { close(g.release) }) }

func newRevokeGate() *revokeGate {
	return &revokeGate{holding: make(chan map[string][]int32, 1), release: make(chan struct{})}
}

// opt is the member's OnPartitionsRevoked, in place of tracked's.
func (g *revokeGate) opt() kgo.Opt {
	return kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
		some := false
		for _, ps := range r {
			some = some || len(ps) > 0
		}
		if some && g.armed.CompareAndSwap(true, false) {
			g.holding <- r
			<-g.release
		}
		if k := g.k.Load(); k != nil {
			k.set(r, false)
		}
	})
}

// nativeReport follows what a native member child with childReportEnv
// prints: the partitions it owns and the records it read.
type nativeReport struct {
	mu    sync.Mutex
	owned map[int]bool
	read  map[string]int
	clash string // the first partition it took while the Kafka client held it
}

// followNative reads native's reports until it ends. At each assignment
// it asks clientHolds what the Kafka client holds: the child reports an
// assignment once it owns the partitions.
func followNative(native *testChild, clientHolds func() []int32) *nativeReport {
	n := &nativeReport{owned: map[int]bool{}, read: map[string]int{}}
	go func() {
		for {
			line, err := native.stdout.ReadString('\n')
			if err != nil {
				return
			}
			verb, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			n.mu.Lock()
			switch verb {
			case "assigned", "revoked":
				for _, f := range strings.Fields(rest) {
					p, _ := strconv.Atoi(f)
					n.owned[p] = verb == "assigned"
					if held := clientHolds(); verb == "assigned" && slices.Contains(held, int32(p)) && n.clash == "" {
						n.clash = fmt.Sprintf("the native member took partition %d while the Kafka client held %v: two readers", p, held)
					}
				}
			case "read":
				n.read[rest]++
			}
			n.mu.Unlock()
		}
	}()
	return n
}

// check fails the test if the native member took a partition the client
// held.
func (n *nativeReport) check(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.clash != "" {
		t.Fatal(n.clash)
	}
}

func (n *nativeReport) ownedList() []int32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ps []int32
	for p, ok := range n.owned {
		if ok {
			ps = append(ps, int32(p))
		}
	}
	slices.Sort(ps)
	return ps
}

func (n *nativeReport) readTimes(value string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.read[value]
}
