package runnel

import (
	"context"
	"path/filepath"
	"testing"
)

// TestCloseWaitsForCheckpoint: a partition that closes (its topic
// forgotten, deleted by another process, or the Log closing) while a
// checkpoint of it is recorded and being synced, outside the partition's
// locks, waits for the checkpoint before it unmaps partition.meta. It had
// unmapped it (and set the mapping nil) under the checkpoint's msync: a
// data race, and a nil dereference for a checkpoint a step earlier.
func TestCloseWaitsForCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	if _, err := mustProducer(t, l, "t", nil).Send(context.Background(), Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	tp := l.topics["t"]
	p := tp.parts()[0]
	metaPath := filepath.Join(p.dir, metaFileName)
	inSync, release := make(chan struct{}), make(chan struct{})
	obs := func(e syncEvent) {
		if e.kind == syncMeta && e.path == metaPath && !e.done {
			close(inSync)
			<-release
		}
	}
	syncObserver.Store(&obs)
	t.Cleanup(func() { syncObserver.Store(nil) })

	checkpointed := make(chan error, 1)
	go func() { checkpointed <- p.takeCheckpoint() }()
	<-inSync
	syncObserver.Store(nil) // the close's own syncs go by
	waiting := make(chan struct{})
	testHookCloseWaits = func() { close(waiting) }
	t.Cleanup(func() { testHookCloseWaits = nil })
	closed := make(chan struct{})
	go func() {
		tp.close(topicDeleted("t"))
		close(closed)
	}()
	select {
	case <-waiting:
	case <-closed:
		t.Error("the partition closed, unmapping partition.meta, under a checkpoint's msync")
	}
	close(release)
	if err := <-checkpointed; err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	<-closed
}
