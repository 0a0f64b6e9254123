package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce: v3-12, advertised from v0. Versions 0-2 carry the old message
// formats, which are refused with UNSUPPORTED_VERSION when they arrive;
// they are advertised all the same because librdkafka turns compression
// off against a broker that does not list Produce v0 and up.
//
// Each partition's batch becomes one runnel frame: its records are decoded
// straight into a runnel.RecordBatch, sent with SendRecordBatchAsync, so
// they get consecutive offsets and are stored atomically, in the order
// the requests arrived. acks=-1 is acknowledged as the Log's Durability
// says (fdatasync'd in a Durable Log), acks=1 once committed
// (runnel.AckCommitted), acks=0 not at all. The response waits for every
// partition's acknowledgement, or the request's timeout.

func init() { apis[kmsg.Produce.Int16()] = versions{advertised: 0, min: 3, max: 12} }

// produce validates and queues every batch of req, and returns the
// response (nil for acks=0) with a wait that returns once it is complete.
// An acks=0 request that fails closes the connection once its batches
// are settled, as Kafka does: its client learns of the failure no other
// way, and reconnects and reloads its metadata (an unknown topic, a
// partition that is gone).
func (c *conn) produce(req *kmsg.ProduceRequest) (kmsg.Response, func()) {
	resp, wait := c.storeProduce(req)
	if req.Acks != 0 {
		return resp, wait
	}
	return nil, func() {
		if wait != nil {
			wait()
		}
		if code := refusedCode(resp); code != 0 {
			c.s.opts.Logger.Info("kafka: acks=0 produce failed; closing the connection, as Kafka does",
				"remote", c.remote, "err", kerr.ErrorForCode(code))
			c.nc.Close()
		}
	}
}

// refusedCode is the first error code of a produce response other than
// REQUEST_TIMED_OUT: a batch that only outlasted the request's timeout is
// still being stored, and Kafka never times out an acks=0 request.
func refusedCode(resp kmsg.Response) int16 {
	pr, ok := resp.(*kmsg.ProduceResponse)
	if !ok {
		return firstErrorCode(resp)
	}
	for _, t := range pr.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 && p.ErrorCode != kerr.RequestTimedOut.Code {
				return p.ErrorCode
			}
		}
	}
	return 0
}

// storeProduce is produce's work: it returns the response, for acks=0
// too, and its wait (nil when it is complete).
func (c *conn) storeProduce(req *kmsg.ProduceRequest) (kmsg.Response, func()) {
	if req.TransactionID != nil {
		// No transactions: InitProducerId hands out no transactional ids.
		return failedProduce(req, kerr.TransactionalIDAuthorizationFailed.Code), nil
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return failedProduce(req, kerr.InvalidRequiredAcks.Code), nil
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	pw := newProduceWait()
	var starts []startReport
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		h, err := c.s.producerTopic(t.Topic)
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LogAppendTime = -1
			rp.LogStartOffset = -1
			if err == nil {
				h, err = c.s.handleFor(h, p.Partition)
			}
			if rp.ErrorCode = c.s.refusal(h, err, p.Partition, len(p.Records)); rp.ErrorCode == 0 {
				c.s.storeBatch(h, req.Acks, p.Partition, p.Records, &c.scratch, pw.add(rp))
				starts = append(starts, startReport{rp, h, p.Partition})
			}
			// The request's buffer is reused once it is handled.
			t.Partitions[i].Records = nil
		}
		resp.Topics = append(resp.Topics, rt)
	}
	pw.added()
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	wait := func() {
		pw.wait(timeout)
		if req.Acks != 0 && req.Version >= 5 {
			for _, sr := range starts {
				sr.report(c.s)
			}
		}
		if h := testHookProduced; h != nil {
			h()
		}
	}
	return resp, wait
}

