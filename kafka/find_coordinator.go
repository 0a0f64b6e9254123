package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-5. The one broker coordinates every group; there is
// no transaction coordinator.

func init() { supports(kmsg.FindCoordinator, 0, 5) }

func (c *conn) findCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := c.brokerAddr()
	var code int16
	if req.CoordinatorType != 0 { // 0: group; 1: transaction
		code = kerr.CoordinatorNotAvailable.Code
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = code, 0, host, port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.ErrorCode, rc.NodeID, rc.Host, rc.Port = key, code, 0, host, port
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp
}
