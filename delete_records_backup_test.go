package runnel

import (
	"context"
	"path/filepath"
	"testing"
)

// TestDeleteRecordsDuringBackup: a DeleteRecords that returns while a
// Backup copies the partition's segments holds in the copy: its start is
// the call's, where it was the first segment copied (60), and the copy
// showed records 60 to 74, which the call had deleted before they were
// copied, at a start the partition never had.
func TestDeleteRecordsDuringBackup(t *testing.T) {
	dir := t.TempDir()
	l := delrecSetup(t, dir, 100)
	other := openTest(t, dir, nil) // another Log: nothing shared but the files
	deleted := false
	backupHook = func(stage, _ string, _ int, _ int64) {
		if stage == "segment" && !deleted {
			deleted = true
			if _, err := other.DeleteRecords(context.Background(), "d", 0, 75); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { backupHook = nil })
	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	backupHook = nil
	if err != nil {
		t.Fatal(err)
	}
	if !deleted {
		t.Fatal("the hook never ran")
	}
	if pb := rep.Partitions[0]; pb.StartOffset != 75 || pb.NextOffset != 100 {
		t.Errorf("backup of the partition: %+v, want [75, 100)", pb)
	}
	copyLog := openTest(t, dest, nil)
	if got := firstOffset(t, copyLog, nil); got != 75 {
		t.Errorf("the copy's Earliest consumer starts at %d, want 75", got)
	}
}
