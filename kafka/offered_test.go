package kafka

import (
	"encoding/binary"
	"hash/crc32"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNotOffered: what the README says the server does not offer is
// neither advertised nor done. The transaction APIs are not in
// ApiVersions; Fetch stops at v12, the last that names topics (v13 names
// them by id); a transactional id and a transactional batch are refused,
// and the batch is not stored.
func TestNotOffered(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("tx", 1)
	rc := ts.raw()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version, av.ClientSoftwareName, av.ClientSoftwareVersion = 3, "t", "1"
	keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range rc.request(av).(*kmsg.ApiVersionsResponse).ApiKeys {
		keys[k.ApiKey] = k
	}
	for _, key := range []kmsg.Key{kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.EndTxn, kmsg.TxnOffsetCommit, kmsg.CreateACLs} {
		if _, ok := keys[key.Int16()]; ok {
			t.Errorf("ApiVersions advertises %s", key.Name())
		}
	}
	if k, ok := keys[kmsg.Fetch.Int16()]; !ok || k.MaxVersion != 12 {
		t.Errorf("Fetch advertised as %+v, want up to v12 (topic names)", k)
	}

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version, ip.TransactionalID, ip.TransactionTimeoutMillis = 4, kmsg.StringPtr("txn"), 60000
	if code := rc.request(ip).(*kmsg.InitProducerIDResponse).ErrorCode; code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("InitProducerId with a transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
	var b batchBuilder
	b.add(&runnel.Record{Value: []byte("in a transaction"), Time: time.UnixMilli(1000)})
	batch := b.finish()
	attrs := binary.BigEndian.Uint16(batch[batchAttrOff:])
	binary.BigEndian.PutUint16(batch[batchAttrOff:], attrs|attrTransactional)
	binary.BigEndian.PutUint32(batch[batchCRCOff:], crc32.Checksum(batch[batchAttrOff:], crc32c))
	if code, _ := produceRaw(t, rc, "tx", batch); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("a transactional batch: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
	if _, end, err := ts.log.PartitionOffsets("tx", 0); err != nil || end != 0 {
		t.Errorf("the partition after a refused transactional batch ends at %d (%v), want 0", end, err)
	}
}

// TestDescribeCluster: the one broker, node 0, is the controller, and the
// cluster id is the directory's.
func TestDescribeCluster(t *testing.T) {
	ts := startServer(t, nil)
	req := kmsg.NewPtrDescribeClusterRequest()
	resp := ts.raw().request(req).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || resp.ClusterID != ts.srv.ClusterID() || resp.ControllerID != 0 || len(resp.Brokers) != 1 {
		t.Fatalf("DescribeCluster: %+v; want cluster %s, controller 0, one broker", resp, ts.srv.ClusterID())
	}
	if b := resp.Brokers[0]; b.NodeID != 0 || net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) != ts.addr {
		t.Errorf("broker %d at %s:%d, want 0 at %s", b.NodeID, b.Host, b.Port, ts.addr)
	}
	// A client after the controllers (Kafka's admin with
	// bootstrap.controllers) is told it reached a broker, as Kafka's
	// brokers tell it, not handed the broker as a controller.
	req.Version, req.EndpointType = 1, 2
	resp = ts.raw().request(req).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != kerr.MismatchedEndpointType.Code || len(resp.Brokers) != 0 {
		t.Errorf("DescribeCluster of the controllers: %v, %d brokers; want MISMATCHED_ENDPOINT_TYPE and none", kerr.ErrorForCode(resp.ErrorCode), len(resp.Brokers))
	}
	req.EndpointType = 3
	if resp = ts.raw().request(req).(*kmsg.DescribeClusterResponse); resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Errorf("DescribeCluster of endpoint type 3: %v, want UNSUPPORTED_ENDPOINT_TYPE", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestServerAccounting: Stats counts connections, records and batch bytes
// both ways, and OnRequest describes each request: API, version, error
// code, time taken and sizes.
func TestServerAccounting(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("acc", 1)
	var mu sync.Mutex
	var events []RequestEvent
	ts.srv.opts.OnRequest = func(e RequestEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	rc := ts.raw()
	var b batchBuilder
	for _, v := range []string{"a", "bb", "ccc"} {
		b.add(&runnel.Record{Value: []byte(v), Time: time.UnixMilli(1000)})
	}
	batch := b.finish()
	if code, _ := produceRaw(t, rc, "acc", slices.Clone(batch)); code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	got := rawFetch(t, rc, "acc", map[int32]int64{0: 0}, 1<<20, 1, 1000)
	st := ts.srv.Stats()
	if st.ConnectionsOpen != 1 || st.ProducedRecords != 3 || st.ProducedBytes != int64(len(batch)) || st.FetchedRecords != int64(len(got[0])) || st.FetchedRecords != 3 || st.FetchedBytes < int64(len(batch)) {
		t.Errorf("stats %+v after a batch of 3 records, %d bytes, produced and fetched on one connection", st, len(batch))
	}
	waitFor(t, "an event for each request", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 {
		t.Fatalf("OnRequest events %+v, want the produce and the fetch", events)
	}
	produce, fetch := events[0], events[1]
	if produce.API != "Produce" || produce.Version != 9 || produce.ErrorCode != 0 || produce.Duration <= 0 || produce.BytesIn <= len(batch) || produce.BytesOut <= 0 {
		t.Errorf("produce event %+v", produce)
	}
	if fetch.API != "Fetch" || fetch.Version != 12 || fetch.ErrorCode != 0 || fetch.BytesOut <= len(batch) || fetch.BytesIn <= 0 {
		t.Errorf("fetch event %+v", fetch)
	}
	rc.nc.Close()
	waitFor(t, "the connection to be counted closed", func() bool { return ts.srv.Stats().ConnectionsOpen == 0 })
}

// TestOptionDefaults: the bounds the README states are the defaults.
func TestOptionDefaults(t *testing.T) {
	var o *Options
	got, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"DefaultPartitions", got.DefaultPartitions, 1},
		{"MaxPartitions", got.MaxPartitions, 1024},
		{"MaxRequestBytes", got.MaxRequestBytes, 100 << 20},
		{"MaxMessageBytes", got.MaxMessageBytes, 1048588},
		{"MaxFetchBytes", got.MaxFetchBytes, 55 << 20},
		{"IdleTimeout", got.IdleTimeout, 10 * time.Minute},
		{"MinSessionTimeout", got.MinSessionTimeout, 6 * time.Second},
		{"MaxSessionTimeout", got.MaxSessionTimeout, 30 * time.Minute},
	} {
		if c.got != c.want {
			t.Errorf("%s defaults to %v, want %v", c.name, c.got, c.want)
		}
	}
}
