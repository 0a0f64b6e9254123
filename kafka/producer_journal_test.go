package kafka

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// warnings collects a journal's warnings.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) warn(msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, strings.TrimSpace(fmt.Sprintln(append([]any{msg}, args...)...)))
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

const (
	testTopicID  = "00112233445566778899aabbccddeeff"
	otherTopicID = "ffeeddccbbaa99887766554433221100"
)

func mustOpenJournal(t *testing.T, dir, topicID string, w *warnings) (*producerJournal, []journalEntry) {
	t.Helper()
	j, entries, err := openJournal(dir, topicID, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.close)
	return j, entries
}

// journalFiles lists the files of a journal's directory, hidden ones too.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// wantRunningFiles checks that the journal's files are the running
// servers' alone.
func wantRunningFiles(t *testing.T, dir string, running ...*producerJournal) {
	t.Helper()
	files := journalFiles(t, dir)
	slices.Sort(files)
	var want []string
	for _, j := range running {
		want = append(want, filepath.Base(j.path))
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("files %q, want the running servers' alone, %q", files, want)
	}
}

// stored is a stored batch's entry: producer pid's batch of count records
// from sequence first, at base.
func stored(pid int64, epoch int16, first, count int32, base int64, at time.Time) journalEntry {
	return journalEntry{kind: entryStored, pid: pid, epoch: epoch, first: first, last: first + count - 1,
		count: count, base: base, time: at.UnixNano()}
}

func mustAppend(t *testing.T, j *producerJournal, entries ...journalEntry) {
	t.Helper()
	for _, e := range entries {
		if err := j.append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// bases lists a folded producer's batches as "first-last@base".
func bases(f *foldedProducer) string {
	if f == nil {
		return "none"
	}
	var out []string
	for _, b := range f.batches {
		out = append(out, fmt.Sprintf("%d-%d@%d", b.first, b.last, b.base))
	}
	return fmt.Sprintf("epoch %d: %s", f.epoch, strings.Join(out, " "))
}

// TestProducerJournal: a journal a server closed is read back by the next
// one, folded into each producer's last seqWindow batches of its newest
// epoch (entries of an older epoch after a newer one are a fenced
// zombie's and left out), and taken into the new server's own file.
func TestProducerJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p", "0")
	var w warnings
	j, entries := mustOpenJournal(t, dir, testTopicID, &w)
	if len(entries) != 0 {
		t.Fatalf("a new journal has %d entries", len(entries))
	}
	now := time.Now()
	for i := range int32(7) {
		mustAppend(t, j, stored(1, 0, 2*i, 2, int64(10*i), now))
	}
	mustAppend(t, j,
		stored(1, 0, 12, 2, 60, now), // the same batch again: counted once
		stored(2, 0, 0, 1, 100, now),
		stored(2, 1, 0, 3, 101, now), // a new epoch starts over
		stored(2, 0, 1, 1, 104, now), // a zombie's, stored as it was fenced
		stored(3, 5, 9, 1, 105, now))
	j.close()

	want := map[int64]string{
		1: "epoch 0: 4-5@20 6-7@30 8-9@40 10-11@50 12-13@60",
		2: "epoch 1: 0-2@101",
		3: "epoch 5: 9-9@105",
	}
	for round := range 2 { // the second reads what the first took over
		j, entries = mustOpenJournal(t, dir, testTopicID, &w)
		folded := foldEntries(entries)
		for pid, want := range want {
			if got := bases(folded[pid]); got != want {
				t.Errorf("round %d, producer %d: %s, want %s", round, pid, got, want)
			}
		}
		if files := journalFiles(t, dir); len(files) != 1 || files[0] != filepath.Base(j.path) {
			t.Errorf("round %d: the journal's files are %q, want the new server's alone, %s", round, files, filepath.Base(j.path))
		}
		j.close()
	}
	if w.String() != "" {
		t.Errorf("warnings from a sound journal:\n%s", w.String())
	}
}

// TestProducerJournalServers: servers open on one journal each append to
// their own file and leave each other's alone, producers included; a
// closed (or dead) server's file is taken over by the next to open.
func TestProducerJournalServers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j1, _ := mustOpenJournal(t, dir, testTopicID, &w)
	j2, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	mustAppend(t, j1, stored(1, 0, 0, 1, 0, now))
	mustAppend(t, j2, stored(2, 0, 0, 1, 1, now))
	j3, entries := mustOpenJournal(t, dir, testTopicID, &w)
	if len(entries) != 0 {
		t.Errorf("a third server took in %d entries of running servers, want none", len(entries))
	}
	if n := len(journalFiles(t, dir)); n != 3 {
		t.Errorf("%d files with three servers open, want 3", n)
	}
	j1.close()
	j3.close()
	j4, entries := mustOpenJournal(t, dir, testTopicID, &w)
	folded := foldEntries(entries)
	if bases(folded[1]) != "epoch 0: 0-0@0" || folded[2] != nil {
		t.Errorf("a fourth server took in %s and %s, want the closed server's batch alone", bases(folded[1]), bases(folded[2]))
	}
	wantRunningFiles(t, dir, j2, j4)
}

