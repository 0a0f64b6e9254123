package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-1. One broker, node 0, which is also the controller.
// A v1 request for another endpoint type than brokers is refused as a
// Kafka broker refuses it: the controllers (what Kafka's admin client
// asks for when given bootstrap.controllers) with MISMATCHED_ENDPOINT_TYPE,
// so that it learns it reached a broker rather than taking this one for a
// controller; any other type with UNSUPPORTED_ENDPOINT_TYPE.

func init() { supports(kmsg.DescribeCluster, 0, 1) }

// Endpoint types of DescribeCluster v1.
const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func (c *conn) describeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != endpointBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		if req.EndpointType == endpointControllers {
			resp.ErrorCode = kerr.MismatchedEndpointType.Code
			resp.ErrorMessage = kmsg.StringPtr("the request was sent to a broker, not a controller: runnel has no controller endpoint")
		}
		return resp
	}
	resp.ClusterID, resp.ControllerID = c.s.clusterID, 0
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID = 0
	b.Host, b.Port = c.brokerAddr()
	resp.Brokers = append(resp.Brokers, b)
	return resp
}
