package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4. Clients ask first, then use the highest version both
// sides know of each API. A request newer than v4 is answered as v0 with
// UNSUPPORTED_VERSION and the list (conn.handle), so the client retries.

func init() { supports(kmsg.ApiVersions, 0, 4) }

// apiVersions answers with every supported API; req is nil when the
// request's version was unknown and code says so.
func (c *conn) apiVersions(req *kmsg.ApiVersionsRequest, code int16) kmsg.Response {
	var resp *kmsg.ApiVersionsResponse
	if req != nil {
		resp = req.ResponseKind().(*kmsg.ApiVersionsResponse)
	} else {
		resp = kmsg.NewPtrApiVersionsResponse()
	}
	resp.ErrorCode = code
	keys := make([]int16, 0, len(apis))
	for k := range apis {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := apis[k]
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, v.advertised, v.max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}
