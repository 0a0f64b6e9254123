package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-4, for idempotent producers (see idempotence.go).
// Transactions are not offered: a transactional id is refused. A producer
// that sends its current id and epoch (v3+, after a batch it gave up on)
// gets the epoch bumped, which starts its sequence numbers over; one that
// sends an id or epoch this server does not know (it restarted, or the
// producer was idle past the expiry) gets a new id, as Kafka gives every
// producer without a transactional id, rather than an error that a client
// takes as fatal.

func init() { supports(kmsg.InitProducerID, 0, 4) }

func (c *conn) initProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	if req.ProducerID >= 0 && req.Version >= 3 {
		// Epochs exhausted, or another's: a new id starts over.
		if epoch, ok := c.s.seqs.epoch(req.ProducerID); ok && epoch == req.ProducerEpoch && epoch < 1<<15-1 {
			c.s.seqs.bumpEpoch(req.ProducerID, epoch+1)
			resp.ProducerID, resp.ProducerEpoch = req.ProducerID, epoch+1
			return resp
		}
	}
	id, err := c.s.pids.allocate()
	if err != nil {
		c.s.opts.Logger.Error("kafka: allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	c.s.seqs.register(id)
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
