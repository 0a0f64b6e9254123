package kafka

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAuthorizedOperations: a client that asks Metadata, DescribeCluster
// or DescribeGroups what it may do (KIP-430; Java's admin
// includeAuthorizedOperations, kadm's WithAuthorizedOps and
// DescribeGroups) is told what a Kafka broker without an authorizer tells
// it, every operation of the resource's kind, instead of nothing; one
// that does not ask gets Kafka's "omitted".
func TestAuthorizedOperations(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("ops", 1)
	ctx := context.Background()
	m, err := kadm.NewClient(ts.client()).Metadata(kadm.WithAuthorizedOps(ctx), "ops")
	if err != nil {
		t.Fatal(err)
	}
	wantTopic := []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	if got := m.Topics["ops"].AuthorizedOperations; !slices.Equal(got, wantTopic) {
		t.Errorf("topic operations %v, want %v", got, wantTopic)
	}

	wantCluster := []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
		kmsg.ACLOperationIdempotentWrite}
	wantGroup := []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe}
	rc := ts.raw()
	for _, ask := range []bool{false, true} {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 10 // the last with the cluster's operations
		md.IncludeClusterAuthorizedOperations, md.IncludeTopicAuthorizedOperations = ask, ask
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ops")}}
		mr := rc.request(md).(*kmsg.MetadataResponse)
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.IncludeClusterAuthorizedOperations = ask
		dr := rc.request(dc).(*kmsg.DescribeClusterResponse)
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Version, dg.Groups, dg.IncludeAuthorizedOperations = 5, []string{"opsgroup"}, ask
		gr := rc.request(dg).(*kmsg.DescribeGroupsResponse)
		got := map[string]int32{"Metadata cluster": mr.AuthorizedOperations, "Metadata topic": mr.Topics[0].AuthorizedOperations,
			"DescribeCluster": dr.ClusterAuthorizedOperations, "DescribeGroups": gr.Groups[0].AuthorizedOperations}
		for what, bits := range got {
			if !ask {
				if bits != math.MinInt32 {
					t.Errorf("%s's operations not asked for: %d, want omitted", what, bits)
				}
				continue
			}
			want := map[string][]kmsg.ACLOperation{"Metadata topic": wantTopic, "DescribeGroups": wantGroup}[what]
			if want == nil {
				want = wantCluster
			}
			if ops := kadm.DecodeACLOperations(bits); !slices.Equal(ops, want) {
				t.Errorf("%s's operations %v, want %v", what, ops, want)
			}
		}
	}
}
