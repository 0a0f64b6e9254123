package kafka

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestCount is how many requests of one API the server answered with one
// error code, an entry of Stats.RequestsByAPI. A counter.
type RequestCount struct {
	APIKey    int16
	API       string // the API's name, as Kafka spells it: "Produce", "Fetch", ...
	ErrorCode int16  // 0 for success
	Error     string // the code's name: "NONE", "UNKNOWN_TOPIC_OR_PARTITION", ...
	Count     int64
}

// requestCounts counts answered requests by API key and error code. A
// success is an atomic add on a fixed array (no lock, no allocation on the
// request path); an error takes a mutex and a map, since errors are rare
// and their codes many.
type requestCounts struct {
	ok [kmsg.MaxKey + 1]atomic.Int64

	mu     sync.Mutex
	failed map[apiError]int64
}

type apiError struct{ key, code int16 }

// note counts one request of API key answered with code.
func (r *requestCounts) note(key, code int16) {
	if code == 0 && key >= 0 && int(key) < len(r.ok) {
		r.ok[key].Add(1)
		return
	}
	r.mu.Lock()
	if r.failed == nil {
		r.failed = map[apiError]int64{}
	}
	r.failed[apiError{key, code}]++
	r.mu.Unlock()
}

// load lists the non-zero counts, by API key, then error code.
func (r *requestCounts) load() []RequestCount {
	var out []RequestCount
	for key := range r.ok {
		if n := r.ok[key].Load(); n > 0 {
			out = append(out, requestCount(int16(key), 0, n))
		}
	}
	r.mu.Lock()
	for k, n := range r.failed {
		out = append(out, requestCount(k.key, k.code, n))
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b RequestCount) int {
		return cmp.Or(cmp.Compare(a.APIKey, b.APIKey), cmp.Compare(a.ErrorCode, b.ErrorCode))
	})
	return out
}

func requestCount(key, code int16, n int64) RequestCount {
	name := "NONE"
	if code != 0 {
		name = "CODE_" + strconv.Itoa(int(code)) // one kerr does not know
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e.Code == code {
			name = e.Message
		}
	}
	return RequestCount{APIKey: key, API: kmsg.NameForKey(key), ErrorCode: code, Error: name, Count: n}
}