// startReport is a partition of a Produce response that reports its log
// start offset (v5+), as Kafka's does: one whose batch was read, stored or
// not. A client reads it at a refusal for its producer state (franz-go
// carries on without loss if retention removed every batch it had
// acknowledged there), so a refusal's is looked up afresh; a stored
// batch's, or one that outlasted the request's timeout, may be
// logStartAge old, which spares the look on every request. One refused
// before it was read (an unknown partition, too large) reports -1, as
// Kafka's does.
type startReport struct {
	rp        *kmsg.ProduceResponseTopicPartition
	h         *topicHandle
	partition int32
}

// report sets the partition's log start offset, once its result is final.
func (sr startReport) report(s *Server) {
	code := sr.rp.ErrorCode
	sr.rp.LogStartOffset = s.logStart(sr.h, sr.partition, code != 0 && code != kerr.RequestTimedOut.Code)
}

// testHookProduced, if set (by a test's child process), is called once a
// Produce request's batches are all acknowledged (or timed out), before
// its answer is written: a child that never returns from it has stored
// batches whose acknowledgements the client never gets.
var testHookProduced func()

// produceWait collects a request's partition results as their
// acknowledgements arrive. A partition not acknowledged within the
// request's timeout is answered REQUEST_TIMED_OUT (its batch may still be
// stored), and its late result is dropped.
type produceWait struct {
	mu    sync.Mutex
	parts []*waitPart
	// pending counts the partitions not yet acknowledged, plus one until
	// every partition is added (added): a partition acknowledged before
	// the next one is added must not find the count at zero.
	pending int
	done    chan struct{} // closed when pending reaches 0
	over    bool          // timed out: results are final
}

func newProduceWait() *produceWait {
	return &produceWait{pending: 1, done: make(chan struct{})}
}

// added says every partition of the request is added.
func (pw *produceWait) added() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.release()
}

// release counts one less pending. The caller holds pw.mu.
func (pw *produceWait) release() {
	if pw.pending--; pw.pending == 0 {
		close(pw.done)
	}
}

type waitPart struct {
	rp       *kmsg.ProduceResponseTopicPartition
	finished bool
}

// produceResult sets one partition's outcome: the base offset its batch
// was stored at, or the code it was refused with, and the failure (nil:
// none) whose text and records the answer gives (refusalDetails).
type produceResult func(base int64, code int16, why error)

func (pw *produceWait) add(rp *kmsg.ProduceResponseTopicPartition) produceResult {
	wp := &waitPart{rp: rp}
	pw.mu.Lock()
	pw.parts = append(pw.parts, wp)
	pw.pending++
	pw.mu.Unlock()
	return func(base int64, code int16, why error) {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		if pw.over || wp.finished {
			return
		}
		wp.finished = true
		rp.BaseOffset, rp.ErrorCode = base, code
		rp.ErrorMessage, rp.ErrorRecords = refusalDetails(code, why)
		pw.release()
	}
}

