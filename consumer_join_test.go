package runnel

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestConsumerContextBoundsJoin: the first member of a new group creates
// its offsets file under the topic's admin lock, which another process's
// AlterTopic holds while its change runs; ConsumerContext gives up when
// its ctx ends, where Consumer waited as long as the AlterTopic took.
// Once the lock is free the join goes through.
func TestConsumerContextBoundsJoin(t *testing.T) {
	dir := t.TempDir()
	admin := openTest(t, dir, nil) // another process's
	mustCreate(t, admin, "t", TopicConfig{Partitions: 1})
	l := openTest(t, dir, nil)
	if _, err := l.DescribeTopic("t"); err != nil {
		t.Fatal(err)
	}
	changing, release := make(chan struct{}), make(chan struct{})
	altered := make(chan error, 1)
	go func() {
		altered <- admin.AlterTopic("t", func(*TopicConfig) {
			close(changing)
			<-release
		})
	}()
	<-changing
	joined := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		c, err := l.ConsumerContext(ctx, "t", &ConsumerOptions{Group: "new"})
		if err == nil {
			c.Close()
		}
		joined <- err
	}()
	select {
	case err := <-joined:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ConsumerContext while another process's AlterTopic runs: %v, want the ctx's error", err)
		}
	case <-time.After(patience):
		t.Error("ConsumerContext waited past its ctx for another process's AlterTopic")
	}
	close(release)
	if err := <-altered; err != nil {
		t.Fatal(err)
	}
	c, err := l.ConsumerContext(context.Background(), "t", &ConsumerOptions{Group: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLogCloseDuringJoin: a Log closed while a member's join waits for an
// admin call (here every member slot is taken, as DeleteGroup takes them)
// has the join fail with ErrClosed once the wait ends, instead of finish
// a member that no call can use, which would hold its slot, and with it a
// share of the partitions, until the process ends (as Log.Close makes the
// members it has leave).
func TestLogCloseDuringJoin(t *testing.T) {
	l, off := groupFileOpen(t)
	joined := joinWaiting(t, l, holdEverySlot(t, off))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The admin call ends, leaving slot 0 free.
	mustUnlock(t, off.lf, memberLock(0))
	mustUnlock(t, off.lf, adminLockOff)
	select {
	case err := <-joined:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("join of a closed Log: %v, want ErrClosed", err)
		}
	case <-time.After(patience):
		t.Fatal("the joiner is still waiting")
	}
	mustHeldByOther(t, off.lf, memberLock(0), false)
}
