package kafka

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/internal/names"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: v4-12, sessionless (every request is a full fetch; the response's
// session id 0 tells clients so). Records are read with a runnel Consumer
// per connection and topic, kept between requests: a client fetching on
// where it stopped costs no seek. A fetch takes what the consumer has, poll
// after poll, up to the partitions' and the response's limits; one with
// too little data then waits on runnel's wake-ups (the kernel wakes it
// when any process appends) until MinBytes arrived or MaxWaitMillis
// passed. Each partition's records go out as one uncompressed
// RecordBatch.

func init() { supports(kmsg.Fetch, 4, 12) }

// Bounds on a consumer's read size per partition and poll.
const (
	minPollBytes = 4 << 10
	maxPollBytes = 16 << 20
)

// fetchSession is a connection's consumers, one per topic it fetches,
// and the buffers its responses are built in. A fetch runs only after
// the previous response was written (conn.barrier), so the buffers are
// free again by then.
type fetchSession struct {
	topics map[string]*fetchTopic
	bufs   [][]byte // record-batch buffers, reused
	used   int      // bufs handed out by this fetch
	kept   int      // the capacity of bufs, in bytes
}

// maxKeptFetchBuffers bounds the bytes a connection keeps in its fetch
// buffers between fetches. Each response is bounded (MaxFetchBytes), but
// the buffers are slots by position in the request, so a client naming
// its partitions in a new order each time could otherwise have every slot
// grow to maxKeptBuffer.
const maxKeptFetchBuffers = 64 << 20

// buffer returns a reusable buffer for one partition's records.
func (fs *fetchSession) buffer() []byte {
	if fs.used == len(fs.bufs) {
		fs.bufs = append(fs.bufs, nil)
	}
	b := fs.bufs[fs.used][:0]
	fs.used++
	return b
}

// keep takes a buffer back into slot i after the fetch, if it is not too
// large and the session's buffers stay within maxKeptFetchBuffers.
func (fs *fetchSession) keep(i int, b []byte) {
	fs.kept -= cap(fs.bufs[i])
	fs.bufs[i] = nil
	if cap(b) <= maxKeptBuffer && fs.kept+cap(b) <= maxKeptFetchBuffers {
		fs.bufs[i] = b[:0]
		fs.kept += cap(b)
	}
}

type fetchTopic struct {
	cons    *runnel.Consumer
	id      string // the topic's ID when the consumer was made
	parts   []int  // partitions the consumer reads, sorted
	maxPoll int

	// unplaced holds the partitions whose last Seek failed: the
	// consumer's position there is not where it reads from (it keeps the
	// error), so a fetch at that position must seek too.
	unplaced map[int]bool

	// rest holds records the consumer returned that no response took
	// (a partition's limit was reached): they alias the consumer's buffer
	// until its next poll, and the next fetch starts with them instead of
	// seeking back, which would read the frame again.
	rest []runnel.Record

	// Per partition, from the last look at the disk (finishFetch); -1
	// for a partition not looked up yet.
	starts, ends []int64
	described    time.Time
}

// position is where the next fetch of partition p continues without a
// seek: its first record kept in rest, or the consumer's position.
func (ft *fetchTopic) position(p int) int64 {
	for i := range ft.rest {
		if ft.rest[i].Partition == p {
			return ft.rest[i].Offset
		}
	}
	return ft.cons.Position(p)
}

// restDeleted reports whether partition p's records in rest begin below
// where a DeleteRecords (of any process) moved its start since the poll
// that read them: a fetch there must seek, which answers
// OFFSET_OUT_OF_RANGE, as Kafka's broker does once DeleteRecords returned.
func (ft *fetchTopic) restDeleted(p int) bool {
	for i := range ft.rest {
		if ft.rest[i].Partition == p {
			return ft.rest[i].Offset < ft.cons.DeletedBelow(p)
		}
	}
	return false
}

// dropRest forgets partition p's records in rest.
func (ft *fetchTopic) dropRest(p int) {
	ft.rest = slices.DeleteFunc(ft.rest, func(r runnel.Record) bool { return r.Partition == p })
}

