package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// GroupInfo is what DescribeGroup reports: one entry per topic the group
// has offsets for.
type GroupInfo struct {
	Group  string
	Topics []GroupTopic
}

// GroupTopic describes a group's membership and offsets for one topic, as
// they were while DescribeGroup read them.
type GroupTopic struct {
	Topic      string
	Members    []GroupMember // live members, by slot
	Partitions []GroupPartition
}

// GroupMember is a live member of a group.
type GroupMember struct {
	Slot       int    // member slot: the member's rank order in the group
	PID        int    // process id, as the member recorded it
	Name       string // ConsumerOptions.MemberName
	Joined     time.Time
	Partitions []int // partitions it owns, where its ownership record says so
}

// GroupPartition is one partition's state in a group.
type GroupPartition struct {
	Partition   int
	Committed   int64     // committed offset (next to read), or -1 if none
	CommittedAt time.Time // zero if none
	End         int64     // the partition's next offset, or -1 if the topic is gone
	Lag         int64     // records from Committed (or the partition's start, if later) to End, or -1 if either is unknown
	Owned       bool      // a live member holds the partition's lock
	Owner       int       // the owner's member slot, or -1 (unowned, or not yet recorded)
	// Lease is the lease (ConsumerOptions.Lease) of an owner that is gone
	// without giving the partition up (it died, or left with Abandon),
	// while no member holds it: the members take it only once this long
	// has passed since each first saw it so. 0 otherwise.
	Lease time.Duration
}

// ListGroups returns the names of the groups that have offsets for at
// least one topic, sorted.
func (l *Log) ListGroups() ([]string, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	groups, err := readGroupDirs(l.dir)
	if err != nil {
		return nil, fmt.Errorf("runnel: list groups: %w", err)
	}
	var names []string
	for _, group := range groups {
		if topics, err := l.groupTopics(group); err == nil && len(topics) > 0 {
			names = append(names, group)
		}
	}
	slices.Sort(names) // escaped directory names sort apart from their names
	return names, nil
}

// groupTopics lists the topics group has an offsets file for, sorted:
// every entry named as one. A symbolic link (to an offsets file or not)
// and anything else at such a name (a FIFO, a directory) are the
// topic's file, which opening takes or refuses (openRegular), so that
// Verify and DescribeGroup report what a Consumer of the group meets
// there, and DeleteGroup removes it only with Force.
func (l *Log) groupTopics(group string) ([]string, error) {
	entries, err := os.ReadDir(groupDir(l.dir, group))
	if err != nil {
		return nil, err
	}
	var topics []string
	for _, e := range entries {
		topic, ok := strings.CutSuffix(e.Name(), offsetsExt)
		if ok && validateName("topic", topic) == nil {
			topics = append(topics, topic)
		}
	}
	slices.Sort(topics)
	return topics, nil
}

// DescribeGroup reports a group's live members, and for each partition of
// each topic it consumes: its owner, committed offset and lag. It takes no
// lock and disturbs no member; the answer may be stale by the time it is
// read. A topic whose offsets file cannot be read (damage) is left out,
// and reported in the error, a *GroupTopicError per such topic (joined),
// returned with the other topics' info; GroupTopicErrors tells such an
// error from one about the whole group, which comes with no topics. A
// file removed while DescribeGroup runs (a DeleteTopic or DeleteGroup,
// maybe in another process), or a topic deleted while its file is read,
// is no damage: its topic is left out with no error, and a group whose
// every file went is ErrGroupNotFound.
func (l *Log) DescribeGroup(group string) (GroupInfo, error) {
	return l.describeGroup(group, nil)
}

