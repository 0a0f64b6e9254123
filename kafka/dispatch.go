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
// accept with UNSUPPORTED_VERSION: per partition for Produce (the one API
// advertised below what it accepts), else in the response's top-level
// error code. A response without one cannot carry the error, and the
// connection closes.
func unsupportedVersion(req kmsg.Request) (kmsg.Response, error) {
	code := kerr.UnsupportedVersion.Code
	if pr, ok := req.(*kmsg.ProduceRequest); ok {
		return failedProduce(pr, code), nil
	}
	resp := req.ResponseKind()
	without := resp.AppendTo(nil)
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	// At some versions a response has no top-level error code to carry
	// the error (the field exists in the struct but is not encoded).
	if bytes.Equal(without, resp.AppendTo(nil)) {
		return nil, fmt.Errorf("%w: %s version %d is not supported", errCloseConn, kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	return resp, nil
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
