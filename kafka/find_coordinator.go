package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-5. The one broker coordinates every group; there is
// no transaction coordinator, and a transactional id is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as InitProducerId refuses it:
// clients fail a transactional producer at once on it, where a retriable
// COORDINATOR_NOT_AVAILABLE had them look for a coordinator until their
// retries ran out (librdkafka's init_transactions timed out, KafkaJS
// retried for minutes).

func init() { supports(kmsg.FindCoordinator, 0, 5) }

// noTransactions is the message of a refused transactional id.
const noTransactions = "runnel does not offer transactions"

func (c *conn) findCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := c.brokerAddr()
	var code int16
	var msg *string
	if req.CoordinatorType != 0 { // 0: group; 1: transaction
		code, msg = kerr.TransactionalIDAuthorizationFailed.Code, kmsg.StringPtr(noTransactions)
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = code, msg, 0, host, port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.ErrorCode, rc.ErrorMessage, rc.NodeID, rc.Host, rc.Port = key, code, msg, 0, host, port
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp
}
