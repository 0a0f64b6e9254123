package runnel

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/runnel-log/runnel/internal/frame"
)

// Power-loss recovery (DESIGN §3). A crash of a process leaves the page
// cache intact, so everything committed stays readable and only the tail
// needs the writer's usual repair. A power loss can lose any unsynced page,
// in any order: frames after the last fdatasync may be missing, torn or
// stale anywhere, not just at the tail. So the first writer after a reboot
// re-verifies every frame after the last durable point and truncates the
// partition at the first one that is not whole.
//
// A reboot is detected by the boot id recorded with the durable point in
// partition.meta: a different id means the machine restarted since.

// RecoveryReport describes what one post-reboot recovery verified and cut.
type RecoveryReport struct {
	Partition       string  // topic/partition directory
	FromSegment     int64   // base of the segment verification started in
	FromPos         int64   // byte position it started at
	FramesVerified  int     // frames checked after the durable point
	CutFile         string  // segment truncated, if any
	CutPos          int64   // where it was truncated
	CutBytes        int64   // bytes cut from it
	RemovedSegments []int64 // later segments removed because they followed the cut
	NextOffset      int64   // the partition's next offset after recovery
}

// recoverAfterReboot runs recovery if this is the first writer since the
// machine restarted. The caller holds the writer lock.
func (p *partition) recoverAfterReboot() error {
	boot, base, pos, next, ok := p.shm.durablePoint()
	if ok && boot == currentBootID && boot != ([16]byte{}) {
		return nil
	}
	bases, err := listSegments(p.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		return p.setDurablePoint(currentBootID, 0, 0, 0)
	}
	if !ok || boot == ([16]byte{}) || !slices.Contains(bases, base) || pos < 0 || next < base || !p.pointMatches(base, pos, next) {
		// No usable durable point (a new partition, one written before
		// points were recorded, or one torn by a crash mid-update):
		// nothing says which bytes were unsynced, so cutting at the
		// first bad frame could throw away good data. Leave the tail to
		// the writer's usual repair, which cuts a torn tail and reports
		// damage that committed frames follow, and start recording.
		last := bases[len(bases)-1]
		return p.setDurablePoint(currentBootID, last, 0, last)
	}
	rep := RecoveryReport{Partition: p.dir, FromSegment: base, FromPos: pos, CutPos: -1}
	var tailSeg, tailPos int64
	for i := slices.Index(bases, base); i < len(bases); i++ {
		seg := bases[i]
		path := segmentPath(p.dir, seg, logExt)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("runnel: recover %s: %w", path, err)
		}
		t := newScanner(f, path).walk(pos, next, nil)
		rep.FramesVerified += t.frames
		if t.sealed && i+1 < len(bases) && bases[i+1] == t.next {
			f.Close()
			pos, next = 0, t.next
			continue
		}
		end := t.pos
		if t.sealed {
			end += frame.HeaderSize // keep the seal; the next segment is created on demand
		}
		err = p.cutAfterReboot(f, end, bases[i+1:], &rep)
		f.Close()
		if err != nil {
			return err
		}
		tailSeg, tailPos, rep.NextOffset = seg, end, t.next
		break
	}
	if rep.CutPos >= 0 || len(rep.RemovedSegments) > 0 {
		p.log.stats.repairs.Add(1)
		p.log.stats.repairedBytes.Add(rep.CutBytes)
		p.log.opts.Logger.Warn("runnel: recovered after reboot",
			"partition", rep.Partition, "from_segment", rep.FromSegment, "from_pos", rep.FromPos,
			"frames_verified", rep.FramesVerified, "cut_file", rep.CutFile, "cut_pos", rep.CutPos,
			"cut_bytes", rep.CutBytes, "removed_segments", rep.RemovedSegments, "next_offset", rep.NextOffset)
	}
	p.log.recordRecovery(rep)
	// Everything up to the tail is verified and synced now; only then may
	// the point say so, or a second power loss could make it lie.
	if err := syncDir(p.dir); err != nil {
		return err
	}
	return p.setDurablePoint(currentBootID, tailSeg, tailPos, rep.NextOffset)
}

// pointMatches checks a durable point against the log: the frame at pos,
// if one is whole there, must start at offset next.
func (p *partition) pointMatches(base, pos, next int64) bool {
	if pos == 0 {
		return next == base
	}
	f, err := os.Open(segmentPath(p.dir, base, logExt))
	if err != nil {
		return false
	}
	defer f.Close()
	m, _, st, _ := newScanner(f, f.Name()).frameAt(pos)
	return st != frameOK || m.Base == next
}

// cutAfterReboot truncates a segment at end when anything follows it,
// removes the segments after it (their offsets would no longer follow on)
// and syncs the segment.
func (p *partition) cutAfterReboot(f *os.File, end int64, later []int64, rep *RecoveryReport) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > end {
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("runnel: recover %s: %w", f.Name(), err)
		}
		rep.CutFile, rep.CutPos, rep.CutBytes = f.Name(), end, st.Size()-end
	}
	for _, seg := range later {
		for _, ext := range []string{logExt, indexExt, timeIndexExt} {
			if err := os.Remove(segmentPath(p.dir, seg, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		rep.RemovedSegments = append(rep.RemovedSegments, seg)
	}
	return fdatasync(int(f.Fd()))
}
