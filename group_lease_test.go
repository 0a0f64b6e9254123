package runnel

import (
	"errors"
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
