package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// DeleteGroupOffsets removes a group's committed offsets for topic's
// partitions (every partition when partitions is nil), as Kafka's
// OffsetDelete does: each is "none" afterwards, so a member that takes it
// starts from ConsumerOptions.Start, as a new group would, and
// DescribeGroup shows no commit. The group's offsets for other topics stay.
// While the group has a live member for topic it fails with
// ErrGroupActive and deletes nothing (Kafka's GROUP_SUBSCRIBED_TO_TOPIC):
// a member would keep reading from its own position and commit over the
// deletion. A group without offsets for topic is ErrGroupNotFound. It
// waits for a ResetGroupOffsets or DeleteGroup of the group running in
// another process until ctx ends.
func (l *Log) DeleteGroupOffsets(ctx context.Context, group, topic string, partitions []int) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := validateGroup(group); err != nil {
		return err
	}
	t, err := l.topic(topic)
	if err != nil {
		return err
	}
	parts := partitions
	if parts == nil {
		for p := range t.parts() {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if _, err := l.partitionOf(t, p); err != nil {
			return err
		}
	}
	off, err := l.openExistingAdmin(ctx, t, group)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s has no offsets for topic %s", ErrGroupNotFound, group, topic)
	}
	if err != nil {
		return fmt.Errorf("runnel: delete offsets of group %s: %w", group, err)
	}
	defer off.close() // releases every lock taken here
	live, err := off.anyMember()
	if err == nil && !live {
		live, err = off.holdMemberSlots() // a member may just have joined
	}
	if err != nil {
		return fmt.Errorf("runnel: delete offsets of group %s: %w", group, err)
	}
	if live {
		return fmt.Errorf("%w: group %s has live members for topic %s (stop them first)", ErrGroupActive, group, topic)
	}
	now := time.Now().UnixNano()
	for _, p := range parts {
		// Free, with no member: a member that just left may have held it.
		if err := off.lf.Lock(ctx, partLock(p)); err != nil {
			return fmt.Errorf("runnel: delete offsets of group %s: %w", group, err)
		}
		if err := resetHeld(off, p, noCommit, 0, now); err != nil {
			return err
		}
	}
	return off.sync()
}

// testHookAdminOpened, if set, runs when openExistingAdmin opened a file
// and is about to wait for its admin lock.
var testHookAdminOpened func()

// openExistingAdmin opens the group's offsets file for topic t, if there is
// one (fs.ErrNotExist if not), and takes its admin lock, as openAdmin does
// for a file it creates if need be.
func (l *Log) openExistingAdmin(ctx context.Context, t *topic, group string) (*offsetsFile, error) {
	return lockAdmin(ctx, func() (*offsetsFile, error) {
		off, err := l.openOffsetsOf(t, group, false)
		if err == nil && testHookAdminOpened != nil {
			testHookAdminOpened()
		}
		return off, err
	})
}
