package runnel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of a Log: its own counters, and the state of the
// directory it has open. Log.Stats takes it.
//
// Two kinds of figures are in it, and the difference matters when several
// processes share the directory:
//
//   - Counters (records appended, fdatasyncs, records read, repairs, ...)
//     count what this Log did since Open: not other Logs, in this process
//     or others. They only grow (a partition's start again from zero if
//     its topic is deleted and created anew). Summed over every process
//     that opens the directory, they give the whole picture, as a
//     Prometheus sum() over instances does.
//   - Gauges (start and end offsets, durable offset and lag, segments,
//     bytes, group members, committed offsets and lag) describe the
//     directory as every process left it, read from the files when Stats
//     is called: every process that opens the directory reports the same.
type Stats struct {
	Backend    string // the active append backend: "io_uring" or "pwrite"
	Durability Durability

	// This Log's counters, over all partitions.
	FramesWritten  int64 // frames appended
	RecordsWritten int64 // records in those frames
	BytesWritten   int64 // bytes of those frames as stored: frame headers and record encoding included
	Syncs          int64 // fdatasyncs of segments: group commits, rolls, periodic, at Close
	SyncWaits      int64 // times a durable append slept while another process's fdatasync ran
	WriterLocks    int64 // times the Log took a writer lock: it keeps one across back-to-back appends
	Repairs        int64 // torn or uncommitted tails cut
	BytesRepaired  int64 // bytes those repairs cut
	// RecordsLost counts offsets this Log found known committed and gone:
	// cut by recovery after a power failure (Periodic and Buffered modes
	// may lose acknowledged records that way), or missing to damage. Each
	// loss is also logged and listed by Recoveries.
	RecordsLost int64
	// Recoveries is the number of reports Log.Recoveries holds: recoveries
	// after a reboot, and losses found without one.
	Recoveries int64
	// GapsCrossed counts the lost offsets (gaps left by a salvage) that
	// this Log's consumers skipped.
	GapsCrossed int64
	RecordsRead int64 // records this Log's consumers' Polls returned
	BytesRead   int64 // bytes of the frames they were read from, as stored
	PollWaits   int64 // times a Poll slept, having found no records
	Wakeups     int64 // of those sleeps, the ones an append (or a change in the group) ended, rather than a timeout, ctx or Close
	// FileReleases counts partitions that closed their files, idle or
	// to stay within Options.MaxOpenFiles; OpenPartitions is how many
	// have their files open now.
	FileReleases   int64
	OpenPartitions int

	// Partitions has an entry for every partition of every topic in the
	// directory, by topic name and partition.
	Partitions []PartitionStats

	// Groups has an entry for every group and topic with committed
	// offsets (an offsets file) in the directory, by group and topic.
	Groups []GroupStats

	// Err joins the errors met reading the directory's state (each is
	// also in the Err of its partition or group), or is ErrClosed after
	// Close. The counters are complete regardless.
	Err error
}

// PartitionStats is one partition's entry in Stats.
type PartitionStats struct {
	Topic     string
	Partition int

	// Counters: what this Log did to the partition since it loaded the
	// topic (zero for a partition it never touched).
	RecordsAppended int64 // records appended
	BytesAppended   int64 // bytes of their frames, as stored
	FramesAppended  int64 // frames appended: a frame holds one batch of records
	// Syncs is the fdatasyncs of the partition's segments and how long
	// each took: the Durable sync stage's group commits, Periodic mode's
	// timer, syncs at Close, and the sync of a sealed segment at a roll
	// (which also writes the seal, a few microseconds). Syncs.Count is the
	// number of fdatasyncs.
	Syncs         Histogram
	Repairs       int64 // torn or uncommitted tails cut
	BytesRepaired int64 // bytes those repairs cut
	RecordsLost   int64 // offsets found known committed and gone (see Stats.RecordsLost)
	Recoveries    int64 // recovery reports for the partition (see Log.Recoveries)
	RecordsRead   int64 // records this Log's consumers' Polls returned
	BytesRead     int64 // bytes of the frames they were read from, as stored
	GapsCrossed   int64 // lost offsets (salvaged gaps) this Log's consumers skipped

	// Gauges: the partition as it is on disk when Stats read it, written
	// by any process. All are -1 when Err is set.
	StartOffset int64 // first offset still stored (retention moves it up)
	EndOffset   int64 // offset the next record will get: the log end offset
	// DurableOffset is the offset below which every record is known to
	// be on disk: the durable point an fdatasync recorded in
	// partition.meta, or the start of the last segment (sealed segments
	// are synced at the roll) if that is later. Records written before
	// the machine last booted count as on disk: they survived it.
	DurableOffset int64
	// DurableLag is EndOffset − DurableOffset, at least 0: records
	// committed (acknowledged with AckCommitted, and readable) that no
	// fdatasync has covered yet, which a power loss could take. In Durable
	// mode it is the records between commit and fdatasync, near zero when
	// appends pause; in Periodic mode up to a SyncInterval of appends; in
	// Buffered mode it grows until a roll or Close syncs.
	DurableLag int64
	Segments   int   // segment files
	Bytes      int64 // bytes of the segment files, without zeros ahead of the tail (PartitionInfo.Bytes); indexes add under 1%

	// Err is why the gauges could not be read: damage (a *CorruptError),
	// a permission error, a file gone mid-read.
	Err error
}

