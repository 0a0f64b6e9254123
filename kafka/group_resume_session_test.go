package kafka

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupResumeSessionBounded: a group state file (checksummed, so not
// damage) saves a consumer-group member with a session and rebalance
// timeout of a thousand hours, as a server with other bounds, or a
// crafted file, can leave. Its client never comes back. The resumed
// member must expire within the server's MaxSessionTimeout, as a member
// that asked JoinGroup for that session would have been refused, so that
// a native member gets the partitions it held. Before, the saved session
// was taken as it was: the member held them for a thousand hours.
func TestGroupResumeSessionBounded(t *testing.T) {
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	const topic, group, parts, advertise = "sb", "sbg", 2, "127.0.0.1:19092"
	if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	const forever = 1000 * time.Hour
	meta := (&kmsg.ConsumerMemberMetadata{Topics: []string{topic}}).AppendTo(nil)
	saved := savedGroup{name: group, generation: 3, protocolType: consumerProtocol, protocol: "range", leader: "gone", members: []savedMember{{
		id: "gone", clientID: "c", host: "/127.0.0.1", session: forever, rebalance: forever,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}},
		rn: &savedRunnelSide{
			lease: runnel.MaxLease,
			given: map[string][]int{topic: {0, 1}}, held: map[string][]int{topic: {0, 1}},
		},
	}}}
	writeGroupState(t, l, advertise, &saved)

	ts := startServerOn(t, l, &Options{Advertise: advertise, MinSessionTimeout: 100 * time.Millisecond, MaxSessionTimeout: 2 * time.Second})
	waitFor(t, "the group to be resumed", func() bool { return logsContain(ts, "kafka: group resumed") })
	native := pollNative(t, l, topic, &runnel.ConsumerOptions{Group: group, MemberName: "native"})
	waitFor(t, "the resumed member to expire and the native member to get every partition", func() bool {
		return slices.Equal(native.partitions(), []int{0, 1})
	})
	if !logsContain(ts, "clamped") {
		t.Error("the clamped session was not logged")
	}
}

// TestGroupResumeLeaseBounded: a resumed member's lease, the session
// timeout of its first JoinGroup, is bounded as its session is, and, as
// docs/FORMAT.md says, the clamping is logged even when the session saved
// with it is within the server's bounds (a client that joined again with
// a shorter session). Before, only a clamped session was logged: the
// lease was clamped in silence.
func TestGroupResumeLeaseBounded(t *testing.T) {
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	const topic, group, advertise = "lb", "lbg", "127.0.0.1:19093"
	if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// The member's session, within the bounds, outlasts the test: it
	// does not expire while the test looks at it.
	const maxSession = time.Minute
	meta := (&kmsg.ConsumerMemberMetadata{Topics: []string{topic}}).AppendTo(nil)
	writeGroupState(t, l, advertise, &savedGroup{name: group, generation: 3, protocolType: consumerProtocol, protocol: "range", leader: "m", members: []savedMember{{
		id: "m", clientID: "c", host: "/127.0.0.1", session: maxSession, rebalance: maxSession,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}},
		rn: &savedRunnelSide{
			lease: runnel.MaxLease,
			given: map[string][]int{topic: {0}}, held: map[string][]int{topic: {0}},
		},
	}}})

	ts := startServerOn(t, l, &Options{Advertise: advertise, MinSessionTimeout: 100 * time.Millisecond, MaxSessionTimeout: maxSession})
	waitFor(t, "the group to be resumed", func() bool { return logsContain(ts, "kafka: group resumed") })
	if lease := runnelSide(t, ts.srv, group, "m").lease; lease != maxSession {
		t.Errorf("resumed member's lease %v, want the server's MaxSessionTimeout %v", lease, maxSession)
	}
	if !logsContain(ts, "lease is outside the server's bounds: clamped") {
		t.Error("the clamped lease was not logged")
	}
}

// writeGroupState writes a group state file holding one group, as the
// server at advertise would have left it in l's directory.
func writeGroupState(t *testing.T, l *runnel.Log, advertise string, saved *savedGroup) {
	t.Helper()
	path := groupStatePath(l.Dir(), advertise)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, encodeGroupState(map[string][]byte{saved.name: appendSavedGroup(nil, saved)}), 0o644); err != nil {
		t.Fatal(err)
	}
}