// describeGroup is DescribeGroup, finding the partitions' ends through
// ends.
func (l *Log) describeGroup(group string, ends endMemo) (GroupInfo, error) {
	info := GroupInfo{Group: group}
	if err := l.checkOpen(); err != nil {
		return info, err
	}
	if err := validateGroup(group); err != nil {
		return info, err
	}
	topics, err := l.groupTopics(group)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(topics) == 0 {
		return info, fmt.Errorf("%w: %s", ErrGroupNotFound, group)
	}
	if err != nil {
		return info, fmt.Errorf("runnel: describe group %s: %w", group, err)
	}
	if testHookGroupListed != nil {
		testHookGroupListed()
	}
	var errs []error
	for _, topic := range topics {
		gt, err := l.describeGroupTopic(group, topic, ends)
		switch {
		case errors.Is(err, errGroupTopicGone):
			// A DeleteTopic or DeleteGroup, maybe in another process,
			// removed the file since the listing, or deleted the topic
			// while it was read: the group no longer has the topic,
			// which is no damage.
			continue
		case err != nil:
			errs = append(errs, &GroupTopicError{Group: group, Topic: topic, Err: err})
			continue
		}
		info.Topics = append(info.Topics, gt)
	}
	if len(info.Topics) == 0 && len(errs) == 0 {
		return info, fmt.Errorf("%w: %s", ErrGroupNotFound, group) // every file went
	}
	return info, errors.Join(errs...)
}

// testHookGroupListed, if set, runs when DescribeGroup has listed the
// group's offsets files and is about to read them.
var testHookGroupListed func()

// testHookGroupTopicOpened, if set, runs when DescribeGroup has opened the
// group's offsets file for topic and is about to read it and the topic's
// partitions.
var testHookGroupTopicOpened func(topic string)

// errGroupTopicGone says the group no longer has the topic
// describeGroupTopic was to read: its offsets file is no longer there, or
// the topic was deleted (its offsets file goes next) after the file was
// opened.
var errGroupTopicGone = errors.New("the group no longer has the topic")

func (l *Log) describeGroupTopic(group, topic string, ends endMemo) (GroupTopic, error) {
	gt := GroupTopic{Topic: topic}
	var off *offsetsFile
	var err error
	t, terr := l.topic(topic)
	if terr == nil {
		off, err = l.openOffsetsOf(t, group, false)
	} else {
		off, err = openOffsets(l.dir, group, topic, -1, "", false)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return gt, errGroupTopicGone
	}
	if err != nil {
		return gt, err
	}
	defer off.close()
	if testHookGroupTopicOpened != nil {
		testHookGroupTopicOpened(topic)
	}

	joined := map[int]int64{} // live slot → incarnation
	for s := range off.hwm() {
		held, err := off.lf.HeldByOther(memberLock(s))
		if err != nil {
			return gt, fmt.Errorf("runnel: describe group %s: %w", group, err)
		}
		if !held {
			continue
		}
		gm := GroupMember{Slot: s, PID: -1}
		rec, ok, err := off.readMember(s)
		if err != nil {
			return gt, err
		}
		if ok {
			gm.PID, gm.Name, gm.Joined = rec.pid, rec.name, time.Unix(0, rec.joined)
			joined[s] = rec.joined
		}
		gt.Members = append(gt.Members, gm)
	}

	for p := range off.nparts {
		gp := GroupPartition{Partition: p, Committed: -1, End: -1, Lag: -1, Owner: -1}
		b, err := off.readBlock(p)
		if err != nil {
			return gt, err
		}
		st, ok := pickSlot(b, p)
		if !ok {
			return gt, off.corrupt(blockPos(p), "partition %d: neither commit slot verifies", p)
		}
		if st.offset != noCommit {
			gp.Committed, gp.CommittedAt = st.offset, time.Unix(0, st.time)
		}
		owner, ownerOK := decodeOwner(b[ownerRecOff:], p)
		if gp.Owned, err = off.lf.HeldByOther(partLock(p)); err != nil {
			return gt, fmt.Errorf("runnel: describe group %s: %w", group, err)
		}
		if j, live := joined[owner.slot]; gp.Owned && ownerOK && live && j == owner.joined {
			gp.Owner = owner.slot
		}
		if !gp.Owned && ownerOK {
			gp.Lease = owner.lease // as the members see it (leaseHolds)
		}
		if terr == nil {
			var start int64
			if start, gp.End, err = ends.offsets(t.parts()[p]); err != nil {
				if errors.Is(l.orGone(t, err), ErrTopicNotFound) {
					return gt, errGroupTopicGone
				}
				return gt, err
			}
			if gp.Committed >= 0 {
				// Records below the start are not there to read.
				gp.Lag = max(gp.End-max(gp.Committed, start), 0)
			}
		}
		gt.Partitions = append(gt.Partitions, gp)
	}
	for i := range gt.Members {
		for _, gp := range gt.Partitions {
			if gp.Owner == gt.Members[i].Slot {
				gt.Members[i].Partitions = append(gt.Members[i].Partitions, gp.Partition)
			}
		}
	}
	return gt, nil
}

