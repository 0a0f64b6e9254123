package runnel

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestPollSpinEnds: a Poll spinning for appends (ConsumerOptions.SpinWait)
// returns when its ctx ends or its Log closes, as a sleeping one does; a
// group member's spin also ends for its membership check. The spin
// watched the append sequences alone, for all of SpinWait: here an hour.
func TestPollSpinEnds(t *testing.T) {
	const spin = time.Hour
	spinners := func() int {
		buf := make([]byte, 1<<20)
		return bytes.Count(buf[:runtime.Stack(buf, true)], []byte("(*Consumer).spinFor"))
	}
	// poll starts a Poll of c with ctx, waits until it spins, and returns
	// its outcome's channel.
	poll := func(t *testing.T, c *Consumer, ctx context.Context) chan error {
		before := spinners()
		done := make(chan error, 1)
		go func() {
			_, err := c.Poll(ctx)
			done <- err
		}()
		waitFor(t, patience, "Poll to spin", func() bool { return spinners() > before })
		return done
	}
	// outcome waits for a Poll's error.
	outcome := func(t *testing.T, done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(patience):
			t.Fatalf("Poll still spinning after %v", patience)
			return nil
		}
	}
	// spinner opens a Log with a topic and a consumer of it that spins.
	spinner := func(t *testing.T) (*Log, *Consumer) {
		l := openTest(t, t.TempDir(), nil)
		mustCreate(t, l, "t", TopicConfig{Partitions: 1})
		c, err := l.Consumer("t", &ConsumerOptions{SpinWait: spin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return l, c
	}
	t.Run("ctx", func(t *testing.T) {
		_, c := spinner(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := poll(t, c, ctx)
		cancel()
		if err := outcome(t, done); !errors.Is(err, context.Canceled) {
			t.Errorf("Poll: %v, want context.Canceled", err)
		}
	})
	t.Run("Log.Close", func(t *testing.T) {
		l, c := spinner(t)
		done := poll(t, c, context.Background())
		l.Close()
		if err := outcome(t, done); !errors.Is(err, ErrClosed) {
			t.Errorf("Poll: %v, want ErrClosed", err)
		}
	})
	t.Run("group check", func(t *testing.T) {
		dir := t.TempDir()
		l := openTest(t, dir, nil)
		mustCreate(t, l, "t", TopicConfig{Partitions: 2})
		produceSpread(t, l, "t", 2, 1)
		a, err := l.Consumer("t", &ConsumerOptions{Group: "g", SpinWait: spin})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		pollUntil(t, a, 2, patience) // a owns both
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := poll(t, a, ctx)
		// A member of another Log joins: a must give a partition up,
		// which it does at a membership check, inside its Poll.
		b, err := openTest(t, dir, nil).Consumer("t", &ConsumerOptions{Group: "g"})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		waitFor(t, patience, "the new member to get a partition", func() bool {
			_, err := b.TryPoll()
			return err == nil && len(b.Partitions()) == 1
		})
		cancel()
		outcome(t, done)
	})
}
