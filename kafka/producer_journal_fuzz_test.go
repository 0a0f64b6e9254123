package kafka

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzProducerJournal writes the files of stopped servers from the
// fuzzer's description (entries of a few producers, of both kinds, in two
// files, some damaged, a file of an earlier topic, a torn last entry) and has a new
// server open the journal: it must not fail or panic on any of it, must
// load exactly what a plain replay of the entries that check out says
// (each producer's last seqWindow distinct batches of its newest epoch,
// in the order written), and must read the same back from its own file;
// a running server taking over the same files must load the same.
func FuzzProducerJournal(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0, 0, 2, 0, 0, 0, 1, 0, 1})
	f.Add([]byte{3, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23})
	f.Fuzz(func(t *testing.T, spec []byte) {
		if len(spec) < 2 {
			return
		}
		flags, tail := spec[0], int(spec[1])%entrySize
		spec = spec[2:]
		now := time.Now()
		dir := t.TempDir()
		files := [2][]byte{journalHeader(testTopicID, now), journalHeader(testTopicID, now)}
		if flags&1 != 0 {
			// File b is an earlier topic's: none of it counts.
			files[1] = journalHeader(otherTopicID, now)
		}
		var valid []journalEntry
		for i := 0; len(spec) >= 10 && i < 200; i, spec = i+1, spec[10:] {
			d := spec[:10]
			back := binary.LittleEndian.Uint16(d[6:]) % 2000
			if back == 24*60 {
				back++ // the expiry itself: openJournal's clock is later than now
			}
			e := journalEntry{
				kind:  entryStored,
				pid:   int64(d[0] % 4),
				epoch: int16(d[1] % 3),
				first: int32(d[2] % 16),
				count: int32(d[3]%3) + 1,
				base:  int64(binary.LittleEndian.Uint16(d[4:])),
				// Minutes back, out of order, some beyond the idle
				// expiry; the index keeps times distinct.
				time: now.Add(-time.Duration(back)*time.Minute).UnixNano() + int64(i),
			}
			e.last = e.first + e.count - 1
			if d[8]&4 != 0 {
				// Written before the commit, with its records' hash.
				e.kind, e.hash = entryStoring, uint64(d[9])*0x9e3779b97f4a7c15
			}
			var b [entrySize]byte
			e.encode(b[:])
			file := int(d[8] & 1)
			damaged := d[8]&2 != 0
			if damaged {
				b[d[9]%entrySize] ^= 0x40
			}
			files[file] = append(files[file], b[:]...)
			if !damaged && (file == 0 || flags&1 == 0) {
				valid = append(valid, e)
			}
		}
		files[0] = append(files[0], make([]byte, tail)...)
		stopServers := func() {
			for i, name := range []string{"a", "b"} {
				if err := os.WriteFile(filepath.Join(dir, name), files[i], 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		stopServers()
		var w warnings
		j, got, err := openJournal(dir, testTopicID, w.warn)
		if err != nil {
			t.Fatal(err)
		}
		j.close()
		if want := replayJournal(valid, now); !slices.Equal(got, want) {
			t.Fatalf("loaded %d entries:\n%+v\nwant %d:\n%+v\nwarnings:\n%s", len(got), got, len(want), want, &w)
		}
		running, again, err := openJournal(dir, testTopicID, w.warn)
		if err != nil {
			t.Fatal(err)
		}
		defer running.close()
		if !slices.Equal(again, got) {
			t.Fatalf("read back %d entries from the new server's file, wrote %d", len(again), len(got))
		}
		// The same files, of servers stopped since, are taken over by a
		// running server to the same effect; another topic's are left.
		stopServers()
		var taken []journalEntry
		if err := running.takeOverStopped(func(e []journalEntry) { taken = e }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(taken, got) {
			t.Fatalf("took over %d entries:\n%+v\nwant %d:\n%+v", len(taken), taken, len(got), got)
		}
		if _, err := os.Stat(filepath.Join(dir, "b")); (err == nil) != (flags&1 != 0) {
			t.Errorf("file b after the take-over: %v (another topic's: %v)", err, flags&1 != 0)
		}
	})
}

// journalHeader is a journal file's first entry, for the topic id.
func journalHeader(topicID string, now time.Time) []byte {
	b := make([]byte, entrySize)
	hdr := journalEntry{kind: entryHeader, topicID: topicIDBytes(topicID), time: now.UnixNano()}
	hdr.encode(b)
	return b
}

// replayJournal is what a journal of entries (with distinct times) says,
// worked out apart from foldEntries: for each producer used within the
// idle expiry by its newest epoch, the batches of that epoch, each batch's last entry
// only, the last seqWindow of them, all in time order.
func replayJournal(entries []journalEntry, now time.Time) []journalEntry {
	byTime := slices.Clone(entries)
	slices.SortFunc(byTime, func(a, b journalEntry) int { return int(a.time - b.time) })
	newest := map[int64]int16{}
	for _, e := range byTime {
		if _, seen := newest[e.pid]; !seen || e.epoch > newest[e.pid] {
			newest[e.pid] = e.epoch
		}
	}
	used := map[int64]int64{} // by the newest epoch: a fenced zombie's writes do not count
	for _, e := range byTime {
		if e.epoch == newest[e.pid] {
			used[e.pid] = max(used[e.pid], e.time)
		}
	}
	type batch struct {
		pid         int64
		first, last int32
	}
	lastOf := map[batch]int{}
	for i, e := range byTime {
		if e.epoch == newest[e.pid] {
			lastOf[batch{e.pid, e.first, e.last}] = i
		}
	}
	kept := map[int64]int{}
	var out []journalEntry
	for i := len(byTime) - 1; i >= 0; i-- {
		e := byTime[i]
		if lastOf[batch{e.pid, e.first, e.last}] != i || e.epoch != newest[e.pid] ||
			now.Sub(time.Unix(0, used[e.pid])) > producerIdleExpiry || kept[e.pid] == seqWindow {
			continue
		}
		kept[e.pid]++
		out = append(out, e)
	}
	slices.Reverse(out)
	return out
}