// wait returns once every partition has its result, or at the timeout.
func (pw *produceWait) wait(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-pw.done:
	case <-t.C:
		pw.mu.Lock()
		defer pw.mu.Unlock()
		pw.over = true
		for _, wp := range pw.parts {
			if !wp.finished {
				wp.rp.ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	}
}

// producerTopic returns the topic's handle, creating the topic first if
// auto-creation is on.
func (s *Server) producerTopic(name string) (*topicHandle, error) {
	h, err := s.topics.get(name)
	if errors.Is(err, runnel.ErrTopicNotFound) && s.opts.AutoCreateTopics {
		if err = s.autoCreate(name); err == nil {
			h, err = s.topics.get(name)
		}
	}
	return h, err
}

// refusal is the code a partition's batch is refused with before it is
// read, or 0: its topic (h, or err getting it) unknown, the partition not
// in it, or the batch too large.
func (s *Server) refusal(h *topicHandle, err error, partition int32, size int) int16 {
	switch {
	case err != nil:
		return topicErrorCode(err)
	case partition < 0 || int(partition) >= h.partitions():
		return kerr.UnknownTopicOrPartition.Code
	case size > s.opts.MaxMessageBytes:
		return kerr.MessageTooLarge.Code
	}
	return 0
}

// storeReloaded stores a batch that found h's topic deleted, and maybe
// made again, as if it came after the server forgot h: through a handle
// on the topic the name has now, with that topic's producer state, or
// refused if the name has none. Answering it UNKNOWN_TOPIC_OR_PARTITION
// instead would do too, but costs the client a metadata round trip and a
// retry for what the server can do at once.
func (s *Server) storeReloaded(h *topicHandle, acks int16, partition int32, raw []byte, scratch *batchScratch, result produceResult) {
	s.opts.Logger.Info("kafka: topic deleted since its producer state was made; the batch goes to the topic of that name now, if any",
		"topic", h.name, "partition", partition)
	s.topicGone(h)
	nh, err := s.producerTopic(h.name)
	if code := s.refusal(nh, err, partition, len(raw)); code != 0 {
		result(0, code, nil)
		return
	}
	s.storeBatch(nh, acks, partition, raw, scratch, result)
}

// storeBatch reads one partition's batch into scratch's frame, checks its
// sequence numbers if it is idempotent, and queues the frame; result gets
// the outcome. Everything of raw and scratch the frame needs is copied
// into it before storeBatch returns, so both may be reused at once.
func (s *Server) storeBatch(h *topicHandle, acks int16, partition int32, raw []byte, scratch *batchScratch, result produceResult) {
	info, err := readFrame(raw, scratch)
	if err != nil {
		s.opts.Logger.Info("kafka: produce refused", "topic", h.name, "partition", partition, "err", err)
		result(0, produceErrorCode(err), err)
		return
	}
	frame := &scratch.frame
	var seq *seqBatch
	var journal *producerJournal
	tp := topicPartition{h.name, h.id, partition}
	if info.producerID >= 0 {
		var opened bool
		if journal, opened, err = s.journal(h, partition); err != nil {
			frame.Reset()
			if stale(err) {
				// h's topic is gone, or h was forgotten meanwhile.
				s.storeReloaded(h, acks, partition, raw, scratch, result)
				return
			}
			s.opts.Logger.Error("kafka: producer journal", "topic", h.name, "partition", partition, "err", err)
			result(0, kerr.KafkaStorageError.Code, nil)
			return
		}
		if !opened && !s.seqs.knows(info.producerID, tp) {
			// New here, or its server died since we opened the
			// journal and it retries through us.
			s.takeOverStopped(journal, tp)
		}
		b, dup, code := s.seqs.begin(info.producerID, info.producerEpoch, tp, info.firstSeq, info.count)
		if (dup || code != 0) && s.replaced(h) {
			// An answer from the state alone, which must not be the
			// state of a topic deleted since, by whatever process
			// (idempotence.go). (A new batch needs no check: its
			// append through h fails if h's topic is gone.)
			frame.Reset()
			s.storeReloaded(h, acks, partition, raw, scratch, result)
			return
		}
		for dup && s.seqs.unconfirmed(b) {
			// A retry of a batch a stopped server's journal names: the
			// original offsets only if the log still holds it there.
			if s.inLog(h.name, partition, b, raw, scratch) {
				if s.seqs.confirm(info.producerID, tp, b) {
					break
				}
			} else {
				s.stats.journalMismatches.Add(1)
				s.opts.Logger.Warn("kafka: a retried batch the producer journal names is not in the log; stored anew",
					"topic", h.name, "partition", partition, "producer", info.producerID, "base", b.base)
				s.seqs.forgetFrom(info.producerID, tp, b)
			}
			// Forgotten, by this retry or another: stored anew, or a
			// duplicate of the one storing it.
			b, dup, code = s.seqs.begin(info.producerID, info.producerEpoch, tp, info.firstSeq, info.count)
		}
		switch {
		case code != 0:
			frame.Reset()
			result(0, code, nil)
			return
		case dup:
			// A retry: answered like the original, once that is.
			s.stats.duplicateBatches.Add(1)
			frame.Reset()
			go func() {
				<-b.done
				result(b.base, b.code, nil)
			}()
			return
		}
		seq = b
	}
	prod := h.durable
	if acks != -1 {
		prod = h.committed
	}
	n, size := info.count, len(raw)
	done := func(base int64, err error) {
		code := produceErrorCode(err)
		if err == nil {
			s.stats.producedRecords.Add(int64(n))
			s.stats.producedBytes.Add(int64(size))
		} else {
			s.opts.Logger.Warn("kafka: produce failed", "topic", h.name, "partition", partition, "err", err)
			if stale(err) {
				// The topic was deleted (maybe created again): the
				// client retries, with a fresh handle. Not here: this
				// runs on the partition's writer.
				go s.topicGone(h)
			}
		}
		if seq != nil {
			s.seqs.finish(seq, base, code)
		}
		result(base, code, err)
	}
	if seq == nil {
		prod.SendRecordBatchAsync(int(partition), frame, done)
		return
	}
	send := func(rb *runnel.RecordBatch) {
		// Journaled before its commit, under the partition's writer
		// lock: a server that dies once the batch is committed leaves
		// its entry, and a retry after a restart finds it there
		// (idempotence.go). Once committed, the producer's next batch
		// here may follow it.
		prod.SendRecordBatchAsyncNoted(int(partition), rb, func(base int64) {
			s.noteStoring(journal, info, seq.last, base)
			if h := testHookNoted; h != nil {
				h()
			}
		}, func(int64) {
			if h := testHookCommitted; h != nil {
				h()
			}
			seq.stored()
			journal.compactIfDue()
		}, done)
	}
	prev := seq.prev
	seq.prev = nil
	var hold <-chan error
	if h := testHookAppend; h != nil {
		hold = h(tp, info.firstSeq)
	}
	if prev == nil && hold == nil {
		send(frame)
		return
	}
	// The producer's previous batch here is still being stored: this one
	// follows it once it is committed (idempotence.go), from a goroutine
	// of its own, so that the connection reads on meanwhile; its frame
	// goes with it.
	rb := takeFrame(frame)
	s.following.Add(1)
	go func() {
		defer s.following.Done()
		defer putFrame(rb)
		if prev != nil {
			<-prev.decided
			if prev.state.Load() != seqStored {
				code := kerr.OutOfOrderSequenceNumber.Code
				s.seqs.finish(seq, 0, code)
				result(0, code, nil)
				return
			}
		}
		if hold != nil {
			if err := <-hold; err != nil {
				done(0, err)
				return
			}
		}
		send(rb)
	}()
}

// readFrame reads raw, one partition's batch, into scratch's frame, which
// it leaves empty if the batch is refused. An idempotent batch's records
// are hashed for its journal entry as they go.
func readFrame(raw []byte, scratch *batchScratch) (batchInfo, error) {
	frame := &scratch.frame
	digest := &scratch.digest
	digest.reset()
	idempotent := len(raw) >= batchProducerIDOff+8 && int64(binary.BigEndian.Uint64(raw[batchProducerIDOff:])) >= 0
	info, err := readBatch(raw, maxDecodedBatch, time.Now(), scratch, func(rec *batchRecord) error {
		if err := frame.AddAt(rec.time, rec.key, rec.value, rec.headers); err != nil {
			return err
		}
		if idempotent {
			digest.add(rec.time, rec.key, rec.value, rec.headers)
		}
		// Decompression stopped at one frame's bytes, but a record
		// may encode a few bytes larger in a frame than in a batch.
		if frame.Size() > runnel.MaxFrameBytes {
			return fmt.Errorf("%w: batch encodes to more than one frame (%d bytes)", errTooLarge, runnel.MaxFrameBytes)
		}
		return nil
	})
	if err == nil && info.transactional {
		err = errTransactional
	}
	info.recordsHash = digest.sum()
	if err != nil {
		frame.Reset()
	}
	return info, err
}

// testHookAppend, if set, is called with each idempotent batch begun (a
// retry of one is not), before it is handed to the core. A channel it
// returns stands in for the core's first step: the batch waits for a value
// from it, then is stored (nil) or fails with the error, as an append that
// failed without storing it.
var testHookAppend func(tp topicPartition, first int32) <-chan error

// testHookNoted and testHookCommitted, if set (by a test's child
// process), are called as an idempotent batch is stored: once its
// journal entry is written, before its commit (under the partition's
// writer lock), and once it is committed. A child that never returns from
// one dies, when killed, at that point of the store.
var testHookNoted, testHookCommitted func()

// spareFrames holds the frames of batches that waited for their
// predecessor, for the next one to take. (A batch hands its frame's
// memory to the partition, and gets the partition's last in exchange.)
// A channel, not a sync.Pool: a pool empties at every garbage collection,
// which a busy server's (or an in-process client's) allocations make
// frequent, and a connection left a new frame grows it from nothing to its
// next batch's size, copying as it goes: a franz-go producer's pipelined
// idempotent batches found the pool empty one time in seven, and so made a
// megabyte's frame anew. It holds at most maxSpareFrames.
var spareFrames = make(chan *runnel.RecordBatch, maxSpareFrames)

// maxSpareFrames is a few requests in flight on a few connections.
const maxSpareFrames = 8

// takeFrame moves frame's records into a frame of their own, leaving
// frame empty.
func takeFrame(frame *runnel.RecordBatch) *runnel.RecordBatch {
	var rb *runnel.RecordBatch
	select {
	case rb = <-spareFrames:
	default:
		rb = new(runnel.RecordBatch)
	}
	*rb, *frame = *frame, *rb
	return rb
}

// putFrame gives back a frame from takeFrame, once sent or dropped.
func putFrame(rb *runnel.RecordBatch) {
	rb.Reset()
	select {
	case spareFrames <- rb:
	default:
	}
}

// errInvalidTimestamp refuses a batch with a record time outside the years
// 1678 to 2262 (see runnel.Record.Time), which Kafka's milliseconds hold.
var errInvalidTimestamp = errors.New("invalid timestamp")

// errTransactional refuses a transactional batch: InitProducerId hands
// out no transactional ids, so a client that sends one is confused.
var errTransactional = errors.New("transactional batch")

// refusalDetails is what a Produce answer says of a batch Kafka's
// validation refuses (code INVALID_RECORD or INVALID_TIMESTAMP, err why):
// the error's text, which says which check failed, as the message Kafka
// answers such a batch with, and for records whose times runnel cannot
// hold each record's index and why, as Kafka's record errors (KIP-467)
// name each record its timestamp checks refuse (both Produce v8+; the
// encoding leaves them out of earlier versions). Java's producer shows
// its caller both. Kafka answers other refusals without either, as
// runnel does (nil).
func refusalDetails(code int16, err error) (*string, []kmsg.ProduceResponseTopicPartitionErrorRecord) {
	if err == nil || code != kerr.InvalidRecord.Code && code != kerr.InvalidTimestamp.Code {
		return nil, nil
	}
	msg := err.Error()
	var records []kmsg.ProduceResponseTopicPartitionErrorRecord
	if late, ok := errors.AsType[*badTimestamps](err); ok {
		for _, r := range late.records {
			er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
			why := r.String()
			er.RelativeOffset, er.ErrorMessage = r.index, &why
			records = append(records, er)
		}
	}
	return &msg, records
}

// produceErrorCode maps a failure to store a batch to Kafka's code.
func produceErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, errInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, errInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, errTransactional):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case errors.Is(err, errTooLarge), errors.Is(err, runnel.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return topicErrorCode(err)
}

// failedProduce answers every partition of req with code.
func failedProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp, _ := failedPartitions(req, code)
	return resp.(*kmsg.ProduceResponse)
}