// rewind moves every partition with records in rest back to the first of
// them, before the consumer polls again and the records go stale. It
// returns the partitions that could not be moved (retention removed the
// records meanwhile), with their errors.
func (ft *fetchTopic) rewind() map[int]error {
	var failed map[int]error
	for len(ft.rest) > 0 {
		p := ft.rest[0].Partition
		if err := ft.seek(p, ft.rest[0].Offset); err != nil {
			if failed == nil {
				failed = map[int]error{}
			}
			failed[p] = err
		}
		ft.dropRest(p)
	}
	return failed
}

// seek moves partition p to offset. A seek that fails (the partition does
// not hold the offset) leaves its error on p in the consumer, whose next
// poll would return it for every partition, and the client would reset
// partitions that were fine: so p is moved to its end instead, and marked
// unplaced, for the next fetch of it to seek again.
func (ft *fetchTopic) seek(p int, offset int64) error {
	err := ft.cons.Seek(p, runnel.AtOffset(offset))
	ft.unplaced[p] = err != nil
	if err != nil {
		if lerr := ft.cons.Seek(p, runnel.Latest); lerr != nil {
			return errors.Join(err, lerr)
		}
	}
	return err
}

func (fs *fetchSession) close() {
	for name, ft := range fs.topics {
		ft.cons.Close()
		delete(fs.topics, name)
	}
}

// fetchPart is one requested partition's progress through a fetch.
type fetchPart struct {
	resp   *kmsg.FetchResponseTopicPartition
	offset int64 // next offset the response should hold
	max    int   // PartitionMaxBytes
	batch  batchBuilder
	kept   int  // records after offset left in the consumer's rest
	slot   int  // its buffer's index in the session
	failed bool // an error code is set: ignore its records
}

// fetchTopicReq is one requested topic's consumer and partitions.
type fetchTopicReq struct {
	name  string
	ft    *fetchTopic
	parts map[int]*fetchPart
	full  bool // a record was held back for want of room in the response
}

func (c *conn) fetchRecords(req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionID != 0 {
		// Sessions are never created, so a client naming one is confused.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	c.fetch.used = 0
	// A topic may be named in several entries, each answered in its own
	// (KafkaJS and librdkafka name one again after another topic's
	// partitions), but one reader serves all of its partitions.
	var topics []*fetchTopicReq
	byName := map[string]*fetchTopicReq{}
	invalid := false // a partition named twice, or negative
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.FetchResponseTopicPartition, len(t.Partitions))
		tr := byName[t.Topic]
		if tr == nil {
			tr = &fetchTopicReq{name: t.Topic, parts: map[int]*fetchPart{}}
			byName[t.Topic] = tr
			topics = append(topics, tr)
		}
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			// Empty, not null: librdkafka refuses a null record set.
			rp.RecordBatches = []byte{}
			fp := &fetchPart{resp: rp, offset: p.FetchOffset, max: int(p.PartitionMaxBytes)}
			fp.batch.buf, fp.slot = c.fetch.buffer(), c.fetch.used-1
			if _, dup := tr.parts[int(p.Partition)]; dup || p.Partition < 0 {
				rp.ErrorCode, fp.failed, invalid = kerr.InvalidRequest.Code, true, true
				continue
			}
			tr.parts[int(p.Partition)] = fp
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, tr := range topics {
		c.prepareFetch(tr)
	}

	// Gather until MinBytes or the deadline; the first pass never waits.
	// Bounded by the server too: a request may ask for 2 GiB. A partition
	// that failed (damage, an offset out of range, a topic deleted) is
	// answered at once, as Kafka does: waiting out MaxWait would only
	// delay the error.
	total, maxBytes := 0, int(req.MaxBytes)
	if maxBytes <= 0 || maxBytes > c.s.opts.MaxFetchBytes {
		maxBytes = c.s.opts.MaxFetchBytes
	}
	// A poll returns at most the consumer's MaxPollRecords (500), so a
	// pass that got records is followed by one that does not wait, until
	// the partitions are full or have nothing more now: a response holds
	// what there is, not one poll's worth (500 records of 100 bytes where
	// a client asks for a megabyte), as Kafka's does.
	for wait := false; ; {
		ctx, cancel := c.s.ctx, context.CancelFunc(nil)
		if wait {
			ctx, cancel = context.WithDeadline(c.s.ctx, deadline)
		}
		got := c.pollTopics(ctx, topics, wait, maxBytes-total, total == 0)
		if cancel != nil {
			cancel()
		}
		total += got
		// A response with no room for the next record is as full as it
		// gets: waiting for MinBytes would only delay it.
		full := total >= maxBytes || slices.ContainsFunc(topics, func(tr *fetchTopicReq) bool { return tr.full })
		failed := invalid || slices.ContainsFunc(topics, (*fetchTopicReq).anyFailed)
		if full || failed || c.s.ctx.Err() != nil {
			break
		}
		if got > 0 {
			wait = false
			continue
		}
		if total >= int(req.MinBytes) || time.Now().After(deadline) {
			break
		}
		wait = true
	}
	for _, tr := range topics {
		c.finishFetch(tr)
	}
	return resp
}