// GroupStats is one consumer group's entry in Stats for one topic, read
// through DescribeGroup. A topic whose offsets DescribeGroup could not
// read (a damaged offsets file) has an entry of its own, with Err (which
// wraps its *GroupTopicError) and Rebalances only; the group's other
// topics have theirs as usual.
type GroupStats struct {
	Group string
	Topic string // empty when Err says the group could not be read at all

	// Members is the number of live members, in any process (a gauge).
	Members int
	// Rebalances counts the times this Log's members of the group took or
	// gave up partitions of the topic (a counter): a member joining,
	// leaving or dying makes each member that moves count one.
	Rebalances int64
	// Partitions has each partition's committed offset, end offset, lag
	// (End − Committed, or -1 when either is unknown) and owner, as
	// DescribeGroup reports them.
	Partitions []GroupPartition

	Err error
}

// Histogram is a snapshot of a latency histogram, in Prometheus's shape:
// cumulative counts of observations at or below each bound.
type Histogram struct {
	Count int64         // observations
	Sum   time.Duration // their total
	// Buckets are the counts of observations at or below UpperBound,
	// cumulative, on a fixed 1–2.5–5 scale from 10µs to 10s.
	// Observations above the last bound are counted in Count only.
	Buckets []Bucket
}

// Bucket is one bucket of a Histogram.
type Bucket struct {
	UpperBound time.Duration
	Count      int64 // observations at or below UpperBound
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1: 0.99 for the p99) of the
// observations by linear interpolation inside the bucket that holds it,
// as Prometheus's histogram_quantile does: exact to a bucket's width. It
// is 0 without observations, and the last bound if the quantile lies
// above it.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || len(h.Buckets) == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(h.Count)
	var below int64
	var lower time.Duration
	for _, b := range h.Buckets {
		if float64(b.Count) >= rank && b.Count > below {
			frac := (rank - float64(below)) / float64(b.Count-below)
			return lower + time.Duration(frac*float64(b.UpperBound-lower))
		}
		below, lower = b.Count, b.UpperBound
	}
	return h.Buckets[len(h.Buckets)-1].UpperBound
}

// Stats returns this Log's counters and the directory's state.
//
// The counters are atomic loads. The state is read from the files, without
// taking any lock or disturbing any writer, reader or group member, so it
// costs I/O in proportion to the directory: per partition, a listing of
// its directory, a stat per segment, a read of the last segment's offset
// index and of the frames after its last entry (the same read that finds a
// partition's end for DescribeTopic), and a 176-byte read of
// partition.meta; per group and topic, a read of its offsets file, a lock
// probe per member slot and partition, and each partition's end again.
// BenchmarkStats measures it. Call it for monitoring, every few seconds,
// not per record.
func (l *Log) Stats() Stats {
	s := &l.stats
	st := Stats{
		Backend:        l.app.name(),
		Durability:     l.opts.Durability,
		FramesWritten:  s.frames.Load(),
		RecordsWritten: s.records.Load(),
		BytesWritten:   s.bytes.Load(),
		Syncs:          s.syncs.Load(),
		SyncWaits:      s.syncWaits.Load(),
		WriterLocks:    s.writerLocks.Load(),
		Repairs:        s.repairs.Load(),
		BytesRepaired:  s.repairedBytes.Load(),
		RecordsLost:    s.recordsLost.Load(),
		Recoveries:     l.recoveryTotal(),
		GapsCrossed:    s.gapsCrossed.Load(),
		RecordsRead:    s.recordsRead.Load(),
		BytesRead:      s.bytesRead.Load(),
		PollWaits:      s.pollWaits.Load(),
		Wakeups:        s.wakeups.Load(),
		FileReleases:   s.fileReleases.Load(),
		OpenPartitions: l.parts.openCount(),
	}
	var perr, gerr error
	st.Partitions, perr = l.partitionStats()
	st.Groups, gerr = l.groupStats()
	st.Err = errors.Join(perr, gerr)
	if errors.Is(perr, ErrClosed) {
		st.Err = ErrClosed
	}
	return st
}

