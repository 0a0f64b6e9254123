package kafka

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4, for topics (configs.go), the broker (the
// server's options that Kafka tools look for), with each config's type,
// synonyms and documentation when asked, as Kafka's broker gives them,
// and the broker's loggers (broker_loggers.go). The broker resource named
// "" is the cluster-wide dynamic defaults, not broker 0: none here, as in
// Kafka when none were set. Another broker id, or another resource type,
// is refused with INVALID_REQUEST, as Kafka's broker refuses them.

func init() { supports(kmsg.DescribeConfigs, 0, 4) }

func (c *conn) describeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		invalid := func(msg string) {
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, &msg
		}
		var configs []topicConfig
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			cfg, err := c.s.log.TopicConfig(r.ResourceName)
			if err != nil {
				rr.ErrorCode = topicNameErrorCode(err)
				msg := err.Error()
				rr.ErrorMessage = &msg
			} else {
				configs = c.s.topicConfigs(cfg)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch {
			case r.ResourceName == "":
				// The cluster's dynamic defaults, which only
				// AlterConfigs sets, and runnel's refuses for brokers.
			case isThisBroker(r.ResourceName):
				configs = c.s.brokerConfigs()
			default:
				invalid(fmt.Sprintf("unexpected broker id %q: this is broker 0, and \"\" names the cluster's defaults", r.ResourceName))
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
			if !isThisBroker(r.ResourceName) {
				invalid(fmt.Sprintf("unexpected broker id %q: this is broker 0", r.ResourceName))
				break
			}
			for _, rc := range c.s.brokerLoggers() {
				if asked(r.ConfigNames, rc.Name) {
					rr.Configs = append(rr.Configs, rc)
				}
			}
		default:
			invalid(fmt.Sprintf("resource type %v has no configs here", r.ResourceType))
		}
		for _, tc := range configs {
			if !asked(r.ConfigNames, tc.name) {
				continue
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name, rc.Value, rc.ReadOnly = tc.name, kmsg.StringPtr(tc.value), tc.readOnly
			rc.IsDefault = !tc.isSet()
			rc.Source = kmsg.ConfigSourceDefaultConfig
			if tc.isSet() {
				rc.Source = kmsg.ConfigSourceDynamicTopicConfig
				if r.ResourceType == kmsg.ConfigResourceTypeBroker {
					rc.Source = kmsg.ConfigSourceStaticBrokerConfig
				}
			}
			rc.ConfigType = tc.typ
			if req.IncludeSynonyms {
				rc.ConfigSynonyms = synonyms(tc, rc.Source)
			}
			if req.IncludeDocumentation {
				rc.Documentation = kmsg.StringPtr(tc.doc)
			}
			rr.Configs = append(rr.Configs, rc)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// asked reports whether a DescribeConfigs resource asks for config name:
// no names, null or an empty list, asks for all, as Kafka's broker takes
// them.
func asked(names []string, name string) bool {
	return len(names) == 0 || slices.Contains(names, name)
}

// isThisBroker reports whether a broker resource's name is this server,
// broker 0, read as Kafka's broker reads it (an integer: "00" and "+0"
// name it too).
func isThisBroker(name string) bool {
	id, err := strconv.Atoi(name)
	return err == nil && id == 0
}

// synonyms lists where a config's value may come from, first the one in
// effect, as Kafka's broker does: a value set, from source, then the
// default, which tools show beside it. Kafka names the broker configs a
// topic's default comes from; a runnel topic's comes from runnel, so the
// default keeps the config's own name.
func synonyms(tc topicConfig, source kmsg.ConfigSource) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var syns []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(value string, source kmsg.ConfigSource) {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = tc.name, kmsg.StringPtr(value), source
		syns = append(syns, syn)
	}
	if tc.isSet() {
		add(tc.value, source)
	}
	add(tc.def, kmsg.ConfigSourceDefaultConfig)
	return syns
}

// brokerConfigs are the server's options under Kafka's broker config
// names, each with its default.
func (s *Server) brokerConfigs() []topicConfig {
	configs := brokerConfigsOf(s.opts)
	defaults, _ := (&Options{}).withDefaults()
	for i, d := range brokerConfigsOf(defaults) {
		configs[i].def = d.value
	}
	return configs
}

// brokerConfigsOf lists the broker configs that options o make.
func brokerConfigsOf(o Options) []topicConfig {
	return []topicConfig{
		{name: "auto.create.topics.enable", value: strconv.FormatBool(o.AutoCreateTopics), readOnly: true, typ: kmsg.ConfigTypeBoolean,
			doc: "Whether a Metadata request naming a topic there is not creates it, with num.partitions partitions (kafka.Options.AutoCreateTopics)."},
		{name: "fetch.max.bytes", value: strconv.Itoa(o.MaxFetchBytes), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The most record bytes a Fetch response holds (kafka.Options.MaxFetchBytes)."},
		{name: "message.max.bytes", value: strconv.Itoa(o.MaxMessageBytes), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The largest produced record batch the server takes, compressed (kafka.Options.MaxMessageBytes)."},
		{name: "num.partitions", value: strconv.Itoa(o.DefaultPartitions), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The partition count of auto-created topics and of CreateTopics requests that leave it to the broker (kafka.Options.DefaultPartitions)."},
		{name: "socket.request.max.bytes", value: strconv.Itoa(o.MaxRequestBytes), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The largest request the server reads (kafka.Options.MaxRequestBytes)."},
		{name: "group.min.session.timeout.ms", value: strconv.FormatInt(o.MinSessionTimeout.Milliseconds(), 10), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The shortest session timeout a group member may ask for, in milliseconds (kafka.Options.MinSessionTimeout)."},
		{name: "group.max.session.timeout.ms", value: strconv.FormatInt(o.MaxSessionTimeout.Milliseconds(), 10), readOnly: true, typ: kmsg.ConfigTypeInt,
			doc: "The longest session timeout a group member may ask for, in milliseconds (kafka.Options.MaxSessionTimeout)."},
	}
}