// ResetOptions configure ResetGroupOffsets. A nil *ResetOptions means the
// defaults.
type ResetOptions struct {
	// Partitions to reset. Default: all of the topic's partitions.
	Partitions []int

	// Force resets partitions that live members own. Each owner is asked,
	// through the offsets file, to move to the new offset and commit it
	// (it does so inside its next Poll; a member that dies first leaves it
	// to the next owner), and ResetGroupOffsets waits until they have.
	// Default false: ResetGroupOffsets fails with ErrGroupActive if any of
	// the partitions is owned, and resets nothing.
	Force bool

	// Unchecked stores an AtOffset position as it is, without checking
	// that the partition holds that offset, as Kafka's OffsetCommit
	// stores any offset: a member that resumes there applies its
	// ConsumerOptions.OutOfRange. Default false: ErrOutOfRange for an
	// offset below the partition's start or past its end.
	Unchecked bool
}

// ResetGroupOffsets sets a group's committed offsets for topic to the
// position to says — Earliest, Latest, AtOffset or AtTime, resolved for
// each partition now — and returns them by partition. It creates the
// group's offsets file if there is none, so a group can be positioned
// before its first member starts. Partitions that no member owns are held
// (locked) while they are reset, so no member can take one half-way.
//
// With ResetOptions.Force, if ctx ends before every owner applied its
// reset, ResetGroupOffsets returns ctx.Err(); the requests stay and take
// effect when the owners next poll.
func (l *Log) ResetGroupOffsets(ctx context.Context, group, topic string, to StartPosition, opts *ResetOptions) (map[int]int64, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if err := validateGroup(group); err != nil {
		return nil, err
	}
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	var o ResetOptions
	if opts != nil {
		o = *opts
	}
	parts := o.Partitions
	if parts == nil {
		for p := range t.parts() {
			parts = append(parts, p)
		}
	}
	targets := map[int]int64{}
	for _, p := range parts {
		part, err := l.partitionOf(t, p)
		if err != nil {
			return nil, err
		}
		if o.Unchecked && to.kind == startOffset {
			if to.offset < 0 {
				return nil, fmt.Errorf("%w: offset %d", ErrInvalidArgument, to.offset)
			}
			targets[p] = to.offset
			continue
		}
		if targets[p], err = resolveOffset(part, to); err != nil {
			return nil, err
		}
	}
	off, err := l.openAdmin(ctx, t, group)
	if err != nil {
		return nil, err
	}
	defer off.close() // releases every lock taken here

	var busy []int
	for _, p := range slices.Sorted(maps.Keys(targets)) {
		ok, err := off.lf.TryLock(partLock(p))
		if err != nil {
			return nil, fmt.Errorf("runnel: reset group %s: %w", group, err)
		}
		if !ok {
			busy = append(busy, p)
		}
	}
	if len(busy) > 0 && !o.Force {
		return nil, fmt.Errorf("%w: group %s: live members own partitions %v of topic %s (stop them, or force the reset)", ErrGroupActive, group, busy, topic)
	}
	now := time.Now().UnixNano()
	for p, target := range targets {
		if slices.Contains(busy, p) {
			continue
		}
		if err := resetHeld(off, p, target, 0, now); err != nil {
			return nil, err
		}
	}
	if err := off.sync(); err != nil {
		return nil, err
	}
	if len(busy) == 0 {
		return targets, nil
	}
	// Members may take the partitions reset so far while the owners of
	// the others catch up.
	for p := range targets {
		if !slices.Contains(busy, p) {
			off.lf.Unlock(partLock(p))
		}
	}

	// Ask each owner to move; the request's sequence number is above every
	// request its commits have taken into account.
	want := map[int]uint64{}
	for _, p := range busy {
		st, err := off.readCommit(p)
		if err != nil {
			return nil, err
		}
		req, err := off.readRequest(p)
		if err != nil {
			return nil, err
		}
		want[p] = max(req.seq, st.applied) + 1
		if err := off.writeRequest(p, resetRequest{seq: want[p], offset: targets[p]}); err != nil {
			return nil, err
		}
	}
	off.bump(off.resetEpoch())
	off.bump(off.gen())
	for len(want) > 0 {
		for _, p := range busy {
			seq, pending := want[p]
			if !pending {
				continue
			}
			st, err := off.readCommit(p)
			if err != nil {
				return nil, err
			}
			if st.applied >= seq {
				delete(want, p)
				continue
			}
			// The owner may have left (or died) without applying it.
			ok, err := off.lf.TryLock(partLock(p))
			if err != nil {
				return nil, fmt.Errorf("runnel: reset group %s: %w", group, err)
			}
			if ok {
				if err := resetHeld(off, p, targets[p], seq, time.Now().UnixNano()); err != nil {
					return nil, err
				}
				if err := off.sync(); err != nil {
					return nil, err
				}
				off.lf.Unlock(partLock(p))
				delete(want, p)
			}
		}
		if len(want) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("runnel: reset group %s: owners of partitions %v have not applied the reset yet (they will when they next poll): %w", group, slices.Sorted(maps.Keys(want)), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return targets, nil
}

// openAdmin opens (creating if needed, as openGroupOffsets does) the
// group's offsets file for topic t and takes its admin lock, waiting until
// ctx ends.
func (l *Log) openAdmin(ctx context.Context, t *topic, group string) (*offsetsFile, error) {
	return lockAdmin(ctx, func() (*offsetsFile, error) { return l.openGroupOffsets(ctx, t, group) })
}

// lockAdmin opens a group's offsets file with open and takes its admin
// lock, waiting until ctx ends. A file that a DeleteGroup removed
// meanwhile is left for the path's next one; one a DeleteGroup died
// before removing is kept (offsetsFile.gone).
func lockAdmin(ctx context.Context, open func() (*offsetsFile, error)) (*offsetsFile, error) {
	for {
		off, err := open()
		if err != nil {
			return nil, err
		}
		if err := off.lf.Lock(ctx, adminLockOff); err != nil {
			off.close()
			return nil, err
		}
		if !off.deleted() {
			return off, nil
		}
		gone, err := off.gone()
		if err != nil {
			off.close()
			return nil, err
		}
		if !gone {
			return off, nil
		}
		off.close()
	}
}

// DeleteGroupOptions configure DeleteGroup. A nil *DeleteGroupOptions
// means the defaults.
type DeleteGroupOptions struct {
	// Force deletes the group even while members are alive. Each live
	// member finds out at its next Poll or commit, which fails with an
	// error wrapping ErrGroupNotFound (until it is closed): its commits
	// would go to a file that no longer exists. Default false:
	// DeleteGroup fails with ErrGroupActive and deletes nothing while the
	// group has a live member for any topic.
	Force bool
}

// DeleteGroup removes a consumer group: its committed offsets for every
// topic (the directory groups/<group>). A member that joins afterwards
// starts a new group of that name, from ConsumerOptions.Start. It waits
// for a ResetGroupOffsets or DeleteGroup of the group running in another
// process until ctx ends. A group without offsets is ErrGroupNotFound.
//
// Files that are not offsets files as this version knows them (damaged,
// or of a newer format) are removed only with Force; otherwise their
// error is returned and nothing is deleted.
func (l *Log) DeleteGroup(ctx context.Context, group string, opts *DeleteGroupOptions) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := validateGroup(group); err != nil {
		return err
	}
	var o DeleteGroupOptions
	if opts != nil {
		o = *opts
	}
	topics, err := l.groupTopics(group)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(topics) == 0 {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, group)
	}
	if err != nil {
		return fmt.Errorf("runnel: delete group %s: %w", group, err)
	}
	var files []*offsetsFile
	defer func() {
		for _, off := range files {
			off.close() // releases every lock taken here
		}
	}()
	var busy []string
	for _, topic := range topics {
		off, err := openOffsets(l.dir, group, topic, -1, "", false)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			if o.Force {
				continue // removed below, unread
			}
			return fmt.Errorf("runnel: delete group %s: %w (Force removes it anyway)", group, err)
		}
		files = append(files, off)
		if err := off.lf.Lock(ctx, adminLockOff); err != nil {
			return fmt.Errorf("runnel: delete group %s: %w", group, err)
		}
		live, err := off.anyMember()
		if err == nil && (!live || o.Force) {
			live, err = off.holdMemberSlots()
		}
		if err != nil {
			return fmt.Errorf("runnel: delete group %s: %w", group, err)
		}
		if live {
			busy = append(busy, topic)
		}
	}
	if len(busy) > 0 && !o.Force {
		return fmt.Errorf("%w: group %s has live members for topics %v (stop them, or force the deletion)", ErrGroupActive, group, busy)
	}
	for _, off := range files {
		// Members still alive (Force) and joiners that opened the file
		// see it go.
		off.ctlWord(ctlDeadOff).Store(1)
		off.bump(off.gen())
	}
	gdir := groupDir(l.dir, group)
	for _, topic := range topics {
		if err := os.Remove(offsetsPath(l.dir, group, topic)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("runnel: delete group %s: %w", group, err)
		}
	}
	if err := syncDir(gdir); err != nil {
		return fmt.Errorf("runnel: delete group %s: %w", group, err)
	}
	// The directory goes too when nothing else is in it (a member may
	// just have created a new file there).
	if err := os.Remove(gdir); err == nil {
		return syncDir(filepath.Dir(gdir))
	}
	return nil
}

