package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-5 (by name). runnel.Log.DeleteTopic removes the data at
// once; producers and consumers of the topic in other processes fail on
// their next use. A topic named twice in one request is refused, every
// entry of it, and not deleted, as in Kafka. It waits for another process's append or admin call on
// the topic at most the request's timeout, as Kafka bounds it; then it
// answers REQUEST_TIMED_OUT, and the topic is untouched.

func init() { supports(kmsg.DeleteTopics, 0, 5) }

func (c *conn) deleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := c.s.adminContext(req.TimeoutMillis)
	defer cancel()
	twice := namedTwice(req.TopicNames, func(name string) string { return name })
	for _, name := range req.TopicNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		if twice[name] {
			rt.ErrorCode, rt.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("topic named twice in one request")
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		id, _ := c.s.log.TopicID(name)
		if err := c.s.log.DeleteTopicContext(ctx, name); err != nil {
			rt.ErrorCode = topicErrorCode(err)
			msg := err.Error()
			rt.ErrorMessage = &msg
		} else {
			c.s.opts.Logger.Info("kafka: topic deleted", "topic", name)
			c.s.topicDeleted(name, id)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// topicDeleted drops what the server keeps of a topic it deleted: its
// handle, its producer state and its producer journals. A topic made
// again under the name starts without them, as in Kafka; the state is
// kept by the topic's ID, so this is for the memory and the files, and
// the handle's first append, not for correctness.
func (s *Server) topicDeleted(name, id string) {
	if h := s.topics.cached(name); h != nil && h.id == id {
		s.topicGone(h)
	} else {
		s.seqs.dropTopic(name, id)
	}
	s.dropJournals(name, id)
}
