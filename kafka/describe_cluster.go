package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster: v0-1. One broker, node 0, which is also the controller.

func init() { supports(kmsg.DescribeCluster, 0, 1) }

func (c *conn) describeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID, resp.ControllerID = c.s.clusterID, 0
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID = 0
	b.Host, b.Port = c.brokerAddr()
	resp.Brokers = append(resp.Brokers, b)
	return resp
}