// TestProducerJournalTakeOverStopped: a running server takes over the
// file of a server that stopped after it opened the journal, into its own
// file, loading its entries before anything else can use the journal; it
// leaves running servers' files and producers alone, and files of
// another topic ID (its own topic may have been deleted since) too, but
// removes a damaged file, which no server can use.
func TestProducerJournalTakeOverStopped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	running, _ := mustOpenJournal(t, dir, testTopicID, &w)
	stopping, _ := mustOpenJournal(t, dir, testTopicID, &w)
	other, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	mustAppend(t, running, stored(1, 0, 0, 1, 0, now))
	mustAppend(t, stopping, stored(2, 0, 0, 2, 1, now), stored(2, 0, 2, 1, 3, now))
	mustAppend(t, other, stored(3, 0, 0, 1, 4, now))
	newer := filepath.Join(dir, "newer-topic")
	if err := os.WriteFile(newer, journalHeader(otherTopicID, now), 0o644); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged")
	if err := os.WriteFile(damaged, make([]byte, 2*entrySize), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustTakeOver(t, running); len(got) != 0 {
		t.Fatalf("with every server running, took over %d entries, want none", len(got))
	}
	stopping.close()
	folded := foldEntries(mustTakeOver(t, running))
	if len(folded) != 1 || bases(folded[2]) != "epoch 0: 0-1@1 2-2@3" {
		t.Errorf("took over %s and %d producers, want the stopped server's two batches alone", bases(folded[2]), len(folded))
	}
	if _, err := os.Stat(newer); err != nil {
		t.Errorf("the other topic ID's file: %v, want it left", err)
	}
	os.Remove(newer)
	if _, err := os.Stat(damaged); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the damaged file: %v, want it removed", err)
	}
	wantRunningFiles(t, dir, running, other)
	// The taken-over batches are in the running server's file now.
	running.close()
	other.close()
	_, entries := mustOpenJournal(t, dir, testTopicID, &w)
	folded = foldEntries(entries)
	if bases(folded[1]) != "epoch 0: 0-0@0" || bases(folded[2]) != "epoch 0: 0-1@1 2-2@3" || bases(folded[3]) != "epoch 0: 0-0@4" {
		t.Errorf("the next server took in %s, %s and %s", bases(folded[1]), bases(folded[2]), bases(folded[3]))
	}
	if got := w.String(); !strings.Contains(got, "/damaged position 0") || strings.Count(got, "\n") != 0 {
		t.Errorf("warnings:\n%s\nwant one, of the damaged file", got)
	}
}

