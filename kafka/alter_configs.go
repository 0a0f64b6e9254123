package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2; IncrementalAlterConfigs: v0-1. A topic's configs
// that runnel has (configs.go: retention.ms, retention.bytes,
// segment.bytes) are written with runnel's AlterTopic, so every process on
// the directory follows them, as after "runnel topics alter"; the fixed
// ones (fixed_configs.go) are taken at runnel's value and change nothing,
// as in CreateTopics. AlterConfigs replaces a topic's whole set: a config
// it does not name goes back to its default, as in Kafka.
// IncrementalAlterConfigs sets (SET) or resets (DELETE) the configs it
// names, and adds items to (APPEND) or removes them from (SUBTRACT) a list
// config, cleanup.policy, whose value is runnel's (delete): the list that
// results is then set, so APPEND delete changes nothing and APPEND compact
// is refused as SET compact is; on a config that is not a list they are
// INVALID_REQUEST, as in Kafka. Broker configs are runnel serve's flags
// and cannot be altered. A resource named twice in one request is
// refused, as Kafka refuses it.

func init() {
	supports(kmsg.AlterConfigs, 0, 2)
	supports(kmsg.IncrementalAlterConfigs, 0, 1)
}

// configChange sets a config to value, or resets it to its default (nil).
type configChange struct {
	name  string
	value *string
}

func (c *conn) alterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	var alterable []configChange // every config a topic may set, reset
	for _, tc := range c.s.topicConfigs(runnel.TopicConfig{}) {
		if !tc.readOnly {
			alterable = append(alterable, configChange{name: tc.name})
		}
	}
	twice := namedTwice(req.Resources, func(r kmsg.AlterConfigsRequestResource) resourceKey {
		return resourceKey{r.ResourceType, r.ResourceName}
	})
	for _, r := range req.Resources {
		changes := slices.Clone(alterable)
		for _, kv := range r.Configs {
			changes = append(changes, configChange{kv.Name, kv.Value})
		}
		code, msg := c.s.alterTopicConfigs(r.ResourceType, r.ResourceName, changes, req.ValidateOnly, twice)
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = r.ResourceType, r.ResourceName, code, msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

func (c *conn) incrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	twice := namedTwice(req.Resources, func(r kmsg.IncrementalAlterConfigsRequestResource) resourceKey {
		return resourceKey{r.ResourceType, r.ResourceName}
	})
	for _, r := range req.Resources {
		var changes []configChange
		var code int16
		var msg *string
		for _, kv := range r.Configs {
			switch {
			case slices.ContainsFunc(changes, func(ch configChange) bool { return ch.name == kv.Name }):
				code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("config %s named twice", kv.Name))
			case kv.Op == kmsg.IncrementalAlterConfigOpSet:
				changes = append(changes, configChange{kv.Name, kv.Value})
			case kv.Op == kmsg.IncrementalAlterConfigOpDelete:
				changes = append(changes, configChange{name: kv.Name})
			case kv.Op == kmsg.IncrementalAlterConfigOpAppend || kv.Op == kmsg.IncrementalAlterConfigOpSubtract:
				var ch configChange
				if ch, code, msg = c.s.listChange(kv); code == 0 {
					changes = append(changes, ch)
				}
			default:
				code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("%s: unknown operation %d", kv.Name, kv.Op))
			}
		}
		if code == 0 {
			code, msg = c.s.alterTopicConfigs(r.ResourceType, r.ResourceName, changes, req.ValidateOnly, twice)
		}
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = r.ResourceType, r.ResourceName, code, msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// listChange is what an APPEND or SUBTRACT of kv asks for, as Kafka
// reads it: the config's value with kv's comma-separated items added
// (those not in it already) or removed, as a SET. A config runnel does not
// have is left for applyTopicConfig to refuse, as its SET is.
func (s *Server) listChange(kv kmsg.IncrementalAlterConfigsRequestResourceConfig) (configChange, int16, *string) {
	configs := s.topicConfigs(runnel.TopicConfig{})
	i := slices.IndexFunc(configs, func(tc topicConfig) bool { return tc.name == kv.Name })
	switch {
	case i < 0:
		return configChange{kv.Name, kv.Value}, 0, nil
	case configs[i].typ != kmsg.ConfigTypeList:
		return configChange{}, kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("%s of %s: it is not a list config, so only SET and DELETE", kv.Op, kv.Name))
	case kv.Value == nil:
		return configChange{}, kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("%s of %s without a value", kv.Op, kv.Name))
	}
	// The topic's value is runnel's: the one list config, cleanup.policy,
	// is a fixed one, the same for every topic.
	items := listItems(configs[i].value)
	for _, item := range listItems(*kv.Value) {
		if kv.Op == kmsg.IncrementalAlterConfigOpSubtract {
			items = slices.DeleteFunc(items, func(have string) bool { return have == item })
		} else if !slices.Contains(items, item) {
			items = append(items, item)
		}
	}
	return configChange{kv.Name, kmsg.StringPtr(strings.Join(items, ","))}, 0, nil
}

