package runnel

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVerifyCommitPastEnd makes a group commit overtake the end Verify read
// (records appended and committed between Verify's check of the partition
// and of the offsets file, by a hook at exactly that point): a correct
// committer, which Verify must not call corrupt.
func TestVerifyCommitPastEnd(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	sendSeq(t, p, 0, seqRecords(0, 10))
	c := mustConsumer(t, l, "t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
	pollN(t, c, 10)
	if err := c.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	ran := false
	verifyBeforeOffsets = func() {
		ran = true
		sendSeq(t, p, 10, seqRecords(10, 5))
		pollN(t, c, 5)
		if err := c.Commit(context.Background()); err != nil {
			t.Error(err)
		}
	}
	defer func() { verifyBeforeOffsets = nil }()
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ran || !rep.OK() {
		t.Errorf("Verify with a commit past the end it read (hook ran: %v): %v", ran, rep.Problems)
	}
	if got := rep.Partitions[0].NextOffset; got != 10 {
		t.Fatalf("test setup: Verify read the end %d, want 10 (before the hook)", got)
	}
}

// failingAppender writes half of every frame, then fails as a full disk
// does.
type failingAppender struct{ appender }

func (failingAppender) appendFrame(fd int, off int64, b []byte, sync bool, _ *commitMap) error {
	pwriteFull(fd, b[:len(b)/2], off)
	return unix.ENOSPC
}

// TestFailedAppendLeavesNoTail: an append that fails (a full disk) leaves
// no partial frame behind, so that nothing takes the live writer for a
// dead one, and the next append goes where the failed one would have.
func TestFailedAppendLeavesNoTail(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered, Backend: BackendPwrite, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	sendSeq(t, p, 0, seqRecords(0, 3))
	good := l.app
	l.app = failingAppender{good}
	if _, err := p.Send(context.Background(), Record{Value: []byte("lost to a full disk")}); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Send on a full disk: %v", err)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil || !rep.OK() || len(rep.Notes) != 0 {
		t.Errorf("Verify after a failed append: %v %v, notes %v", rep.Problems, err, rep.Notes)
	}
	l.app = good
	sendSeq(t, p, 3, seqRecords(3, 1))
	if st := l.Stats(); st.Repairs != 0 {
		t.Errorf("the next append repaired a tail: %+v", st)
	}
}