// TestProducerJournalTakeOverCompacts: entries taken over that would take
// the file past its compaction size are compacted with it into a new
// file, so that it stays within what a server reads.
func TestProducerJournalTakeOverCompacts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	running, _ := mustOpenJournal(t, dir, testTopicID, &w)
	stopping, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	mustAppend(t, running, stored(1, 0, 0, 1, 0, now))
	for i := range int32(seqWindow + 3) {
		mustAppend(t, stopping, stored(2, 0, i, 1, int64(1+i), now))
	}
	stopping.close()
	before := running.path
	running.compactAt = running.size + entrySize // the first taken-over entry reaches it
	folded := foldEntries(mustTakeOver(t, running))
	if bases(folded[2]) != "epoch 0: 3-3@4 4-4@5 5-5@6 6-6@7 7-7@8" {
		t.Errorf("took over %s", bases(folded[2]))
	}
	if running.path == before || running.size != entrySize*(1+1+seqWindow) {
		t.Errorf("our file %s of %d bytes after the take-over, want a new one of %d", running.path, running.size, entrySize*(1+1+seqWindow))
	}
	wantRunningFiles(t, dir, running)
	running.close()
	_, entries := mustOpenJournal(t, dir, testTopicID, &w)
	folded = foldEntries(entries)
	if bases(folded[1]) != "epoch 0: 0-0@0" || bases(folded[2]) != "epoch 0: 3-3@4 4-4@5 5-5@6 6-6@7 7-7@8" {
		t.Errorf("the next server took in %s and %s", bases(folded[1]), bases(folded[2]))
	}
}

// mustTakeOver has j take over stopped servers' files and returns what it
// loaded, checking that the journal was held while it did.
func mustTakeOver(t *testing.T, j *producerJournal) []journalEntry {
	t.Helper()
	var loaded []journalEntry
	err := j.takeOverStopped(func(entries []journalEntry) {
		if j.mu.TryLock() {
			j.mu.Unlock()
			t.Error("entries taken over were loaded with the journal let go")
		}
		loaded = entries
	})
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

// TestProducerJournalFoldOrder: entries of several files (and of batches
// committed in another order than their entries were written) fold in
// the order of their offsets, whatever order the files are read in.
func TestProducerJournalFoldOrder(t *testing.T) {
	now := time.Now()
	var entries []journalEntry
	for i := range int32(10) {
		entries = append(entries, stored(1, 0, 2+i, 1, int64(2+i), now.Add(time.Duration(2+i))))
	}
	entries = append(entries, stored(1, 0, 0, 1, 0, now), stored(1, 0, 1, 1, 1, now.Add(1))) // another file, read last
	if got := bases(foldEntries(slices.Clone(entries))[1]); got != "epoch 0: 7-7@7 8-8@8 9-9@9 10-10@10 11-11@11" {
		t.Errorf("folded %s, want the five last stored", got)
	}
	compacted := compactEntries(slices.Clone(entries), now)
	if got := bases(foldEntries(compacted)[1]); len(compacted) != 5 || got != "epoch 0: 7-7@7 8-8@8 9-9@9 10-10@10 11-11@11" {
		t.Errorf("compacted to %d entries, folding to %s", len(compacted), got)
	}
	// A power loss took the frames of seq 3 and 4 (acks=1) but not their
	// entries; seq 5 went to seq 3's offset: written last, it is the last.
	reused := []journalEntry{stored(1, 0, 2, 1, 12, now), stored(1, 0, 3, 1, 13, now.Add(1)),
		stored(1, 0, 4, 1, 14, now.Add(2)), stored(1, 0, 5, 1, 13, now.Add(3))}
	if got := bases(foldEntries(reused)[1]); got != "epoch 0: 2-2@12 3-3@13 4-4@14 5-5@13" {
		t.Errorf("a reused offset folds to %s, want seq 5 last", got)
	}
	// A batch stored twice (its first fdatasync failed): the later is it.
	twice := []journalEntry{stored(1, 0, 0, 1, 0, now), stored(1, 0, 0, 1, 5, now), stored(1, 0, 0, 1, 0, now)}
	if got := bases(foldEntries(twice)[1]); got != "epoch 0: 0-0@5" {
		t.Errorf("a batch stored twice folds to %s, want the later", got)
	}
}

// TestProducerJournalDamage: an entry that does not check out and a
// partial entry at the end (a write cut short) are skipped and reported
// with the file and position; the rest is read.
func TestProducerJournalDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	mustAppend(t, j, stored(1, 0, 0, 1, 0, now), stored(1, 0, 1, 1, 1, now), stored(1, 0, 2, 1, 2, now))
	j.close()
	path := j.path
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The second stored entry (after the header) loses a byte of its base.
	if _, err := f.WriteAt([]byte{0xff}, 2*entrySize+24); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 20), 4*entrySize); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, entries := mustOpenJournal(t, dir, testTopicID, &w)
	if got := bases(foldEntries(entries)[1]); got != "epoch 0: 0-0@0 2-2@2" {
		t.Errorf("read back %s, want the first and third batches", got)
	}
	log := w.String()
	for _, want := range []string{
		fmt.Sprintf("damaged, skipped file %s position %d", path, 2*entrySize),
		fmt.Sprintf("partial entry, ignored file %s position %d", path, 4*entrySize),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("warnings lack %q:\n%s", want, log)
		}
	}
}

