package kafka

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// savedGroup is what a server keeps of one of its Kafka groups in its
// group state file (group_state_file.go): the group at its last Stable
// generation, with the members that synced in it.
type savedGroup struct {
	name         string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      []savedMember
}

type savedMember struct {
	id         string
	instanceID *string
	clientID   string
	host       string
	session    time.Duration
	rebalance  time.Duration
	protocols  []kmsg.JoinGroupRequestProtocol
	assignment []byte
	rn         *savedRunnelSide // consumer protocol only
}

// savedRunnelSide is a consumer-protocol member's runnel side: what its
// client was given and may read, and its Consumers' incarnations, whose
// partitions the restarted server's Consumers take back
// (runnel.ConsumerOptions.Succeeds).
type savedRunnelSide struct {
	lease        time.Duration
	given        map[string][]int
	held         map[string][]int
	incarnations map[string]runnel.Incarnation
}

// The encoding is Kafka's (kbin): strings and byte arrays with int32
// lengths, arrays with an int32 count. A member's runnel side follows a
// bool that says whether it has one.

func appendSavedGroup(b []byte, g *savedGroup) []byte {
	b = kbin.AppendString(b, g.name)
	b = kbin.AppendInt32(b, g.generation)
	b = kbin.AppendString(b, g.protocolType)
	b = kbin.AppendString(b, g.protocol)
	b = kbin.AppendString(b, g.leader)
	b = kbin.AppendArrayLen(b, len(g.members))
	for _, m := range g.members {
		b = kbin.AppendString(b, m.id)
		b = kbin.AppendNullableString(b, m.instanceID)
		b = kbin.AppendString(b, m.clientID)
		b = kbin.AppendString(b, m.host)
		b = kbin.AppendInt64(b, int64(m.session))
		b = kbin.AppendInt64(b, int64(m.rebalance))
		b = kbin.AppendArrayLen(b, len(m.protocols))
		for _, p := range m.protocols {
			b = kbin.AppendString(b, p.Name)
			b = kbin.AppendBytes(b, p.Metadata)
		}
		b = kbin.AppendBytes(b, m.assignment)
		b = kbin.AppendBool(b, m.rn != nil)
		if rn := m.rn; rn != nil {
			b = kbin.AppendInt64(b, int64(rn.lease))
			b = appendTopicPartitions(b, rn.given)
			b = appendTopicPartitions(b, rn.held)
			b = kbin.AppendArrayLen(b, len(rn.incarnations))
			for _, topic := range slices.Sorted(maps.Keys(rn.incarnations)) {
				inc, _ := rn.incarnations[topic].MarshalBinary()
				b = kbin.AppendString(b, topic)
				b = kbin.AppendBytes(b, inc)
			}
		}
	}
	return b
}

func appendTopicPartitions(b []byte, tps map[string][]int) []byte {
	b = kbin.AppendArrayLen(b, len(tps))
	for _, topic := range slices.Sorted(maps.Keys(tps)) {
		b = kbin.AppendString(b, topic)
		b = kbin.AppendArrayLen(b, len(tps[topic]))
		for _, p := range tps[topic] {
			b = kbin.AppendInt32(b, int32(p))
		}
	}
	return b
}

// groupStateReader decodes saved groups, and says where the first thing
// that does not check out is. Every count is bounded by the bytes left
// (kbin's ArrayLen), so no input allocates more than its own size a few
// times over.
type groupStateReader struct {
	r     kbin.Reader
	size  int
	wrong string // what did not check out, at pos
	pos   int
}

func (d *groupStateReader) offset() int { return d.size - len(d.r.Src) }

// fail notes the first thing that did not check out.
func (d *groupStateReader) fail(what string) {
	if d.wrong == "" {
		d.wrong, d.pos = what, d.offset()
	}
	d.r.Src = nil
}

func (d *groupStateReader) ok() bool {
	if d.wrong == "" && !d.r.Ok() {
		d.fail("truncated")
	}
	return d.wrong == ""
}

func (d *groupStateReader) group() (savedGroup, bool) {
	var g savedGroup
	g.name = d.r.String()
	g.generation = d.r.Int32()
	g.protocolType = d.r.String()
	g.protocol = d.r.String()
	g.leader = d.r.String()
	if d.ok() && (g.name == "" || g.generation < 1 || g.protocolType == "") {
		d.fail(fmt.Sprintf("group %.100q: generation %d, protocol type %.100q", g.name, g.generation, g.protocolType))
	}
	n := d.r.ArrayLen()
	for i := int32(0); i < n && d.ok(); i++ {
		m, ok := d.member()
		if !ok {
			break
		}
		g.members = append(g.members, m)
	}
	return g, d.ok()
}

func (d *groupStateReader) member() (savedMember, bool) {
	var m savedMember
	m.id = d.r.String()
	m.instanceID = d.r.NullableString()
	m.clientID = d.r.String()
	m.host = d.r.String()
	m.session = time.Duration(d.r.Int64())
	m.rebalance = time.Duration(d.r.Int64())
	if d.ok() && (m.id == "" || m.session <= 0 || m.rebalance <= 0) {
		d.fail(fmt.Sprintf("member %.100q: session %v, rebalance timeout %v", m.id, m.session, m.rebalance))
	}
	n := d.r.ArrayLen()
	for i := int32(0); i < n && d.ok(); i++ {
		name, meta := d.r.String(), d.r.Bytes()
		m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: name, Metadata: slices.Clone(meta)})
	}
	if d.ok() && len(m.protocols) == 0 {
		d.fail(fmt.Sprintf("member %.100q: no protocol", m.id))
	}
	m.assignment = slices.Clone(d.r.Bytes())
	if d.r.Bool() {
		m.rn = d.runnelSide()
	}
	return m, d.ok()
}

func (d *groupStateReader) runnelSide() *savedRunnelSide {
	rn := &savedRunnelSide{incarnations: map[string]runnel.Incarnation{}}
	rn.lease = time.Duration(d.r.Int64())
	if d.ok() && (rn.lease < 0 || rn.lease > runnel.MaxLease) {
		d.fail(fmt.Sprintf("lease %v", rn.lease))
	}
	rn.given = d.topicPartitions()
	rn.held = d.topicPartitions()
	n := d.r.ArrayLen()
	for i := int32(0); i < n && d.ok(); i++ {
		topic, b := d.r.String(), d.r.Bytes()
		var inc runnel.Incarnation
		if !d.ok() {
			break
		}
		if err := inc.UnmarshalBinary(b); err != nil {
			d.fail(fmt.Sprintf("topic %.100q: %v", topic, err))
			break
		}
		rn.incarnations[topic] = inc
	}
	return rn
}

func (d *groupStateReader) topicPartitions() map[string][]int {
	tps := map[string][]int{}
	n := d.r.ArrayLen()
	for i := int32(0); i < n && d.ok(); i++ {
		topic := d.r.String()
		np := d.r.ArrayLen()
		var ps []int
		for j := int32(0); j < np && d.ok(); j++ {
			p := d.r.Int32()
			if d.ok() && p < 0 {
				d.fail(fmt.Sprintf("topic %.100q: partition %d", topic, p))
			}
			ps = append(ps, int(p))
		}
		tps[topic] = ps
	}
	return tps
}
