package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedGroupState is a state file of one consumer group with a member, and
// one of another protocol.
func seedGroupState(t testing.TB) []byte {
	var inc runnel.Incarnation
	if err := inc.UnmarshalBinary([]byte{0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 42}); err != nil {
		t.Fatal(err)
	}
	instance := "static-1"
	groups := map[string][]byte{}
	for _, g := range []savedGroup{
		{name: "app", generation: 7, protocolType: consumerProtocol, protocol: "cooperative-sticky", leader: "m-1", members: []savedMember{{
			id: "m-1", instanceID: &instance, clientID: "c", host: "/127.0.0.1",
			session: 45 * time.Second, rebalance: time.Minute,
			protocols:  []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: []byte{0, 1, 0, 0, 0, 1, 0, 1, 't'}}},
			assignment: []byte{0, 1},
			rn: &savedRunnelSide{
				lease: 45 * time.Second,
				given: map[string][]int{"t": {0, 2}}, held: map[string][]int{"t": {0, 1, 2}},
				incarnations: map[string]runnel.Incarnation{"t": inc},
			},
		}}},
		{name: "connect", generation: 1, protocolType: "connect", protocol: "sessioned", members: []savedMember{{
			id: "w", session: time.Second, rebalance: time.Second,
			protocols: []kmsg.JoinGroupRequestProtocol{{Name: "sessioned", Metadata: []byte("x")}},
		}}},
	} {
		groups[g.name] = appendSavedGroup(nil, &g)
	}
	return encodeGroupState(groups)
}

// FuzzGroupState decodes the fuzzer's bytes as a server's group state
// file, and as the payload of one (under a header that checks out, so
// that the decoder past the checksum is fuzzed too). Whatever the bytes:
// nothing panics; an error names the file and a byte position and is
// short; groups decoded encode back to bytes that decode to the same.
func FuzzGroupState(f *testing.F) {
	seed := seedGroupState(f)
	f.Add(seed)
	f.Add(seed[:groupStateHeader])
	f.Add(seed[:len(seed)-3])
	f.Add(append(seed, 0))
	f.Add([]byte(groupStateMagic))
	f.Add(encodeGroupState(nil))
	const path = "/dir/kafka/groups/127.0.0.1%3A9092"
	f.Fuzz(func(t *testing.T, b []byte) {
		checkGroupStateDecode(t, path, b)
		if len(b) >= groupStateHeader {
			payload := b[groupStateHeader:]
			withHeader := append([]byte(groupStateMagic), make([]byte, 8)...)
			binary.BigEndian.PutUint32(withHeader[len(groupStateMagic):], uint32(len(payload)))
			binary.BigEndian.PutUint32(withHeader[len(groupStateMagic)+4:], crc32.Checksum(payload, crc32c))
			checkGroupStateDecode(t, path, append(withHeader, payload...))
		}
	})
}

// checkGroupStateDecode is FuzzGroupState's check of one input.
func checkGroupStateDecode(t *testing.T, path string, b []byte) {
	groups, err := decodeGroupState(path, b)
	if err != nil {
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "at byte") || len(msg) > len(path)+600 {
			t.Fatalf("error %.300q: want a short one naming %s and a position", msg, path)
		}
		return
	}
	enc := map[string][]byte{}
	for i := range groups {
		enc[groups[i].name] = appendSavedGroup(nil, &groups[i])
	}
	again, err := decodeGroupState(path, encodeGroupState(enc))
	if err != nil {
		t.Fatalf("re-encoded groups do not decode: %v", err)
	}
	for i := range again {
		if a, b := appendSavedGroup(nil, &again[i]), enc[again[i].name]; !bytes.Equal(a, b) {
			t.Fatalf("group %q: %x re-decoded as %x", again[i].name, b, a)
		}
	}
}

// TestGroupStateSeedDecodes: the fuzz seed decodes to what was encoded.
func TestGroupStateSeedDecodes(t *testing.T) {
	groups, err := decodeGroupState("seed", seedGroupState(t))
	if err != nil || len(groups) != 2 {
		t.Fatalf("decode: %d groups, %v", len(groups), err)
	}
	m := groups[0].members[0]
	if groups[0].name != "app" || groups[0].generation != 7 || *m.instanceID != "static-1" || m.rn.given["t"][1] != 2 || len(m.rn.held["t"]) != 3 || m.rn.lease != 45*time.Second {
		t.Fatalf("decoded %+v, member %+v, runnel side %+v", groups[0], m, m.rn)
	}
}
