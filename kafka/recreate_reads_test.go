package kafka

import (
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestGrowBetweenRecreate: a batch to a partition outside the server's
// handle makes it look at the topic's file, and another process deletes
// the topic and makes it again with more partitions just after the
// server read the topic's ID there. The server answers for one of the two
// topics; it looked at the ID and the count in two reads, and grew the
// old topic's handle to the new topic's count. The topic is made anew
// where testHookTopicLooked holds the server, after its read of the ID.
func TestGrowBetweenRecreate(t *testing.T) {
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, l, nil)
	ts.createTopic("re", 1)
	rc := ts.raw()
	pid, epoch := rc.initProducer()
	if code, _ := produceCode(t, rc.request(produceBatch("re", 0, pid, epoch, 0, "old", 9))); code != 0 {
		t.Fatalf("produce to the old topic: %v", kerr.ErrorForCode(code))
	}
	old := ts.srv.topics.cached("re")
	if old == nil || old.partitions() != 1 {
		t.Fatal("no handle of one partition on the old topic")
	}

	looked, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookTopicLooked = func(name string) {
		once.Do(func() {
			close(looked)
			<-resume
		})
	}
	release := sync.OnceFunc(func() { close(resume) })
	t.Cleanup(func() {
		release() // before the server's cleanup, however the test ends
		testHookTopicLooked = nil
	})
	answered := make(chan int16, 1)
	go func() {
		code, _ := produceCode(t, rc.request(produceBatch("re", 2, pid, epoch, 0, "new", 9)))
		answered <- code
	}()
	select {
	case <-looked:
	case <-time.After(time.Minute):
		t.Fatal("the server did not look at the topic's file")
	}
	recreateElsewhere(t, ts, "re", 3)
	release()
	var code int16
	select {
	case code = <-answered:
	case <-time.After(time.Minute):
		t.Fatal("no answer to the batch")
	}
	if old.partitions() != 1 {
		t.Errorf("the old topic's handle grew to %d partitions (the batch: %v)", old.partitions(), kerr.ErrorForCode(code))
	}
	// Answered for the old topic, of one partition; the retry finds the
	// new one.
	if code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("the batch read with the old topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	if code, off := produceCode(t, rc.request(produceBatch("re", 2, pid, epoch, 0, "new", 9))); code != 0 || off != 0 {
		t.Errorf("the retry: %v, offset %d; want offset 0 of the new topic", kerr.ErrorForCode(code), off)
	}
}
