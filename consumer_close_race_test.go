package runnel

import (
	"context"
	"testing"
)

// TestPollWhileLogCloses: a Poll whose look is under way as its Log
// closes (on another goroutine; here inside the look) returns ErrClosed,
// as every call after Close does, not the error its read met on the
// files Close took away.
func TestPollWhileLogCloses(t *testing.T) {
	l := openTest(t, t.TempDir(), &Options{Durability: Buffered})
	mustCreate(t, l, "jobs", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "jobs", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	c := mustConsumer(t, l, "jobs", &ConsumerOptions{Start: Earliest})
	testHookLook = func() {
		testHookLook = nil
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookLook = nil })
	recs, err := c.Poll(context.Background())
	if err != ErrClosed || len(recs) != 0 {
		t.Errorf("Poll as its Log closed: %d records, %v; want ErrClosed", len(recs), err)
	}
}
