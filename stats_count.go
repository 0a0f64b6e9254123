package runnel

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-log/runnel/internal/hist"
)

// The counters behind Stats, and the one-line hooks that the append, sync
// and read paths call. Every hook is a few atomic adds on memory the caller
// already owns: no allocation, no lock the path did not take anyway.
// Counters that different goroutines write at once (the appender, the
// syncer, consumers) sit on separate cache lines, so that counting does
// not make them contend.

// cacheLine pads counters written by different goroutines apart.
type cacheLine [64]byte

// logStats is a Log's own counters, since Open.
type logStats struct {
	// The append path (append.go, writerlock.go, tail.go, loss.go).
	frames, records, bytes, writerLocks atomic.Int64
	repairs, repairedBytes, recordsLost atomic.Int64
	_                                   cacheLine
	// The sync stage (commit.go).
	syncs, syncWaits atomic.Int64
	_                cacheLine
	// Consumers (consumer.go, consumer_wait.go, reader.go).
	recordsRead, bytesRead, pollWaits, wakeups, gapsCrossed atomic.Int64
	_                                                       cacheLine
	// Open files (partfiles.go).
	fileReleases atomic.Int64

	groups groupCounters
}

// partCounters is what a Log counted for one partition, since it loaded
// the topic.
type partCounters struct {
	records, bytes, frames atomic.Int64 // appended, under the writer lock
	repairs, repairedBytes atomic.Int64
	_                      cacheLine
	syncs                  hist.Histogram // the sync stage and rolls
	_                      cacheLine
	recordsRead, bytesRead atomic.Int64 // consumers
	gapsCrossed            atomic.Int64
	_                      cacheLine
}

// noteAppend counts one frame of records, size bytes as stored, appended
// to p.
func (p *partition) noteAppend(records, size int) {
	s, c := &p.log.stats, &p.counts
	s.frames.Add(1)
	s.records.Add(int64(records))
	s.bytes.Add(int64(size))
	c.frames.Add(1)
	c.records.Add(int64(records))
	c.bytes.Add(int64(size))
}

// observeSync records how long an fdatasync of p's segment took, from
// began. The Log's Syncs counter is counted where the sync is.
func (p *partition) observeSync(began time.Time) {
	p.counts.syncs.Observe(time.Since(began))
}

// noteRepair counts a torn or uncommitted tail of cut bytes cut from p.
func (p *partition) noteRepair(cut int64) {
	p.log.stats.repairs.Add(1)
	p.log.stats.repairedBytes.Add(cut)
	p.counts.repairs.Add(1)
	p.counts.repairedBytes.Add(cut)
}

// noteGapCrossed counts n lost offsets a consumer skipped in p.
func (p *partition) noteGapCrossed(n int64) {
	p.log.stats.gapsCrossed.Add(n)
	p.counts.gapsCrossed.Add(n)
}

// fillCounted is r.fill(c.recs, max) for Poll, counting what it read:
// one count per partition per Poll rather than per frame, so a Poll of
// many small frames pays for counting once. A frame's bytes count when
// its last record is delivered (MaxPollRecords may split it).
func (c *Consumer) fillCounted(r *partReader, max int) error {
	before, bytes := len(c.recs), r.bytesDecoded
	var err error
	c.recs, err = r.fill(c.recs, max)
	if n := len(c.recs) - before; n > 0 {
		size := r.bytesDecoded - bytes
		s, pc := &c.log.stats, &r.p.counts
		s.recordsRead.Add(int64(n))
		s.bytesRead.Add(size)
		pc.recordsRead.Add(int64(n))
		pc.bytesRead.Add(size)
	}
	return err
}

// noteSleep counts a Poll's sleep once it ended: a wake-up if an append
// sequence (or the group's word) moved, rather than a timeout, ctx or
// Close ending it.
func (c *Consumer) noteSleep() {
	s := &c.log.stats
	s.pollWaits.Add(1)
	for i, w := range c.words {
		if w.Load() != c.expect[i] {
			s.wakeups.Add(1)
			return
		}
	}
}

// noteRebalance counts a change of this member's partitions: n taken or
// given up.
func (c *Consumer) noteRebalance(n int) {
	if n > 0 && c.g != nil {
		c.log.stats.groups.counter(c.g.m.group, c.g.m.topic).Add(1)
	}
}

// groupCounters counts rebalances by group and topic. A rebalance is rare,
// so a map under a lock is cheap enough.
type groupCounters struct {
	mu sync.Mutex
	m  map[groupTopic]*atomic.Int64
}

type groupTopic struct{ group, topic string }

func (g *groupCounters) counter(group, topic string) *atomic.Int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := groupTopic{group, topic}
	n := g.m[k]
	if n == nil {
		if g.m == nil {
			g.m = map[groupTopic]*atomic.Int64{}
		}
		n = new(atomic.Int64)
		g.m[k] = n
	}
	return n
}

// load returns the count for group and topic, 0 if none.
func (g *groupCounters) load(group, topic string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.m[groupTopic{group, topic}]; n != nil {
		return n.Load()
	}
	return 0
}

// histogram turns a snapshot into the exported form: cumulative counts
// by upper bound.
func histogram(s hist.Snapshot) Histogram {
	h := Histogram{Sum: s.Sum, Buckets: make([]Bucket, len(hist.Bounds))}
	for i, b := range hist.Bounds {
		h.Count += s.Counts[i]
		h.Buckets[i] = Bucket{UpperBound: b, Count: h.Count}
	}
	h.Count += s.Counts[len(hist.Bounds)]
	return h
}

// recoveryCounts returns, for partition directory dir, how many
// recoveries this Log reported and how many records they found lost.
func (l *Log) recoveryCounts(dir string) (recoveries, lost int64) {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	for _, r := range l.recoveries {
		if r.Partition == dir {
			recoveries++
			lost += r.LostTo - r.LostFrom
		}
	}
	return recoveries, lost
}

// recoveryTotal is the number of reports Recoveries holds.
func (l *Log) recoveryTotal() int64 {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	return int64(len(l.recoveries))
}
