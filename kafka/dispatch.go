package kafka

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// versions is what the server supports of one API: ApiVersions advertises
// advertised..max, and requests below min get UNSUPPORTED_VERSION.
// advertised is below min only for Produce (see produce.go).
type versions struct{ advertised, min, max int16 }

// apis holds every API the server speaks, registered by the file that
// handles it.
var apis = map[int16]versions{}

// supports registers API key with versions min..max.
func supports(key kmsg.Key, min, max int16) { apis[key.Int16()] = versions{min, min, max} }

var kerrUnsupportedVersion = kerr.UnsupportedVersion.Code

// dispatch is the one switch from a decoded request to its handler. A nil
// response means none is sent; an error closes the connection.
func (c *conn) dispatch(req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		return c.apiVersions(r, 0), nil
	case *kmsg.SASLHandshakeRequest:
		return c.saslHandshake(r), nil
	case *kmsg.SASLAuthenticateRequest:
		return c.saslAuthenticate(r)
	case *kmsg.MetadataRequest:
		return c.metadata(r), nil
	case *kmsg.FetchRequest:
		return c.fetchRecords(r), nil
	case *kmsg.ListOffsetsRequest:
		return c.listOffsets(r), nil
	case *kmsg.OffsetForLeaderEpochRequest:
		return c.offsetForLeaderEpoch(r), nil
	case *kmsg.InitProducerIDRequest:
		return c.initProducerID(r), nil
	case *kmsg.FindCoordinatorRequest:
		return c.findCoordinator(r), nil
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(r), nil
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(r), nil
	case *kmsg.HeartbeatRequest:
		return c.heartbeat(r), nil
	case *kmsg.LeaveGroupRequest:
		return c.leaveGroup(r), nil
	case *kmsg.OffsetCommitRequest:
		return c.offsetCommit(r), nil
	case *kmsg.OffsetFetchRequest:
		return c.offsetFetch(r), nil
	case *kmsg.ListGroupsRequest:
		return c.listGroups(r), nil
	case *kmsg.DescribeGroupsRequest:
		return c.describeGroups(r), nil
	case *kmsg.DeleteGroupsRequest:
		return c.deleteGroups(r), nil
	case *kmsg.OffsetDeleteRequest:
		return c.offsetDelete(r), nil
	case *kmsg.CreateTopicsRequest:
		return c.createTopics(r), nil
	case *kmsg.DeleteTopicsRequest:
		return c.deleteTopics(r), nil
	case *kmsg.DeleteRecordsRequest:
		return c.deleteRecords(r), nil
	case *kmsg.CreatePartitionsRequest:
		return c.createPartitions(r), nil
	case *kmsg.DescribeConfigsRequest:
		return c.describeConfigs(r), nil
	case *kmsg.AlterConfigsRequest:
		return c.alterConfigs(r), nil
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.incrementalAlterConfigs(r), nil
	case *kmsg.DescribeLogDirsRequest:
		return c.describeLogDirs(r), nil
	case *kmsg.DescribeClusterRequest:
		return c.describeCluster(r), nil
	}
	return nil, fmt.Errorf("%w: no handler for %s", errCloseConn, kmsg.NameForKey(req.Key()))
}

// unsupportedVersion answers a request whose version the server does not
// accept with UNSUPPORTED_VERSION: in the response's top-level error code,
// or, at the versions whose responses have none (Produce v0-2, the one API
// advertised below what it accepts, and old Fetch, ListOffsets,
// OffsetCommit and OffsetFetch, which a client told to speak an old
// Kafka's protocol sends without asking), in each partition's. A client
// learns from either why it failed; a closed connection only makes it
// try again, for ever. A response without either closes the connection.
func unsupportedVersion(req kmsg.Request) (kmsg.Response, error) {
	code := kerr.UnsupportedVersion.Code
	resp := req.ResponseKind()
	without := resp.AppendTo(nil)
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	// At some versions a response has no top-level error code to carry
	// the error (the field exists in the struct but is not encoded).
	if !bytes.Equal(without, resp.AppendTo(nil)) {
		return resp, nil
	}
	if resp, ok := failedPartitions(req, code); ok {
		return resp, nil
	}
	return nil, fmt.Errorf("%w: %s version %d is not supported", errCloseConn, kmsg.NameForKey(req.Key()), req.GetVersion())
}

