package runnel

import (
	"context"
	"path/filepath"
	"testing"
)

// TestDeleteRecordsSyncsRecordsFirst: in a Buffered Log, whose appends
// no fdatasync follows, DeleteRecords syncs the log up to the new start
// before its log-start file is in place, so that a power loss never
// leaves a start past the records on disk (recovery would then cut below
// it, and new records would get offsets below the start, unread).
func TestDeleteRecordsSyncsRecordsFirst(t *testing.T) {
	s := newSyncedSizes()
	s.install(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, Backend: BackendPwrite, RetentionInterval: -1})
	mustCreate(t, l, "d", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "d", nil)
	for range 50 {
		if _, err := p.Send(context.Background(), Record{Value: make([]byte, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	seg := segmentPath(filepath.Join(dir, "topics", "d", "0"), 0, logExt)
	var syncedAtRename, dataAtRename int64 = -1, -1
	testHookLogStart = func(step string) {
		if step == "written" {
			s.mu.Lock()
			syncedAtRename = s.synced[seg]
			s.mu.Unlock()
			info, err := l.DescribeTopic("d")
			if err == nil {
				dataAtRename = info.Partitions[0].Bytes
			}
		}
	}
	t.Cleanup(func() { testHookLogStart = nil })
	if start, err := l.DeleteRecords(context.Background(), "d", 0, DeleteToEnd); err != nil || start != 50 {
		t.Fatalf("DeleteRecords = %d, %v", start, err)
	}
	if dataAtRename <= 0 || syncedAtRename < dataAtRename {
		t.Errorf("when the log-start file was renamed into place, %s was synced to byte %d of %d", seg, syncedAtRename, dataAtRename)
	}
}
