package kafka

import (
	"context"
	"errors"
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
// Each partition's batch becomes one runnel frame (Producer.SendBatch):
// consecutive offsets, stored atomically. acks=-1 is acknowledged as the
// Log's Durability says (fdatasync'd in a Durable Log), acks=1 once
// committed (runnel.AckCommitted), acks=0 not at all. Batches to several
// partitions are stored concurrently.

func init() { apis[kmsg.Produce.Int16()] = versions{advertised: 0, min: 3, max: 12} }

func (c *conn) produce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.TransactionID != nil {
		// No transactions: InitProducerId hands out no transactional ids.
		return failedProduce(req, kerr.TransactionalIDAuthorizationFailed.Code)
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return failedProduce(req, kerr.InvalidRequiredAcks.Code)
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var jobs []func()
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
			switch {
			case err != nil:
				rp.ErrorCode = topicErrorCode(err)
			case p.Partition < 0 || int(p.Partition) >= h.partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(p.Records) > c.s.opts.MaxMessageBytes:
				rp.ErrorCode = kerr.MessageTooLarge.Code
			default:
				jobs = append(jobs, func() { c.s.storeBatch(ctx, h, req.Acks, p.Partition, p.Records, rp) })
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(jobs) == 1 {
		jobs[0]()
	} else {
		// Partitions are files of their own, each with its own
		// fdatasync: store them side by side.
		var wg sync.WaitGroup
		for _, job := range jobs {
			wg.Go(job)
		}
		wg.Wait()
	}
	if req.Acks == 0 {
		return nil
	}
	return resp
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

// storeBatch decodes one partition's batch, checks its sequence numbers if
// it is idempotent, and stores it, filling in rp.
func (s *Server) storeBatch(ctx context.Context, h *topicHandle, acks int16, partition int32, raw []byte, rp *kmsg.ProduceResponseTopicPartition) {
	now := time.Now()
	info, recs, err := parseBatch(raw, maxDecodedBatch, now)
	if err != nil {
		rp.ErrorCode = produceErrorCode(err)
		msg := err.Error()
		rp.ErrorMessage = &msg
		s.opts.Logger.Info("kafka: produce refused", "topic", h.name, "partition", partition, "err", err)
		return
	}
	if info.transactional {
		rp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return
	}
	var seq *seqBatch
	tp := topicPartition{h.name, partition}
	if info.producerID >= 0 {
		b, dup, code := s.seqs.begin(info.producerID, info.producerEpoch, tp, info.firstSeq, info.count)
		switch {
		case code != 0:
			rp.ErrorCode = code
			return
		case dup:
			select {
			case <-b.done:
				rp.BaseOffset, rp.ErrorCode = b.base, b.code
			case <-ctx.Done():
				rp.ErrorCode = kerr.RequestTimedOut.Code
			}
			return
		}
		seq = b
	}
	prod := h.durable
	if acks != -1 {
		prod = h.committed
	}
	base, err := prod.SendBatch(ctx, int(partition), recs)
	if err != nil && stale(err) && ctx.Err() == nil {
		// The topic was deleted, maybe created again: start over once.
		s.topics.forget(h)
		if h2, err2 := s.topics.get(h.name); err2 == nil && int(partition) < h2.partitions {
			prod = h2.durable
			if acks != -1 {
				prod = h2.committed
			}
			base, err = prod.SendBatch(ctx, int(partition), recs)
		} else if err2 != nil {
			err = err2
		}
	}
	rp.ErrorCode = produceErrorCode(err)
	if err == nil {
		rp.BaseOffset = base
		s.stats.producedRecords.Add(int64(len(recs)))
		s.stats.producedBytes.Add(int64(len(raw)))
	} else {
		s.opts.Logger.Warn("kafka: produce failed", "topic", h.name, "partition", partition, "err", err)
	}
	if seq != nil {
		s.seqs.finish(info.producerID, tp, seq, base, rp.ErrorCode)
	}
}

// produceErrorCode maps a failure to store a batch to Kafka's code.
func produceErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, errTooLarge), errors.Is(err, runnel.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return topicErrorCode(err)
}

// failedProduce answers every partition of req with code.
func failedProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