// listItems splits a list config's value at its commas.
func listItems(v string) []string {
	var items []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// alterTopicConfigs applies changes to one resource's configs (or only
// checks them, if validateOnly), and returns the error code and message
// for it.
func (s *Server) alterTopicConfigs(typ kmsg.ConfigResourceType, name string, changes []configChange, validateOnly bool, twice map[resourceKey]bool) (int16, *string) {
	fail := func(code int16, msg string) (int16, *string) { return code, &msg }
	switch {
	case twice[resourceKey{typ, name}]:
		return fail(kerr.InvalidRequest.Code, "resource named twice in one request")
	case typ == kmsg.ConfigResourceTypeBroker || typ == kmsg.ConfigResourceTypeBrokerLogger:
		return fail(kerr.InvalidRequest.Code, "the server's settings are runnel serve's flags; they cannot be altered")
	case typ != kmsg.ConfigResourceTypeTopic:
		return fail(kerr.InvalidRequest.Code, fmt.Sprintf("resource type %v has no configs here", typ))
	}
	apply := func(cfg *runnel.TopicConfig) error {
		for _, ch := range changes {
			if err := s.applyTopicConfig(cfg, ch.name, ch.value); err != nil {
				return err
			}
		}
		return cfg.Validate()
	}
	cfg, err := s.log.TopicConfig(name)
	if err != nil {
		return fail(topicNameErrorCode(err), err.Error())
	}
	if err := apply(&cfg); err != nil {
		return fail(kerr.InvalidConfig.Code, err.Error())
	}
	if validateOnly {
		return 0, nil
	}
	// Applied again to the config AlterTopic reads under the topic's admin
	// lock, which another process may have altered since; if that fails,
	// the config is left as it was.
	var applyErr error
	var applied runnel.TopicConfig
	ctx, cancel := s.adminContext(0)
	defer cancel()
	err = s.log.AlterTopicContext(ctx, name, func(cfg *runnel.TopicConfig) {
		was := *cfg
		if applyErr = apply(cfg); applyErr != nil {
			*cfg = was
		}
		applied = *cfg
	})
	switch {
	case applyErr != nil:
		return fail(kerr.InvalidConfig.Code, applyErr.Error())
	case errors.Is(err, runnel.ErrInvalidArgument):
		return fail(kerr.InvalidConfig.Code, err.Error())
	case err != nil:
		return fail(topicNameErrorCode(err), err.Error())
	}
	s.opts.Logger.Info("kafka: topic configs altered", "topic", name, "retention.ms", applied.RetentionAge.Milliseconds(),
		"retention.bytes", applied.RetentionBytes, "segment.bytes", applied.SegmentBytes)
	return 0, nil
}
