package runnel

import (
	"context"
	"sync/atomic"
)

// signal is a one-shot event with a channel to wait on, made only for a
// waiter that comes before the event: a lone sender writes its own frame
// (lead) and finds its batch committed when it looks, so the channel a
// batch used to make for every Send was an allocation, and a tenth of a
// lone buffered Send's CPU with the select that waited on it (docs/PERFORMANCE.md,
// A lone Send without channels). The zero signal has not fired.
type signal struct {
	ch atomic.Pointer[chan struct{}] // nil: no waiter yet; firedChan: fired
}

// firedChan is every fired signal's channel: closed.
var firedChan = func() *chan struct{} {
	c := make(chan struct{})
	close(c)
	return &c
}()

// fire sets the event off, waking its waiters; again is a no-op.
func (s *signal) fire() {
	if c := s.ch.Swap(firedChan); c != nil && c != firedChan {
		close(*c)
	}
}

// fired reports whether fire was called.
func (s *signal) fired() bool { return s.ch.Load() == firedChan }

// wait returns a channel that is closed once the signal fires.
func (s *signal) wait() <-chan struct{} {
	if c := s.ch.Load(); c != nil {
		return *c
	}
	c := make(chan struct{})
	if s.ch.CompareAndSwap(nil, &c) {
		return c
	}
	return *s.ch.Load() // fired, or another waiter's
}

// awaitSignal waits until s fires or ctx ends; a signal that fired wins.
// A leading sender finds its batch's fired, and waits with no channel.
func awaitSignal(ctx context.Context, s *signal) error {
	if s.fired() {
		return nil
	}
	select {
	case <-s.wait():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
