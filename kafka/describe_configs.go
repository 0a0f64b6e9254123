package kafka

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4, for topics (configs.go) and the broker (the
// server's options that Kafka tools look for).

func init() { supports(kmsg.DescribeConfigs, 0, 4) }

func (c *conn) describeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		var configs []topicConfig
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			cfg, err := c.s.log.TopicConfig(r.ResourceName)
			if err != nil {
				rr.ErrorCode = topicErrorCode(err)
				msg := err.Error()
				rr.ErrorMessage = &msg
			} else {
				configs = c.s.topicConfigs(cfg)
			}
		case kmsg.ConfigResourceTypeBroker:
			if r.ResourceName != "" && r.ResourceName != "0" {
				rr.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			configs = c.s.brokerConfigs()
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
		}
		for _, tc := range configs {
			if r.ConfigNames != nil && !slices.Contains(r.ConfigNames, tc.name) {
				continue
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name, rc.Value, rc.ReadOnly = tc.name, kmsg.StringPtr(tc.value), tc.readOnly
			rc.IsDefault = !tc.isSet
			rc.Source = kmsg.ConfigSourceDefaultConfig
			if tc.isSet {
				rc.Source = kmsg.ConfigSourceDynamicTopicConfig
				if r.ResourceType == kmsg.ConfigResourceTypeBroker {
					rc.Source = kmsg.ConfigSourceStaticBrokerConfig
				}
			}
			rc.ConfigType = tc.typ
			rr.Configs = append(rr.Configs, rc)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// brokerConfigs are the server's options under Kafka's broker config
// names.
func (s *Server) brokerConfigs() []topicConfig {
	return []topicConfig{
		{name: "auto.create.topics.enable", value: strconv.FormatBool(s.opts.AutoCreateTopics), readOnly: true, isSet: true, typ: kmsg.ConfigTypeBoolean},
		{name: "fetch.max.bytes", value: strconv.Itoa(s.opts.MaxFetchBytes), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
		{name: "message.max.bytes", value: strconv.Itoa(s.opts.MaxMessageBytes), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
		{name: "num.partitions", value: strconv.Itoa(s.opts.DefaultPartitions), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
		{name: "socket.request.max.bytes", value: strconv.Itoa(s.opts.MaxRequestBytes), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
		{name: "group.min.session.timeout.ms", value: strconv.FormatInt(s.opts.MinSessionTimeout.Milliseconds(), 10), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
		{name: "group.max.session.timeout.ms", value: strconv.FormatInt(s.opts.MaxSessionTimeout.Milliseconds(), 10), readOnly: true, isSet: true, typ: kmsg.ConfigTypeInt},
	}
}
