package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-5 (by name). runnel.Log.DeleteTopic removes the data at
// once; producers and consumers of the topic in other processes fail on
// their next use. It waits for another process's append or admin call on
// the topic at most the request's timeout, as Kafka bounds it; then it
// answers REQUEST_TIMED_OUT, and the topic is untouched.

func init() { supports(kmsg.DeleteTopics, 0, 5) }

func (c *conn) deleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := c.s.adminContext(req.TimeoutMillis)
	defer cancel()
	for _, name := range req.TopicNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		if err := c.s.log.DeleteTopicContext(ctx, name); err != nil {
			rt.ErrorCode = topicErrorCode(err)
			msg := err.Error()
			rt.ErrorMessage = &msg
		} else {
			c.s.opts.Logger.Info("kafka: topic deleted", "topic", name)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// adminWait bounds how long an admin request waits for other processes'
// locks when it names no timeout of its own (AlterConfigs).
const adminWait = 30 * time.Second

// adminContext is the context an admin request waits for other processes
// under: until the request's timeout (adminWait if it has none) or the
// server's shutdown.
func (s *Server) adminContext(timeoutMillis int32) (context.Context, context.CancelFunc) {
	wait := adminWait
	if timeoutMillis > 0 {
		wait = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(s.ctx, wait)
}