// failedPartitions is req's response with every partition req names
// answered with code, for the requests of Kafka's usual shape: Topics,
// each with a Topic name and Partitions, each a struct with a Partition
// or just its number, answered by Topics of the same names whose
// Partitions have a Partition and an ErrorCode. ok is false for any other
// shape.
func failedPartitions(req kmsg.Request, code int16) (resp kmsg.Response, ok bool) {
	resp = req.ResponseKind()
	reqTopics := reflect.ValueOf(req).Elem().FieldByName("Topics")
	respTopics := reflect.ValueOf(resp).Elem().FieldByName("Topics")
	if !partitionsShaped(reqTopics, true) || !partitionsShaped(respTopics, false) {
		return nil, false
	}
	for i := range reqTopics.Len() {
		t := reqTopics.Index(i)
		rt := newDefault(respTopics.Type().Elem())
		rt.FieldByName("Topic").SetString(t.FieldByName("Topic").String())
		parts, reqParts := rt.FieldByName("Partitions"), t.FieldByName("Partitions")
		for j := range reqParts.Len() {
			p := reqParts.Index(j)
			if p.Kind() == reflect.Struct {
				p = p.FieldByName("Partition")
			}
			rp := newDefault(parts.Type().Elem())
			rp.FieldByName("Partition").SetInt(p.Int())
			rp.FieldByName("ErrorCode").SetInt(int64(code))
			// A Fetch partition's records empty, not null, as fetch.go
			// answers them: librdkafka refuses a null set.
			if rb := rp.FieldByName("RecordBatches"); rb.Kind() == reflect.Slice {
				rb.SetBytes([]byte{})
			}
			parts.Set(reflect.Append(parts, rp))
		}
		respTopics.Set(reflect.Append(respTopics, rt))
	}
	return resp, true
}

// partitionsShaped reports whether topics is a slice of topics of
// failedPartitions' shape: a request's (a partition a struct with a
// Partition, or an int32) or a response's (a struct with a Partition and
// an ErrorCode).
func partitionsShaped(topics reflect.Value, request bool) bool {
	if topics.Kind() != reflect.Slice || topics.Type().Elem().Kind() != reflect.Struct {
		return false
	}
	t := topics.Type().Elem()
	name, nameOK := t.FieldByName("Topic")
	parts, partsOK := t.FieldByName("Partitions")
	if !nameOK || name.Type.Kind() != reflect.String || !partsOK || parts.Type.Kind() != reflect.Slice {
		return false
	}
	p := parts.Type.Elem()
	if request && p.Kind() == reflect.Int32 {
		return true
	}
	if p.Kind() != reflect.Struct {
		return false
	}
	partition, ok := p.FieldByName("Partition")
	if !ok || partition.Type.Kind() != reflect.Int32 {
		return false
	}
	errCode, ok := p.FieldByName("ErrorCode")
	return request || ok && errCode.Type.Kind() == reflect.Int16
}

// newDefault makes a value of kmsg struct type t with its defaults set,
// as kmsg's NewX functions do.
func newDefault(t reflect.Type) reflect.Value {
	v := reflect.New(t)
	if d, ok := v.Interface().(interface{ Default() }); ok {
		d.Default()
	}
	return v.Elem()
}

// firstErrorCode finds the first non-zero ErrorCode field in resp, at any
// depth, for stats: requests fail per partition as often as as a whole.
func firstErrorCode(resp kmsg.Response) int16 {
	return errorCodeIn(reflect.ValueOf(resp).Elem())
}

func errorCodeIn(v reflect.Value) int16 {
	switch v.Kind() {
	case reflect.Struct:
		if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 && f.Int() != 0 {
			return int16(f.Int())
		}
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.Slice || f.Kind() == reflect.Struct {
				if code := errorCodeIn(f); code != 0 {
					return code
				}
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return 0
		}
		for i := range v.Len() {
			if code := errorCodeIn(v.Index(i)); code != 0 {
				return code
			}
		}
	}
	return 0
}

// namedTwice returns the keys (topics, resources) that a request's
// entries rs name more than once: Kafka refuses every entry of such a key
// with INVALID_REQUEST and acts on none of them.
func namedTwice[R any, K comparable](rs []R, key func(R) K) map[K]bool {
	named := map[K]int{}
	for _, r := range rs {
		named[key(r)]++
	}
	twice := map[K]bool{}
	for k, n := range named {
		twice[k] = n > 1
	}
	return twice
}