// TestProducerJournalOfEarlierTopic: files left by an earlier topic of the
// same name (another topic id) are not believed, and removed.
func TestProducerJournalOfEarlierTopic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j, _ := mustOpenJournal(t, dir, otherTopicID, &w)
	mustAppend(t, j, stored(1, 0, 0, 1, 0, time.Now()))
	j.close()
	j, entries := mustOpenJournal(t, dir, testTopicID, &w)
	if len(entries) != 0 {
		t.Fatalf("the new topic's journal has the old one's %d entries", len(entries))
	}
	mustAppend(t, j, stored(2, 0, 0, 1, 0, time.Now()))
	j.close()
	if _, entries = mustOpenJournal(t, dir, testTopicID, &w); len(entries) != 1 || entries[0].pid != 2 {
		t.Errorf("reopened: %+v, want producer 2's entry alone", entries)
	}
	if n := len(journalFiles(t, dir)); n != 1 {
		t.Errorf("%d files, want 1", n)
	}
}

// TestProducerJournalCompaction: past journalCompactAt a server's file is
// replaced by a new one of its own with each live producer's last
// batches (idle producers dropped), which another server leaves alone
// while it runs and takes over once it stopped.
func TestProducerJournalCompaction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	mustAppend(t, j, stored(9, 0, 0, 1, 0, now.Add(-2*producerIdleExpiry)), stored(8, 0, 0, 1, 1, now))
	n := journalCompactAt / entrySize
	for i := range int32(n) {
		mustAppend(t, j, stored(1, 0, i, 1, int64(2+i), now))
	}
	mustAppend(t, j, stored(8, 0, 1, 1, int64(2+n), now))
	if fi, err := os.Stat(j.path); err != nil || fi.Size() >= journalCompactAt/2 {
		t.Fatalf("after %d appends the journal is %v bytes (%v), want it compacted", n+3, fi.Size(), err)
	}
	if _, entries := mustOpenJournal(t, dir, testTopicID, &w); len(entries) != 0 {
		t.Errorf("another server took in %d entries of the running one's compacted file", len(entries))
	}
	if files := journalFiles(t, dir); len(files) != 2 || !slices.Contains(files, filepath.Base(j.path)) {
		t.Errorf("files %q after another server opened, want the compacted one and the other's", files)
	}
	j.close()
	_, entries := mustOpenJournal(t, dir, testTopicID, &w)
	folded := foldEntries(entries)
	want := map[int64]string{
		1: fmt.Sprintf("epoch 0: %d-%d@%d %d-%d@%d %d-%d@%d %d-%d@%d %d-%d@%d",
			n-5, n-5, n-3, n-4, n-4, n-2, n-3, n-3, n-1, n-2, n-2, n, n-1, n-1, n+1),
		8: fmt.Sprintf("epoch 0: 0-0@1 1-1@%d", 2+n),
		9: "none",
	}
	for pid, want := range want {
		if got := bases(folded[pid]); got != want {
			t.Errorf("producer %d: %s, want %s", pid, got, want)
		}
	}
	if len(entries) > 10 {
		t.Errorf("the compacted journal has %d entries, want a few", len(entries))
	}
}