// prepareFetch sets up the topic's consumer for the requested partitions
// and moves each to its fetch offset.
func (c *conn) prepareFetch(tr *fetchTopicReq) {
	var want []int
	maxPoll := minPollBytes
	for p, fp := range tr.parts {
		want = append(want, p)
		maxPoll = max(maxPoll, min(fp.max, maxPollBytes))
	}
	slices.Sort(want)
	if len(want) == 0 {
		return
	}
	fs := &c.fetch
	ft := fs.topics[tr.name]
	if ft != nil && (!slices.Equal(ft.parts, want) || ft.maxPoll != maxPoll || !c.s.sameTopic(tr.name, ft)) {
		ft.cons.Close()
		ft = nil
	}
	if ft == nil {
		var missing []int
		var err error
		ft, missing, err = c.s.newFetchTopic(tr.name, want, maxPoll)
		if err != nil {
			tr.failAll(topicErrorCode(err))
			return
		}
		for _, p := range missing {
			tr.fail(p, kerr.UnknownTopicOrPartition.Code)
		}
		if ft == nil {
			return
		}
		if fs.topics == nil {
			fs.topics = map[string]*fetchTopic{}
		}
		fs.topics[tr.name] = ft
		want = ft.parts
	}
	tr.ft = ft
	for _, p := range want {
		fp := tr.parts[p]
		if fp.failed || ft.position(p) == fp.offset && !ft.unplaced[p] && !ft.restDeleted(p) {
			continue
		}
		ft.dropRest(p)
		if err := ft.seek(p, fp.offset); err != nil {
			tr.fail(p, fetchErrorCode(err))
		}
	}
}

// newFetchTopic opens a consumer of the partitions want (sorted) of
// topic name. It leaves out, and returns as missing, the partitions the
// topic does not have; ft is nil if none is left.
//
// Which partitions the topic has comes from the server's handle on it,
// which another process's deleting the topic and making it again with
// another count leaves stale: a partition past the handle's count gets a
// look at the topic's file (handleFor), and one the topic lost makes the
// consumer refuse the whole list (runnel.ErrInvalidArgument), which the
// same look tells from a true error before the consumer is made again.
// So neither costs a fetch that names known partitions anything; and a
// consumer is made only when the partitions fetched change or the last
// one failed, not per fetch.
func (s *Server) newFetchTopic(name string, want []int, maxPoll int) (ft *fetchTopic, missing []int, err error) {
	h, err := s.topics.get(name)
	if err == nil {
		h, err = s.handleFor(h, int32(want[len(want)-1]))
	}
	if err != nil {
		return nil, nil, err
	}
	ft, missing, err = s.openFetchTopic(h, want, maxPoll)
	if errors.Is(err, runnel.ErrInvalidArgument) && s.replaced(h) {
		s.topicGone(h)
		if h, err = s.topics.get(name); err != nil {
			return nil, nil, err
		}
		ft, missing, err = s.openFetchTopic(h, want, maxPoll)
	}
	return ft, missing, err
}

