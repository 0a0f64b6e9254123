package kafka

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
)

// crashStoring has a server process on dir store producer seq 0's batch
// "a" in topic idem, stalls it at point (a test hook: "noted", its journal
// entry written and its commit not; "committed", committed), kills the
// server there (SIGKILL), and returns the producer's id and epoch.
func crashStoring(t *testing.T, dir, point string) (int64, int16) {
	t.Helper()
	stalled := filepath.Join(t.TempDir(), "stalled")
	child := startChild(t, "server", dir, childStallEnv+"="+point+":"+stalled)
	rc := dialRaw(t, child.addr)
	pid, epoch := rc.initProducer()
	rc.send(produceBatch("idem", 0, pid, epoch, 0, "a", 9)) // never answered
	waitFor(t, "the server to stall at "+point, func() bool {
		_, err := os.Stat(stalled)
		return err == nil
	})
	child.kill()
	child.cmd.Wait()
	return pid, epoch
}

// openIdem makes topic idem, one partition, in a new directory.
func openIdem(t *testing.T) string {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("idem", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reopen opens dir and serves it in this process.
func reopen(t *testing.T, dir string) (*runnel.Log, *testServer) {
	t.Helper()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, startServerOn(t, l, nil)
}

// retryWants sends producer pid's batches again (seq 0 "a") and on (seq
// 1 "b"), wanting them at offsets at.
func retryWants(t *testing.T, ts *testServer, pid int64, epoch int16, at ...int64) {
	t.Helper()
	rc := ts.raw()
	for seq, v := range []string{"a", "b"} {
		code, off := produceCode(t, rc.request(produceBatch("idem", 0, pid, epoch, int32(seq), v, 9)))
		if code != 0 || off != at[seq] {
			t.Errorf("seq %d (%q): code %d offset %d, want 0 at %d", seq, v, code, off, at[seq])
		}
	}
}

// TestRetryAfterCrash: a server process killed the moment it has
// committed an idempotent batch, before anything else (its client never
// heard of it), leaves what a server started anew needs to answer the
// client's retry of the batch with its offset: the log holds it once.
// One killed after it journaled where the batch goes, before its commit,
// leaves a log without it: the retry is stored, once.
func TestRetryAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		point                  string
		duplicates, mismatches int64
	}{
		{"committed", 1, 0},
		{"noted", 0, 1},
	} {
		t.Run(tc.point, func(t *testing.T) {
			dir := openIdem(t)
			pid, epoch := crashStoring(t, dir, tc.point)
			l, ts := reopen(t, dir)
			retryWants(t, ts, pid, epoch, 0, 1)
			wantValues(t, l, "a", "b")
			if st := ts.srv.Stats(); st.DuplicateBatches != tc.duplicates || st.JournalMismatches != tc.mismatches {
				t.Errorf("Stats: %d duplicates, %d journal mismatches; want %d and %d",
					st.DuplicateBatches, st.JournalMismatches, tc.duplicates, tc.mismatches)
			}
		})
	}
}

// TestRetryNotTakenForOtherBatch: a server process killed after it
// journaled where an idempotent batch goes, before its commit; another
// process then stores a batch at those offsets with the same count, key,
// value and headers, but another timestamp. The client's retry is not
// taken for it (acknowledged with its offset, and lost): it is stored.
func TestRetryNotTakenForOtherBatch(t *testing.T) {
	dir := openIdem(t)
	pid, epoch := crashStoring(t, dir, "noted")
	l, ts := reopen(t, dir)
	p, err := l.Producer("idem", nil)
	if err != nil {
		t.Fatal(err)
	}
	// produceBatch's record is timed 1000 ms.
	at, err := p.Send(t.Context(), runnel.Record{Value: []byte("a"), Time: time.UnixMilli(2000)})
	if err != nil || at.Offset != 0 {
		t.Fatalf("the other batch: offset %d, %v; want 0", at.Offset, err)
	}
	retryWants(t, ts, pid, epoch, 1, 2)
	wantValues(t, l, "a", "a", "b")
	recs := readNative(t, l, "idem", 2)
	if got := recs[1].Time.UnixMilli(); got != 1000 {
		t.Errorf("offset 1 is timed %d ms, want the retry's 1000", got)
	}
}

// TestOlderJournalEntryInLog: an entry written at commit by a server
// before entries carried their records' hash (entryStored) still answers
// a retry whose keys, values and headers the log holds at its offsets.
func TestOlderJournalEntryInLog(t *testing.T) {
	dir := openIdem(t)
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := l.Producer("idem", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its time is not compared: a client may stamp a retry anew.
	if _, err := p.Send(t.Context(), runnel.Record{Value: []byte("a"), Time: time.UnixMilli(2000)}); err != nil {
		t.Fatal(err)
	}
	id, err := l.TopicID("idem")
	if err != nil {
		t.Fatal(err)
	}
	const pid, epoch = 7000, 0
	var w warnings
	j, _, err := openJournal(journalDir(dir, "idem", 0), id, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, stored(pid, epoch, 0, 1, 0, time.Now()))
	j.close()
	retryWants(t, startServerOn(t, l, nil), pid, epoch, 0, 1)
	wantValues(t, l, "a", "b")
}