// partitionStats reads every partition of every topic in the directory.
func (l *Log) partitionStats() ([]PartitionStats, error) {
	names, err := l.Topics()
	if err != nil {
		return nil, err
	}
	var out []PartitionStats
	var errs []error
	for _, name := range names {
		t, err := l.topic(name)
		if errors.Is(err, ErrTopicNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ps []PartitionStats
		gone := false
		for _, p := range t.parts() {
			s := p.stats()
			if s.Err != nil && errors.Is(l.orGone(t, s.Err), ErrTopicNotFound) {
				gone = true // deleted while being read: leave it out
				break
			}
			if s.Err != nil {
				errs = append(errs, s.Err)
			}
			ps = append(ps, s)
		}
		if !gone {
			out = append(out, ps...)
		}
	}
	return out, errors.Join(errs...)
}

// stats is the partition's entry in Stats.
func (p *partition) stats() PartitionStats {
	c := &p.counts
	s := PartitionStats{
		Topic:           p.topic.name,
		Partition:       p.id,
		RecordsAppended: c.records.Load(),
		BytesAppended:   c.bytes.Load(),
		FramesAppended:  c.frames.Load(),
		Syncs:           histogram(c.syncs.Load()),
		Repairs:         c.repairs.Load(),
		BytesRepaired:   c.repairedBytes.Load(),
		RecordsRead:     c.recordsRead.Load(),
		BytesRead:       c.bytesRead.Load(),
		GapsCrossed:     c.gapsCrossed.Load(),
	}
	s.Recoveries, s.RecordsLost = p.log.recoveryCounts(p.dir)
	info, err := p.describe()
	var durable int64
	if err == nil {
		durable, err = p.durableOffset(info.NextOffset)
	}
	if err != nil {
		s.StartOffset, s.EndOffset, s.DurableOffset, s.DurableLag, s.Segments, s.Bytes = -1, -1, -1, -1, -1, -1
		s.Err = fmt.Errorf("runnel: stats of %s/%d: %w", p.topic.name, p.id, err)
		return s
	}
	s.StartOffset, s.EndOffset, s.Segments, s.Bytes = info.StartOffset, info.NextOffset, info.Segments, info.Bytes
	s.DurableOffset, s.DurableLag = durable, -1
	if durable >= 0 {
		s.DurableLag = max(info.NextOffset-durable, 0)
	}
	return s
}

// durableOffset reads, from partition.meta, the offset below which the
// partition is known to be on disk, given its end offset now (see
// PartitionStats.DurableOffset), or -1 if that cannot be told. It reads
// the file rather than mapping it, so that it creates nothing and needs
// only read permission.
//
// Every writer records a durable point of the current boot before its
// first append (recovery sets one), so a point of an earlier boot, or
// none, means nobody appended since the machine started: everything there
// is on disk. A point whose checksum does not match is being updated (read
// again) or was torn by a process killed while writing it (unknown until
// the next fdatasync writes it anew).
func (p *partition) durableOffset(endOffset int64) (int64, error) {
	path := filepath.Join(p.dir, metaFileName)
	f, err := openRegularRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		return endOffset, nil // nobody ever opened the partition to write
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, metaDurSumOff+8)
	for range 3 {
		n, err := f.ReadAt(buf, 0)
		if n < len(buf) {
			if err == nil || errors.Is(err, io.EOF) {
				return endOffset, nil // never written by a writer
			}
			return 0, err
		}
		m := newMetaMap(buf, path, true, true)
		boot, _, _, next, ok := m.durablePoint()
		switch {
		case ok && boot != currentBootID:
			return endOffset, nil
		case ok:
			// Sealed segments were synced at their roll: the published
			// tail's segment starts at or before the unsynced records.
			if t, tok := m.tail(); tok && t.base > next {
				next = t.base
			}
			return next, nil
		case allZero(buf[metaBootOff:]):
			return endOffset, nil // no durable point was ever recorded
		}
		runtime.Gosched()
	}
	return -1, nil
}

// groupStats reads every group's state, through DescribeGroups: an entry
// per topic, of which one DescribeGroup could not read has its error.
func (l *Log) groupStats() ([]GroupStats, error) {
	var out []GroupStats
	var errs []error
	for info, err := range l.DescribeGroups() {
		name := info.Group
		if name == "" { // the listing failed
			return nil, err
		}
		damaged := GroupTopicErrors(err)
		if err != nil && damaged == nil {
			err = fmt.Errorf("runnel: stats of group %s: %w", name, err)
			errs = append(errs, err)
			out = append(out, GroupStats{Group: name, Err: err})
			continue
		}
		first := len(out)
		for _, gt := range info.Topics {
			out = append(out, GroupStats{
				Group:      name,
				Topic:      gt.Topic,
				Members:    len(gt.Members),
				Rebalances: l.stats.groups.load(name, gt.Topic),
				Partitions: gt.Partitions,
			})
		}
		for _, gte := range damaged {
			err := fmt.Errorf("runnel: stats of group %s: %w", name, gte)
			errs = append(errs, err)
			out = append(out, GroupStats{
				Group:      name,
				Topic:      gte.Topic,
				Rebalances: l.stats.groups.load(name, gte.Topic),
				Err:        err,
			})
		}
		slices.SortStableFunc(out[first:], func(a, b GroupStats) int { return strings.Compare(a.Topic, b.Topic) })
	}
	return out, errors.Join(errs...)
}
