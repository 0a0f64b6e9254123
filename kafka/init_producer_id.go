package kafka

import (
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
	id, err := c.s.pids.allocate()
	if err != nil {
		c.s.opts.Logger.Error("kafka: allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
