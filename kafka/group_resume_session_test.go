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
	path := groupStatePath(l.Dir(), advertise)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, encodeGroupState(map[string][]byte{group: appendSavedGroup(nil, &saved)}), 0o644); err != nil {
		t.Fatal(err)
	}

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