// anyMember reports whether a member holds a slot of the offsets file. It
// takes no lock: an admin call that will refuse a live group asks this
// first, so that refusing never holds the free slots, which the members'
// census would count as members for a moment (and give up partitions to).
func (o *offsetsFile) anyMember() (bool, error) {
	for s := range maxMembers {
		if held, err := o.lf.HeldByOther(memberLock(s)); err != nil || held {
			return held, err
		}
	}
	return false, nil
}

// holdMemberSlots locks every free member slot of the offsets file, whose
// admin lock the caller holds, and reports whether any slot is a live
// member's: no member can join while the caller changes the group (a
// joiner that finds no slot free waits for the admin lock).
func (o *offsetsFile) holdMemberSlots() (live bool, err error) {
	for s := range maxMembers {
		got, err := o.lf.TryLock(memberLock(s))
		if err != nil {
			return false, err
		}
		live = live || !got
	}
	return live, nil
}

// resetHeld commits target for partition p, whose lock the caller holds,
// unless a commit already took reset request seq (> 0) into account.
func resetHeld(off *offsetsFile, p int, target int64, seq uint64, now int64) error {
	st, err := off.readCommit(p)
	if err != nil {
		return err
	}
	if seq > 0 && st.applied >= seq {
		return nil
	}
	req, err := off.readRequest(p)
	if err != nil {
		return err
	}
	// Any earlier request is overtaken by this reset.
	st.applied = max(st.applied, req.seq, seq)
	return off.writeCommit(p, &st, target, now)
}

// resolveOffset turns a start position into an offset of p, now.
func resolveOffset(p *partition, sp StartPosition) (int64, error) {
	r := newPartReader(p, 0)
	defer r.close()
	if err := r.start(sp); err != nil {
		return 0, err
	}
	if sp.kind != startTime {
		return r.next, nil
	}
	// The time index gets close; the first record at or after the time
	// is found by reading.
	for {
		base, pos, next := r.filePos()
		recs, err := r.fill(nil, 1)
		if err != nil {
			return 0, err
		}
		if len(recs) > 0 {
			return recs[0].Offset, nil
		}
		if b, p, n := r.filePos(); b == base && p == pos && n == next {
			return r.next, nil
		}
	}
}
