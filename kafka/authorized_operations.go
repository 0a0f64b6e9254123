package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// Authorized operations (KIP-430): Metadata tells a client that asks what
// it may do with each topic (v8+) and with the cluster (v8-10), as
// DescribeCluster does with the cluster and DescribeGroups (v3+) with each
// group. runnel has no ACLs, so a client that may connect (and has
// authenticated, where SASL is on) may do everything: each is answered as
// by a Kafka broker without an authorizer, with every operation Kafka
// defines on that kind of resource. One not asked for stays at kmsg's
// default, Kafka's "omitted" (math.MinInt32).

var (
	topicOperations = operationBits(kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs)
	clusterOperations = operationBits(kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe)
	// Brokers with group configs (KIP-848's, Kafka 4) add
	// DESCRIBE_CONFIGS and ALTER_CONFIGS, which runnel does not have: a
	// group's are the three Kafka gave before.
	groupOperations = operationBits(kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete)
)

// operationBits is ops as the bit field the responses carry: bit n for
// operation code n.
func operationBits(ops ...kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << op
	}
	return bits
}
