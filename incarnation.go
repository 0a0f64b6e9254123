package runnel

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Incarnation names one membership of a group Consumer in its group's
// topic: the member slot it holds and the instant it joined, which its
// owner records carry. A Consumer that joins again (after an expiry of
// MaxPollInterval) is a new incarnation; none ever comes back. Values
// compare with ==; the zero Incarnation names no member.
//
// It is for ConsumerOptions.Succeeds: a process that keeps the
// incarnations of its members somewhere (a Kafka server keeps its Kafka
// members') can, once restarted, have their successors take back at once
// the partitions those members left under their lease. MarshalBinary and
// UnmarshalBinary store it.
type Incarnation struct {
	slot   int
	joined int64 // UnixNano
}

// incarnationSize is the length of Incarnation's binary form: the slot
// and the join time, big-endian.
const incarnationSize = 4 + 8

// Incarnation returns the consumer's current membership of its group, or
// the zero Incarnation if it is not a member (no Group, closed, or out of
// the group after an expiry of MaxPollInterval until its next Poll joins
// again).
func (c *Consumer) Incarnation() Incarnation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.g == nil || c.g.m.left || c.closed.Load() {
		return Incarnation{}
	}
	return Incarnation{slot: c.g.m.slot, joined: c.g.m.joined}
}

// names reports whether rec is an owner record of incarnation i.
func (i Incarnation) names(rec ownerRecord) bool {
	return i != Incarnation{} && rec.slot == i.slot && rec.joined == i.joined
}

func (i Incarnation) String() string {
	if i == (Incarnation{}) {
		return "none"
	}
	return fmt.Sprintf("slot %d joined %s", i.slot, time.Unix(0, i.joined).UTC().Format(time.RFC3339Nano))
}

// MarshalBinary encodes i in 12 bytes.
func (i Incarnation) MarshalBinary() ([]byte, error) {
	b := make([]byte, incarnationSize)
	binary.BigEndian.PutUint32(b, uint32(i.slot))
	binary.BigEndian.PutUint64(b[4:], uint64(i.joined))
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary made. Anything else — the
// wrong length, a slot no group has — is an error wrapping
// ErrInvalidArgument, and leaves i as it was.
func (i *Incarnation) UnmarshalBinary(b []byte) error {
	if len(b) != incarnationSize {
		return fmt.Errorf("%w: an Incarnation is %d bytes, not %d", ErrInvalidArgument, incarnationSize, len(b))
	}
	slot := binary.BigEndian.Uint32(b)
	if slot >= maxMembers {
		return fmt.Errorf("%w: Incarnation slot %d: a group has %d", ErrInvalidArgument, slot, maxMembers)
	}
	*i = Incarnation{slot: int(slot), joined: int64(binary.BigEndian.Uint64(b[4:]))}
	return nil
}

// validateSucceeds checks ConsumerOptions.Succeeds.
func validateSucceeds(incs []Incarnation) error {
	if len(incs) > maxMembers {
		return fmt.Errorf("%w: Succeeds names %d incarnations: a group has at most %d members", ErrInvalidArgument, len(incs), maxMembers)
	}
	for _, i := range incs {
		if i == (Incarnation{}) {
			return fmt.Errorf("%w: Succeeds names the zero Incarnation, which is no member's", ErrInvalidArgument)
		}
	}
	return nil
}
