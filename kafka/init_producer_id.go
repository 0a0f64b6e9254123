package kafka

import (
	"context"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-4, for idempotent producers (see idempotence.go).
// Transactions are not offered: a transactional id is refused. Every
// request gets a new producer id at epoch 0, as Kafka gives every producer
// without a transactional id, also one that sends its current id and
// epoch (v3+, after a batch it gave up on): its sequence numbers start
// over under the new id, while a batch it sends again under the old id
// and epoch is still answered as a retry on the partitions the old id
// wrote.

func init() { supports(kmsg.InitProducerID, 0, 4) }

func (c *conn) initProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, pidReserveWait)
	id, err := c.s.pids.allocate(ctx)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		// Another server on the directory keeps the producer ids' lock
		// (stopped, hung) or this one shuts down: answered as Kafka's
		// broker answers while it waits for a block of ids, which every
		// client retries (REQUEST_TIMED_OUT some take for fatal).
		c.s.opts.Logger.Warn("kafka: no producer id: the producer ids file is locked by another server on the directory (stopped or hung?); the client will retry",
			"wait", pidReserveWait, "err", err)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	case err != nil:
		c.s.opts.Logger.Error("kafka: allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
