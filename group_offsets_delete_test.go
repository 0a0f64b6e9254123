package runnel

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestDeleteGroupOffsets: a group's committed offsets for some partitions
// of a topic go back to none, the rest and other topics' stay; a live
// member of the topic refuses it whole, a live member of another topic
// does not; a member then starts the deleted partitions from Start.
func TestDeleteGroupOffsets(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	mustCreate(t, l, "u", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 2, 5)
	ctx := context.Background()
	for _, topic := range []string{"t", "u"} {
		if _, err := l.ResetGroupOffsets(ctx, "g", topic, Latest, nil); err != nil {
			t.Fatal(err)
		}
	}
	committed := func() map[string][]int64 {
		t.Helper()
		info, err := l.DescribeGroup("g")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]int64{}
		for _, gt := range info.Topics {
			for _, gp := range gt.Partitions {
				out[gt.Topic] = append(out[gt.Topic], gp.Committed)
			}
		}
		return out
	}

	for _, c := range []struct {
		group, topic string
		parts        []int
		want         error
	}{
		{"h", "t", nil, ErrGroupNotFound},
		{"g", "nope", nil, ErrTopicNotFound},
		{"g", "t", []int{2}, ErrInvalidArgument},
		{"g\xff", "t", nil, ErrInvalidName},
	} {
		if err := l.DeleteGroupOffsets(ctx, c.group, c.topic, c.parts); !errors.Is(err, c.want) {
			t.Errorf("DeleteGroupOffsets(%s, %s, %v) = %v, want %v", c.group, c.topic, c.parts, err, c.want)
		}
	}

	member := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g"})
	if err := l.DeleteGroupOffsets(ctx, "g", "t", []int{0}); !errors.Is(err, ErrGroupActive) {
		t.Errorf("with a live member of the topic: %v, want ErrGroupActive", err)
	}
	member.Close()
	other := mustConsumer(t, l, "u", &ConsumerOptions{Group: "g"})
	defer other.Close()
	if err := l.DeleteGroupOffsets(ctx, "g", "t", []int{0}); err != nil {
		t.Fatalf("with a live member of another topic alone: %v", err)
	}
	got := committed()
	if got["t"][0] != -1 || got["t"][1] != 5 || got["u"][0] != 0 {
		t.Errorf("committed after deleting t/0: %v, want t [none 5], u [0]", got)
	}
	m := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", Start: Earliest})
	recs := pollUntil(t, m, 5, 5*time.Second)
	if len(recs) != 5 {
		t.Fatalf("a new member read %d records, want partition 0's 5 (partition 1 is committed at its end)", len(recs))
	}
	for _, r := range recs {
		if r.Partition != 0 {
			t.Errorf("read %d/%d, want partition 0 only", r.Partition, r.Offset)
		}
	}
	m.Close()
	if err := l.DeleteGroupOffsets(ctx, "g", "t", nil); err != nil {
		t.Fatal(err)
	}
	if got := committed(); got["t"][0] != -1 || got["t"][1] != -1 {
		t.Errorf("committed after deleting all of t: %v", got)
	}
}

// TestDeleteGroupOffsetsOfDeletedFile: a DeleteGroupOffsets that opened
// the group's file as a DeleteGroup removed it, and a new member made a
// new one, deletes in the new file, not in the one removed (where it would
// report a delete nobody sees).
func TestDeleteGroupOffsetsOfDeletedFile(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	produceSpread(t, l, "t", 1, 5)
	ctx := context.Background()
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", Latest, nil); err != nil {
		t.Fatal(err)
	}
	// Be DeleteGroup half-way: the admin lock held.
	off, err := openOffsets(l.Dir(), "g", "t", 1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	mustTryLock(t, off.lf, adminLockOff, true)
	opened := make(chan struct{}, 1)
	testHookAdminOpened = func() { opened <- struct{}{} }
	t.Cleanup(func() { testHookAdminOpened = nil })
	done := make(chan error, 1)
	go func() { done <- l.DeleteGroupOffsets(ctx, "g", "t", nil) }()
	expectSignal(t, opened, "DeleteGroupOffsets opening the file")
	testHookAdminOpened = nil
	off.ctlWord(ctlDeadOff).Store(1)
	if err := os.Remove(offsetsPath(l.Dir(), "g", "t")); err != nil {
		t.Fatal(err)
	}
	// A new file, with a commit, before the delete goes on.
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", Latest, nil); err != nil {
		t.Fatal(err)
	}
	off.close()
	if err := <-done; err != nil {
		t.Fatalf("DeleteGroupOffsets: %v", err)
	}
	info, err := l.DescribeGroup("g")
	if err != nil || info.Topics[0].Partitions[0].Committed != -1 {
		t.Errorf("the new file's commit after the delete: %+v, %v; want none", info, err)
	}
}

// TestJoinWhileSlotsHeldBriefly: a joiner that finds every slot taken for
// a moment (an admin call holding them, about to let go) looks again once
// no admin call runs, and joins, instead of failing as a full group.
func TestJoinWhileSlotsHeldBriefly(t *testing.T) {
	l, off := groupFileOpen(t)
	for s := range maxMembers {
		mustTryLock(t, off.lf, memberLock(s), true)
	}
	// The admin call lets the slots go just after the joiner found them
	// taken, and before it looks at the admin lock.
	testHookNoSlot = func() {
		for s := range maxMembers {
			off.lf.Unlock(memberLock(s))
		}
	}
	t.Cleanup(func() { testHookNoSlot = nil })
	c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	c.Close()
}

// TestAnyMember: whether a member holds a slot, without taking any.
func TestAnyMember(t *testing.T) {
	l, off := groupFileOpen(t)
	if live, err := off.anyMember(); err != nil || live {
		t.Fatalf("anyMember of a group without members: %v, %v", live, err)
	}
	m := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g"})
	if live, err := off.anyMember(); err != nil || !live {
		t.Errorf("anyMember with a member: %v, %v", live, err)
	}
	m.Close()
	for s := range maxMembers {
		if held, _ := off.lf.HeldByOther(memberLock(s)); held {
			t.Fatalf("slot %d held after the member closed", s)
		}
	}
}

// groupFileOpen makes a log with topic t of one partition and group g's
// offsets for it at offset 0, and opens the offsets file as an admin call
// or a member in another process would, closed when the test ends.
func groupFileOpen(t *testing.T) (*Log, *offsetsFile) {
	t.Helper()
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	if _, err := l.ResetGroupOffsets(context.Background(), "g", "t", AtOffset(0), nil); err != nil {
		t.Fatal(err)
	}
	off, err := openOffsets(l.Dir(), "g", "t", 1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.close() })
	return l, off
}