// openFetchTopic is newFetchTopic with the partition count h has.
func (s *Server) openFetchTopic(h *topicHandle, want []int, maxPoll int) (*fetchTopic, []int, error) {
	in, _ := slices.BinarySearch(want, h.partitions())
	if in == 0 {
		return nil, want, nil
	}
	// The ID first: a topic made anew after it was read is caught at the
	// next fetch rather than missed.
	id, err := s.log.TopicID(h.name)
	if err != nil {
		return nil, nil, err
	}
	cons, err := s.log.Consumer(h.name, &runnel.ConsumerOptions{Partitions: want[:in], Start: runnel.Earliest, MaxPollBytes: maxPoll})
	if err != nil {
		return nil, nil, err
	}
	return &fetchTopic{cons: cons, id: id, parts: want[:in], maxPoll: maxPoll, unplaced: map[int]bool{}}, want[in:], nil
}

// sameTopic reports whether topic name is still the one ft's consumer
// was made for. Once the topic is deleted the consumer's polls fail, but
// the records it read ahead (rest) would be served at the offsets of a
// topic made anew under the name; so only those need the look, which
// reads the topic's file.
func (s *Server) sameTopic(name string, ft *fetchTopic) bool {
	if len(ft.rest) == 0 {
		return true
	}
	id, err := s.log.TopicID(name)
	return err == nil && id == ft.id
}

// fetchErrorCode is a fetch's error code for err: topicErrorCode's, and
// OFFSET_OUT_OF_RANGE for an offset the partition does not hold, which
// makes the client reset by its policy.
func fetchErrorCode(err error) int16 {
	if errors.Is(err, runnel.ErrOutOfRange) {
		return kerr.OffsetOutOfRange.Code
	}
	return topicErrorCode(err)
}

// pollTopics reads what the topics' consumers have, waiting (until ctx
// ends) for the first data if wait is set, and gathers up to room bytes
// into the partitions' record lists; empty says the response holds none
// yet. It returns the bytes gathered.
func (c *conn) pollTopics(ctx context.Context, topics []*fetchTopicReq, wait bool, room int, empty bool) int {
	var live []*fetchTopicReq
	for _, tr := range topics {
		if tr.ft != nil && tr.pending() {
			live = append(live, tr)
		}
	}
	if len(live) == 0 {
		if wait {
			c.s.waitingFetches.Add(1)
			<-ctx.Done() // nothing can arrive: wait out MaxWait as Kafka does
			c.s.waitingFetches.Add(-1)
		}
		return 0
	}
	got := 0
	if !wait {
		// Records left by the last fetch come first; a consumer that
		// still has some after that is not polled (it would drop them).
		polled := live[:0]
		for _, tr := range live {
			if len(tr.ft.rest) > 0 {
				rest := tr.ft.rest
				tr.ft.rest = tr.ft.rest[:0]
				got += tr.gather(rest, room-got, empty && got == 0)
			}
			if len(tr.ft.rest) == 0 {
				polled = append(polled, tr)
			}
		}
		if live = polled; len(live) == 0 {
			return got
		}
	} else {
		for _, tr := range live {
			for p, err := range tr.ft.rewind() {
				c.s.opts.Logger.Info("kafka: fetch failed", "topic", tr.name, "partition", p, "remote", c.remote, "err", err)
				tr.fail(p, fetchErrorCode(err))
			}
		}
	}
	results := make([][]runnel.Record, len(live))
	errs := make([]error, len(live))
	if wait {
		c.s.waitingFetches.Add(1)
		defer c.s.waitingFetches.Add(-1)
	}
	switch {
	case !wait:
		for i, tr := range live {
			results[i], errs[i] = tr.ft.cons.TryPoll()
		}
	case len(live) == 1:
		results[0], errs[0] = live[0].ft.cons.Poll(ctx)
	default:
		// One waiter per topic; the first to get records ends the others'
		// waits, and whatever they got as well is kept.
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i, tr := range live {
			wg.Go(func() {
				results[i], errs[i] = tr.ft.cons.Poll(wctx)
				if len(results[i]) > 0 {
					cancel()
				}
			})
		}
		wg.Wait()
		cancel()
	}
	for i, tr := range live {
		// A wait that ended, at the deadline or because another topic's
		// records ended it, is no failure.
		if err := errs[i]; err != nil && !isCtxErr(err) {
			c.fetchFailed(tr, err)
		}
		got += tr.gather(results[i], room-got, empty && got == 0)
	}
	return got
}

