package kafka

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel"
)

// topicCache keeps, per topic, what every Produce to it needs: its
// partition count and two producers, one per acknowledgement level. A
// topic deleted and created again (by anyone) is noticed when its old
// producers fail, or when replaced says so before an answer that the
// handle alone would give (from the producer state, or a partition
// outside its count: handleFor), and reloaded.
type topicCache struct {
	log *runnel.Log
	mu  sync.Mutex
	m   map[string]*topicHandle
}

type topicHandle struct {
	name string
	// id is the topic's ID when the handle was loaded: the producer
	// state of the topic is kept under it (idempotence.go).
	id        string
	durable   *runnel.Producer // acks=-1: acknowledged as the Log's Durability says
	committed *runnel.Producer // acks=1 and 0: acknowledged once committed
	journals  partitionJournals
	// starts has an entry per partition, logStart's last look: its length
	// is the partition count the handle knows, which grows with the
	// topic's (handleFor), never shrinks. A slice stored is never changed.
	starts atomic.Pointer[[]*atomic.Pointer[startLook]]
}

// partitions returns the partition count h knows.
func (h *topicHandle) partitions() int { return len(*h.starts.Load()) }

// grow makes h know n partitions, if that is more than it knows.
func (h *topicHandle) grow(n int) {
	for {
		old := h.starts.Load()
		if old != nil && len(*old) >= n {
			return
		}
		var starts []*atomic.Pointer[startLook]
		if old != nil {
			starts = append(starts, *old...)
		}
		for len(starts) < n {
			starts = append(starts, new(atomic.Pointer[startLook]))
		}
		if h.starts.CompareAndSwap(old, &starts) {
			return
		}
	}
}

// startLook is a partition's log start offset as looked up, and when.
type startLook struct {
	offset int64
	at     time.Time
}

// logStartAge is how old a partition's log start offset may be in an
// answer that reports it while records flow (a stored batch's, a fetch's):
// only retention and DeleteRecords move it (a DeleteRecords through this
// server looks it up afresh), which clients learn of a second late at most,
// and a look reads the partition's directory and its last segment's end.
const logStartAge = time.Second

// logStart returns the log start offset of h's partition p, looked up
// again if fresh is set or the last look is older than logStartAge; -1 if
// the look fails.
func (s *Server) logStart(h *topicHandle, p int32, fresh bool) int64 {
	last := (*h.starts.Load())[p]
	if l := last.Load(); !fresh && l != nil && time.Since(l.at) < logStartAge {
		return l.offset
	}
	now := time.Now()
	start, _, err := s.log.PartitionOffsets(h.name, int(p))
	if err != nil {
		return -1
	}
	last.Store(&startLook{start, now})
	return start
}

func (tc *topicCache) init(l *runnel.Log) {
	tc.log = l
	tc.m = map[string]*topicHandle{}
}

// get returns the topic's handle, loading it on first use. It fails with
// runnel.ErrTopicNotFound for a topic that does not exist.
func (tc *topicCache) get(name string) (*topicHandle, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if h := tc.m[name]; h != nil {
		return h, nil
	}
	// The ID (and the config, of the same topic) before the producers:
	// if the topic is made again in between, the handle gets the older
	// ID, which replaced reports, and never producers older than its ID,
	// whose failure would drop the state of the topic the name has now
	// (topicGone).
	cfg, id, err := tc.log.TopicConfigAndID(name)
	if err != nil {
		return nil, err
	}
	manual := runnel.ManualPartitioner
	durable, err := tc.log.Producer(name, &runnel.ProducerOptions{Partitioner: manual})
	if err != nil {
		return nil, err
	}
	committed, err := tc.log.Producer(name, &runnel.ProducerOptions{Partitioner: manual, Acks: runnel.AckCommitted})
	if err != nil {
		durable.Close()
		return nil, err
	}
	h := &topicHandle{name: name, id: id, durable: durable, committed: committed}
	h.grow(cfg.Partitions)
	tc.m[name] = h
	return h, nil
}

// forget drops h, whose topic was deleted (and maybe created again), so
// that the next get loads the topic afresh.
func (tc *topicCache) forget(h *topicHandle) {
	tc.mu.Lock()
	if tc.m[h.name] == h {
		delete(tc.m, h.name)
	}
	tc.mu.Unlock()
	h.durable.Close()
	h.committed.Close()
	h.journals.close()
}

// cached returns the handle the cache holds for name, if any.
func (tc *topicCache) cached(name string) *topicHandle {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.m[name]
}

// topicGone forgets h, whose topic was deleted (and maybe made again),
// and the producer state kept under its topic's ID.
func (s *Server) topicGone(h *topicHandle) {
	s.topics.forget(h)
	s.seqs.dropTopic(h.name, h.id)
}

// replaced reports whether h's topic was deleted since h was loaded, by
// this server or by any process, and maybe made again: its name no longer
// has h's ID. It reads the topic's file (a stat and a small read). A file
// that cannot be read says nothing either way: false.
func (s *Server) replaced(h *topicHandle) bool {
	id, err := s.log.TopicID(h.name)
	return h.replacedBy(id, err)
}

// replacedBy reports whether a read of h's topic file that gave id, or
// err, says h's topic is gone (replaced's rule).
func (h *topicHandle) replacedBy(id string, err error) bool {
	return errors.Is(err, runnel.ErrTopicNotFound) || err == nil && id != h.id
}

// handleFor returns h, or a handle on the topic h's name has now when
// partition is outside h's count and h's topic was deleted since h was
// loaded; h grows to the topic's count when partitions were added to it
// (CreatePartitions, AlterTopic), by this server or another process. The
// count is the topic's when h was loaded or last grew, and another process
// may add partitions, or delete the topic and make it again with more,
// without the server being told: the server notices a deleted topic when
// an append through h fails, but no append goes to a partition outside
// h's count, and a fetch appends nothing, so the partitions added would be
// refused until a restart. The look at the topic's file (its ID and its
// count) is made only where the count decides the answer, so a
// partition inside it costs nothing; a count that shrank is noticed where
// the partition is used (the append through h fails, or the consumer
// refuses it: newFetchTopic).
func (s *Server) handleFor(h *topicHandle, partition int32) (*topicHandle, error) {
	if int(partition) < h.partitions() {
		return h, nil
	}
	// The ID and the count from one read: read apart, a topic deleted
	// and made again between them grew h, the old topic's handle, to the
	// new topic's count.
	cfg, id, err := s.log.TopicConfigAndID(h.name)
	if testHookTopicLooked != nil {
		testHookTopicLooked(h.name)
	}
	if h.replacedBy(id, err) {
		s.topicGone(h)
		return s.topics.get(h.name)
	}
	if err == nil {
		h.grow(cfg.Partitions)
	}
	return h, nil
}

// testHookTopicLooked, if set, runs where handleFor has read the ID of
// topic name from its file, before it acts on what it read: a test
// makes the topic anew there, between that read and any other.
var testHookTopicLooked func(name string)

// stale reports whether err from h's producers means its topic is gone.
func stale(err error) bool {
	return errors.Is(err, runnel.ErrTopicNotFound) || errors.Is(err, runnel.ErrClosed)
}

// close flushes and closes every producer.
func (tc *topicCache) close() error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var errs []error
	for name, h := range tc.m {
		errs = append(errs, h.durable.Close(), h.committed.Close())
		h.journals.close()
		delete(tc.m, name)
	}
	return errors.Join(errs...)
}
