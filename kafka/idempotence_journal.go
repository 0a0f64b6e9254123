package kafka

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
)

// partitionJournals holds a topic's producer journals (producer_journal.go),
// opened as its partitions first get an idempotent batch.
type partitionJournals struct {
	mu     sync.Mutex
	m      map[int32]*producerJournal
	closed bool
}

// journal returns the producer journal of h's partition. The first call
// for a partition opens it and hands what it says to s.seqs, so that
// producers this server has not seen since it started carry on where they
// were; opened says this call did.
func (s *Server) journal(h *topicHandle, partition int32) (j *producerJournal, opened bool, err error) {
	js := &h.journals
	js.mu.Lock()
	defer js.mu.Unlock()
	if j := js.m[partition]; j != nil {
		return j, false, nil
	}
	if js.closed {
		return nil, false, fmt.Errorf("kafka: topic %s: %w", h.name, runnel.ErrClosed)
	}
	// Opened for the topic h was loaded for, whose ID the state is kept
	// under: the files of a topic made again under the name since are not
	// this one's (openJournal would remove them as an earlier topic's).
	if s.replaced(h) {
		return nil, false, fmt.Errorf("kafka: %w: %s was deleted since the server loaded it", runnel.ErrTopicNotFound, h.name)
	}
	j, entries, err := openJournal(journalDir(s.log.Dir(), h.name, partition), h.id, s.opts.Logger.Warn)
	if err != nil {
		return nil, false, err
	}
	s.seqs.load(topicPartition{h.name, h.id, partition}, foldEntries(entries))
	if js.m == nil {
		js.m = map[int32]*producerJournal{}
	}
	js.m[partition] = j
	return j, true, nil
}

// takeOverStopped hands s.seqs what the journal files of servers stopped
// since this one opened tp's journal say, taking them into its own: a
// producer this server does not know on tp may be retrying there what
// such a server stored.
func (s *Server) takeOverStopped(j *producerJournal, tp topicPartition) {
	err := j.takeOverStopped(func(entries []journalEntry) { s.seqs.load(tp, foldEntries(entries)) })
	if err != nil {
		s.opts.Logger.Warn("kafka: producer journal: stopped servers' files not taken over", "dir", j.dir, "err", err)
	}
}

// close closes every journal; later batches' entries are dropped.
func (js *partitionJournals) close() {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.closed = true
	for _, j := range js.m {
		j.close()
	}
}

// noteStoring appends the entry of an idempotent batch about to be
// committed at base, under the partition's writer lock (produce.go). A
// failure to write it is logged, not returned: the batch is stored and
// acknowledged all the same; only a retry after a restart could find it
// unrecorded, and store it again.
func (s *Server) noteStoring(j *producerJournal, info batchInfo, last int32, base int64) {
	e := journalEntry{kind: entryStoring, epoch: info.producerEpoch, first: info.firstSeq, last: last,
		pid: info.producerID, count: info.count, base: base, time: time.Now().UnixNano(), hash: info.recordsHash}
	if err := j.add(e); err != nil {
		s.opts.Logger.Warn("kafka: producer journal not written; a retry of this batch after a restart would store it again",
			"dir", j.dir, "producer", info.producerID, "base", base, "err", err)
	}
}

// dropJournals removes the producer journal files of a deleted topic,
// which a topic made anew under the name would not believe (their header
// has the old ID) but which would otherwise stay. Files of another ID (the
// name made again already) are left, and so is every directory still in
// use. A server that still has a file open writes on to it unlinked until
// it notices the deletion.
func (s *Server) dropJournals(topic, topicID string) {
	dir := topicJournalsDir(s.log.Dir(), topic)
	parts, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	id := topicIDBytes(topicID)
	for _, p := range parts {
		pdir := filepath.Join(dir, p.Name())
		files, _ := os.ReadDir(pdir)
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") {
				continue // being written, perhaps for the topic made anew
			}
			path := filepath.Join(pdir, f.Name())
			if fileTopicID(path) == id {
				os.Remove(path)
			}
		}
		os.Remove(pdir) // if it is empty
	}
	os.Remove(dir)
}
