package runnel

import (
	"context"
	"errors"
	"fmt"
)

// Where a reader's fill stopped short of a good frame, it waits only if
// that is the end of the data, decided by the writer's rules (judgeTail):
// at damage it reports a *CorruptError instead, whatever the damage looks
// like — a bad frame, a zeroed page, a sealed segment cut short or
// missing, committed records gone.

// checkStop judges where the reader's last fill stopped, lock-free: at the
// end of the data or behind a live writer's frame (wait), at what a writer
// left unfinished (repaired under the writer lock, if this process may
// write; then wait), or at damage (a *CorruptError). m is the partition's
// mapping. recheck says to look again soon: a writer may die mid-frame,
// and no append will then wake the reader.
//
// It judges before it asks whether a writer is live: a writer that
// appends often keeps the writer lock for as long as it runs, and a held
// lock explains only bytes at the tail, never damage before it. The
// judgement re-reads the frame, so one a live writer committed meanwhile
// is read on (tailMoved), never taken for damage.
func (r *partReader) checkStop(ctx context.Context, m *metaMap) (recheck bool, err error) {
	switch {
	case r.atEnd:
		return false, r.checkEnd(m)
	case !r.stuck:
		return false, nil
	}
	v, rules, err := r.judgeStop(m)
	if err != nil || v.kind == tailMoved {
		return false, err
	}
	if v.kind == tailDamage {
		return false, r.corrupt(v, rules)
	}
	if held, err := r.writerActive(); err == nil && held {
		return true, nil // a live writer's frame in progress
	}
	// No writer: what is there a dead writer left (repair cuts it) or is
	// damage. Repairing needs write permission; a reader without it
	// judges alone, by the same rules, and waits at a torn tail.
	if testHookRepair != nil {
		testHookRepair()
	}
	if err := r.p.repair(ctx); err != nil && !isPermission(err) && !errors.As(err, new(*CorruptError)) {
		return false, err
	}
	if v, rules, err = r.judgeStop(m); err != nil {
		return false, err
	}
	switch v.kind {
	case tailDamage:
		return false, r.corrupt(v, rules)
	case tailTorn:
		return true, nil // a writer's leftovers this reader may not cut
	}
	return false, nil
}

// judgeStop judges the bytes the reader stopped at with all it knows was
// committed: partition.meta's word, a later segment, and the tail the
// writers published. The published tail is live state of this boot: after
// a reboot no writer has recovered from yet, it may name bytes the power
// loss took.
func (r *partReader) judgeStop(m *metaMap) (tailVerdict, tailRules, error) {
	rules := r.rules(m)
	if cp, ok := checkpointOf(m); ok && cp.boot == currentBootID {
		if t, ok := m.tail(); ok && (r.base < t.base || r.base == t.base && r.cur.pos < t.pos) {
			rules.add(evidence{t.next, "the tail the writers published"})
		}
	}
	if err := r.laterSegmentEvidence(&rules); err != nil {
		return tailVerdict{}, rules, err
	}
	v, err := r.cur.judgeTail(rules)
	return v, rules, err
}

// checkEnd judges a reader at the end of its file: the end of the data,
// unless something says more was committed (a later segment, the synced
// checkpoint, the durable point), which makes it damage: a segment cut
// short, committed records gone.
func (r *partReader) checkEnd(m *metaMap) error {
	rules := r.rules(m)
	if r.f == nil {
		// Waiting for the segment a seal named: a writer creates it
		// before it commits anything in it, so offsets known committed
		// there mean it was there, and is gone.
		if missingLast(r.p.dir, r.base, rules) == nil {
			return nil
		}
		if err := r.openSegment(r.base); err != nil || r.f != nil {
			return err
		}
		return missingLast(r.p.dir, r.base, rules)
	}
	// Is this segment still the partition's last? A segment seen last
	// stays last until a roll, which seals it first (and the reader reads
	// the seal); so the directory is listed again only when appends
	// happened that this segment did not receive (see reachedEnd).
	if !r.lastSeg || r.fillSeq != r.lastSeq {
		if err := r.laterSegmentEvidence(&rules); err != nil {
			return err
		}
	}
	if !rules.missing(r.cur.next) {
		return nil
	}
	v, err := r.cur.judgeTail(rules)
	if err != nil {
		return err
	}
	if v.kind == tailDamage {
		return r.corrupt(v, rules)
	}
	return nil
}

// reachedEnd notes that the fill reached the end of its file. One that
// moved through frames to get there saw the appends counted in fillSeq
// land in this segment (a roll seals it first, and the fill would have
// read the seal): a segment last before is still last, with no listing.
// So does one that finds the end with no frames right after fills that
// read frames and stopped short of it, with no append since (movedSeq): a
// file that ends where its data does (no zeros ahead of the tail) ends
// the window of the fill that reads its last frame, and the next fill
// finds the end. Noted by fill, not by checkEnd, which runs only when a Poll finds
// nothing: a consumer woken for each record otherwise listed the directory
// once per record, about a tenth of its CPU in BenchmarkCrossProcessLatency.
func (r *partReader) reachedEnd() {
	r.atEnd = true
	if r.lastSeg && (r.advanced || r.movedSeq == int64(r.fillSeq)) {
		r.lastSeq = r.fillSeq
	}
	r.movedSeq = -1
}

// rules gathers what is known committed, for judging where the reader
// stopped. After a reboot that no writer has recovered from yet, bytes
// after the synced checkpoint may be lost or stale anywhere: a break there
// is the end of the data, as recovery will make it.
func (r *partReader) rules(m *metaMap) tailRules {
	rules, cp, ok := knownCommittedIn(m)
	rules.powerLoss = unsyncedAfterReboot(cp, ok, r.base, r.cur.pos)
	return rules
}

// testHookLaterSegment, if set, runs as a reader lists the partition's
// segments to look for a later one.
var testHookLaterSegment func()

// laterSegmentEvidence adds a later segment to rules, if the partition has
// one: every offset below its base was committed before it was created.
// Without one, the reader's segment is the last as of its fill.
func (r *partReader) laterSegmentEvidence(rules *tailRules) error {
	if testHookLaterSegment != nil {
		testHookLaterSegment()
	}
	bases, err := listSegments(r.p.dir)
	if err != nil {
		return fmt.Errorf("runnel: list segments of %s: %w", r.p.dir, err)
	}
	for _, b := range bases {
		if b > r.base {
			r.lastSeg = false
			rules.addSegment(b) // evidence even after a power loss
			return nil
		}
	}
	r.lastSeg, r.lastSeq = true, r.fillSeq
	return nil
}

// corrupt turns a damage verdict at the reader's position into the error
// Poll returns.
func (r *partReader) corrupt(v tailVerdict, rules tailRules) error {
	from, to := v.lost(rules)
	if to <= from {
		to = -1
	}
	return &CorruptError{Path: r.path, Pos: v.pos, Offset: from, To: to, Err: errors.New(v.describe(rules))}
}

// checkpointOf returns the checkpoint in m, if there is a mapping and a
// checkpoint that checks out.
func checkpointOf(m *metaMap) (checkpoint, bool) {
	if m == nil {
		return checkpoint{}, false
	}
	return m.checkpoint()
}