// TestProducerJournalCompactionGrows: a journal whose compacted size is
// past journalCompactAt (many producers) is compacted again only once it
// has doubled, not at every append.
func TestProducerJournalCompactionGrows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j, _ := mustOpenJournal(t, dir, testTopicID, &w)
	now := time.Now()
	n := int64(journalCompactAt/entrySize + 100) // a batch each of as many producers
	for i := range n {
		mustAppend(t, j, stored(i, 0, 0, 1, i, now))
	}
	first := j.path
	for i := range int64(100) {
		mustAppend(t, j, stored(i, 0, 1, 1, n+i, now))
	}
	if j.path != first || j.compactAt < 2*journalCompactAt {
		t.Errorf("compacted again %d appends after the first (next at %d bytes)", 100, j.compactAt)
	}
}

// TestProducerJournalTooLarge: a file larger than any a server writes is
// not read into memory: it is reported, ignored and removed.
func TestProducerJournalTooLarge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	var w warnings
	j, _ := mustOpenJournal(t, dir, testTopicID, &w)
	j.close()
	if err := os.Truncate(j.path, maxJournalBytes+entrySize); err != nil {
		t.Fatal(err)
	}
	_, entries := mustOpenJournal(t, dir, testTopicID, &w)
	if len(entries) != 0 || !strings.Contains(w.String(), "not used file "+j.path) {
		t.Errorf("%d entries; warnings:\n%s", len(entries), w.String())
	}
	if n := len(journalFiles(t, dir)); n != 1 {
		t.Errorf("%d files, want the new server's alone", n)
	}
}

// TestProducerJournalAbandonedFile: a file a server died writing (unlocked,
// not yet renamed, a while ago) is removed by the next to open; one just
// made is left to its writer.
func TestProducerJournalAbandonedFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, newPrefix+"old"), filepath.Join(dir, newPrefix+"fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, make([]byte, entrySize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	var w warnings
	mustOpenJournal(t, dir, testTopicID, &w)
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the abandoned file: %v, want it removed", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the file just made: %v, want it left", err)
	}
}

// TestProducerJournalCompactionBound: a compacted journal keeps at most
// maxKeptEntries entries, dropping the producers used longest ago, so that
// it stays readable (maxJournalBytes) however many producers there are.
func TestProducerJournalCompactionBound(t *testing.T) {
	now := time.Now()
	n := maxKeptEntries + 10
	entries := make([]journalEntry, n)
	for i := range n {
		entries[i] = stored(int64(i), 0, 0, 1, int64(i), now.Add(time.Duration(i)-time.Hour))
	}
	out := compactEntries(entries, now)
	if len(out) != maxKeptEntries || out[0].pid != 10 || out[len(out)-1].pid != int64(n-1) {
		t.Errorf("compacted %d entries to %d, producers %d to %d; want %d, from producer 10 on", n, len(out), out[0].pid, out[len(out)-1].pid, maxKeptEntries)
	}
}

// TestStoringEntry: an entry written before a batch's commit keeps its
// records' hash, and its last sequence follows from its first and count,
// wrapping after MaxInt32 as sequences do; a byte changed anywhere in it
// (the checksum field included) makes it not an entry, and so does a kind
// no server writes.
func TestStoringEntry(t *testing.T) {
	e := journalEntry{kind: entryStoring, epoch: 3, first: maxSeq - 1, pid: 77, count: 4,
		base: 1 << 40, time: time.Now().UnixNano(), hash: 0xfedcba9876543210}
	var b [entrySize]byte
	e.encode(b[:])
	got, ok := decodeEntry(b[:])
	want := e
	want.last = 1 // maxSeq-1, maxSeq, 0, 1
	if !ok || got != want {
		t.Fatalf("decoded %+v (%v), want %+v", got, ok, want)
	}
	for i := range entrySize {
		c := b
		c[i] ^= 0x10
		if d, ok := decodeEntry(c[:]); ok {
			t.Errorf("byte %d changed: decoded %+v", i, d)
		}
	}
	c := b
	c[0] = byte(entryStoring) + 1
	if _, ok := decodeEntry(c[:]); ok {
		t.Errorf("kind %d decoded", c[0])
	}
}
