package runnel

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestOwnerSlotWord: the lease rides in the slot word's high bits, rounded
// up to 100ms, and a record with one names no slot an older runnel has
// (it looks the whole word up among the 1024 slots).
func TestOwnerSlotWord(t *testing.T) {
	for _, tc := range []struct {
		slot      int
		lease     time.Duration
		wantLease time.Duration
	}{
		{0, 0, 0},
		{1023, 0, 0},
		{5, time.Nanosecond, 100 * time.Millisecond},
		{5, 6 * time.Second, 6 * time.Second},
		{1023, 45*time.Second + 1, 45*time.Second + 100*time.Millisecond},
		{7, MaxLease, MaxLease},
	} {
		w := ownerSlotWord(tc.slot, tc.lease)
		slot, lease := splitOwnerSlotWord(w)
		if slot != tc.slot || lease != tc.wantLease {
			t.Errorf("slot %d, lease %v: read back slot %d, lease %v; want lease %v", tc.slot, tc.lease, slot, lease, tc.wantLease)
		}
		if tc.lease > 0 && w < maxMembers {
			t.Errorf("slot %d, lease %v: word %d names a slot to an older runnel", tc.slot, tc.lease, w)
		}
		if tc.lease == 0 && w != uint32(tc.slot) {
			t.Errorf("slot %d without a lease: word %d, want the slot as before leases", tc.slot, w)
		}
	}
}

// TestScanOrderAllocs: a member that succeeds no one orders its search
// for free partitions without allocating, each partition once, round
// from its start. acquire orders one at every check of a member under its
// quota, which a member waiting out a lease is at each Poll; the order
// was built in a slice grown for each (5 allocations for 64 partitions).
func TestScanOrderAllocs(t *testing.T) {
	m := &member{nparts: 64}
	var order []int
	for p := range m.scanOrder(60) {
		order = append(order, p)
	}
	want := append([]int{60, 61, 62, 63}, make([]int, 60)...)
	for i := range 60 {
		want[4+i] = i
	}
	if !slices.Equal(order, want) {
		t.Errorf("order from 60: %v, want %v", order, want)
	}
	sum := 0
	if n := testing.AllocsPerRun(100, func() {
		for p := range m.scanOrder(5) {
			sum += p
		}
	}); n != 0 {
		t.Errorf("%v allocations to order a scan, want none", n)
	}
	// A successor that no longer looks for what it inherits reads no
	// owner record to order its scan (it has no offsets file here to
	// read), and allocates nothing either.
	s := &member{nparts: 64, predecessors: []Incarnation{{}}, inherited: true}
	if n := testing.AllocsPerRun(100, func() {
		for p := range s.scanOrder(5) {
			sum += p
		}
	}); n != 0 {
		t.Errorf("%v allocations to order a settled successor's scan, want none", n)
	}
}

func TestLeaseOption(t *testing.T) {
	for _, o := range []ConsumerOptions{
		{Group: "g", Lease: -time.Second},
		{Group: "g", Lease: MaxLease + time.Nanosecond},
		{Lease: time.Second},
	} {
		if _, err := o.withDefaults(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Lease %v, Group %q: %v, want ErrInvalidArgument", o.Lease, o.Group, err)
		}
	}
	if _, err := (&ConsumerOptions{Group: "g", Lease: MaxLease}).withDefaults(); err != nil {
		t.Errorf("Lease MaxLease: %v", err)
	}
}