// damagedPartition returns the partition of topic whose directory holds
// the file at path (topics/<topic>/<partition>/<file> in the Log's
// directory) or is path (a partition directory gone, the damage runnel
// names by the directory), and false for any other file: a damaged
// topic.json of a topic named "5" is no damage of partition 5, but of the
// whole topic.
func (c *conn) damagedPartition(topic, path string) (int, bool) {
	topicDir := filepath.Join(c.s.log.Dir(), "topics", topic)
	dir := filepath.Dir(path)
	if dir == topicDir {
		dir = path
	} else if filepath.Dir(dir) != topicDir {
		return 0, false
	}
	return names.PartitionFromDir(filepath.Base(dir))
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fetchFailed marks the partitions a consumer error is about: the one a
// corruption or an offset out of range names, else all of the topic's.
// The consumer is dropped.
func (c *conn) fetchFailed(tr *fetchTopicReq, err error) {
	c.s.opts.Logger.Warn("kafka: fetch failed", "topic", tr.name, "remote", c.remote, "err", err)
	code := fetchErrorCode(err)
	var ce *runnel.CorruptError
	var oe *runnel.OutOfRangeError
	switch {
	case errors.As(err, &ce):
		if p, ok := c.damagedPartition(tr.name, ce.Path); ok && tr.parts[p] != nil {
			tr.fail(p, code)
		} else {
			tr.failAll(code)
		}
	case errors.As(err, &oe) && tr.parts[oe.Partition] != nil:
		// Retention removed records under one partition's position:
		// that one resets; the others only fetch again.
		tr.fail(oe.Partition, code)
	default:
		tr.failAll(code)
	}
	tr.ft.cons.Close()
	delete(c.fetch.topics, tr.name)
	tr.ft = nil
}

// gather copies the records that continue each partition's response
// while they fit in room and the partition's limit is not used up, and
// keeps the others in the consumer's rest. A partition's first record is
// taken past its limit, and the first record of an empty response
// whatever its size, so that a client always makes progress, as Kafka
// does. It returns the bytes taken.
func (tr *fetchTopicReq) gather(recs []runnel.Record, room int, empty bool) int {
	taken := 0
	var fp *fetchPart
	for i := range recs {
		r := &recs[i]
		// A poll returns each partition's records together: look the
		// partition up only where it changes.
		if fp == nil || int(fp.resp.Partition) != r.Partition {
			if fp = tr.parts[r.Partition]; fp == nil {
				continue
			}
		}
		if fp.failed || r.Offset != fp.offset+int64(fp.kept) {
			continue
		}
		before := fp.batch.size()
		partFull := before > 0 && before >= fp.max
		body := recordBodyLen(r)
		full := taken+body > room && !(empty && taken == 0)
		if fp.kept > 0 || partFull || full {
			tr.full = tr.full || full
			if tr.ft != nil {
				tr.ft.rest = append(tr.ft.rest, *r)
				fp.kept++
			}
			continue
		}
		fp.batch.addSized(r, body)
		fp.offset++
		taken += fp.batch.size() - before
	}
	return taken
}

// pending reports whether any partition can still take records.
func (tr *fetchTopicReq) pending() bool {
	for _, fp := range tr.parts {
		if !fp.failed && fp.batch.size() < fp.max {
			return true
		}
	}
	return false
}

func (tr *fetchTopicReq) fail(p int, code int16) {
	if fp := tr.parts[p]; fp != nil && !fp.failed {
		fp.failed, fp.resp.ErrorCode = true, code
	}
}

func (tr *fetchTopicReq) failAll(code int16) {
	for p := range tr.parts {
		tr.fail(p, code)
	}
}

// reportOutOfRange gives each partition answered OFFSET_OUT_OF_RANGE the
// partition's extent as it is now (Kafka's broker answers -1 there): the
// client resets by its policy, most asking ListOffsets anyway, and one
// that reads the log start offset here learns where a DeleteRecords or
// retention moved it.
func (c *conn) reportOutOfRange(tr *fetchTopicReq) {
	for p, fp := range tr.parts {
		if !fp.failed || fp.resp.ErrorCode != kerr.OffsetOutOfRange.Code {
			continue
		}
		if start, end, err := c.s.log.PartitionOffsets(tr.name, p); err == nil {
			fp.resp.HighWatermark, fp.resp.LastStableOffset, fp.resp.LogStartOffset = end, end, start
		}
	}
}

// finishFetch encodes each partition's records and fills in its offsets.
//
// Looking a partition's end up on disk costs a walk from the last index
// entry, so a partition that returns records reports, as its high
// watermark, the furthest offset its consumer has read: data that
// certainly exists, past every record returned, so a client never takes
// it for the end while records follow. Only a partition with nothing to
// return (the client is at the end, or thinks so) gets its exact end,
// which is what tells it that it has reached the end. The log start
// offset, which clients only report, is refreshed at most every second
// while records flow, but a DeleteRecords' start is reported from the
// moment the call returned (fetchTopic.logStart). Only the partitions fetched are looked up.
func (c *conn) finishFetch(tr *fetchTopicReq) {
	c.reportOutOfRange(tr)
	if tr.ft == nil && !tr.anyOK() {
		return
	}
	ft := tr.ft
	refresh := ft == nil || time.Since(ft.described) > logStartAge
	if refresh && ft != nil {
		ft.described = time.Now()
	}
	for p, fp := range tr.parts {
		if fp.failed || !refresh && fp.batch.count != 0 && ft.known(p) {
			continue
		}
		start, end, err := c.s.log.PartitionOffsets(tr.name, p)
		if err != nil {
			tr.fail(p, topicErrorCode(err))
			continue
		}
		if ft == nil {
			fp.resp.HighWatermark, fp.resp.LastStableOffset, fp.resp.LogStartOffset = end, end, start
			continue
		}
		ft.setOffsets(p, start, end)
	}
	if ft == nil {
		return
	}
	for p, fp := range tr.parts {
		if fp.failed {
			continue
		}
		// Never less than what was read: the end may have moved on
		// since it was looked up.
		hwm := max(ft.ends[p], fp.offset, ft.cons.Position(p))
		ft.ends[p] = hwm
		fp.resp.HighWatermark, fp.resp.LastStableOffset, fp.resp.LogStartOffset = hwm, hwm, ft.logStart(p, hwm)
		b := fp.batch.finish()
		c.fetch.keep(fp.slot, fp.batch.buf)
		if b != nil {
			fp.resp.RecordBatches = b
			c.s.stats.fetchedRecords.Add(int64(fp.batch.count))
			c.s.stats.fetchedBytes.Add(int64(len(fp.resp.RecordBatches)))
		}
	}
}

// logStart is partition p's log start offset for a response whose high
// watermark is hwm: the last look at the disk, or where a DeleteRecords
// that returned since moved it (one atomic load: a fetch sent after the
// call reports its start, as Kafka's broker does, not one up to
// logStartAge old), but never past hwm (a call that returned while the
// response's records were gathered).
func (ft *fetchTopic) logStart(p int, hwm int64) int64 {
	return min(max(ft.starts[p], ft.cons.DeletedBelow(p)), hwm)
}

// known says whether partition p's offsets were looked up before.
func (ft *fetchTopic) known(p int) bool { return p < len(ft.starts) && ft.starts[p] >= 0 }

// setOffsets records partition p's start and end as looked up on disk.
func (ft *fetchTopic) setOffsets(p int, start, end int64) {
	for len(ft.starts) <= p {
		ft.starts, ft.ends = append(ft.starts, -1), append(ft.ends, -1)
	}
	ft.starts[p], ft.ends[p] = start, end
}

func (tr *fetchTopicReq) anyFailed() bool {
	for _, fp := range tr.parts {
		if fp.failed {
			return true
		}
	}
	return false
}

func (tr *fetchTopicReq) anyOK() bool {
	for _, fp := range tr.parts {
		if !fp.failed {
			return true
		}
	}
	return false
}
