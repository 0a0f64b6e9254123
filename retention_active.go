package runnel

import (
	"os"
	"time"
)

// Retention removes only sealed segments (DESIGN §8), so the records of
// an active segment that is never filled would outlive any age limit: an
// audit topic taking a record a minute fills a 64 MiB segment in months,
// and kept every record that long with RetentionAge a day. Kafka seals
// such a segment (it rolls the active segment when retention would remove
// it), and so does runnel: a retention check that finds the active
// segment's newest record past the age limit seals it, under the writer
// lock, as a full segment is sealed, and then removes it as any other.
// The partition keeps its next offset and starts a new, empty segment
// there.

// activeMaybeExpired is the check without a lock: whether the last of
// dir's segments bases may hold only records older than cutoff. Its .log
// file was last written before cutoff, and a record is written no
// earlier than it is stamped, for a clock that does not go back; the
// writer lock then checks the records' own timestamps
// (rollExpiredActive). A segment written since, or a partition with no
// segment, is no candidate.
func activeMaybeExpired(dir string, bases []int64, cutoff time.Time) bool {
	if len(bases) == 0 {
		return false
	}
	st, err := os.Stat(segmentPath(dir, bases[len(bases)-1], logExt))
	return err == nil && st.Size() > 0 && st.ModTime().Before(cutoff)
}

// rollExpiredActive seals the active segment if it holds records and the
// newest of them is older than cutoff. The caller holds p.wmu and the
// writer lock. The roll applies retention after it, which removes the
// sealed segment once its time index checks out against its records.
//
// A partition this Log refuses appends to is left as it is: its damage
// stays for Repair, and findTail would walk on from where the damage
// stopped it reading headers only, as after a live writer's appends, and
// seal the segment behind the damage.
func (p *partition) rollExpiredActive(cutoff time.Time) error {
	if p.broken != nil {
		return nil
	}
	if err := p.findTail(); err != nil {
		return err
	}
	w := p.w
	if w.next == w.base || w.maxTS >= cutoff.UnixNano() {
		return nil
	}
	return p.roll()
}
