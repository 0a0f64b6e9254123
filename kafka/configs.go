package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic configs in Kafka's names. runnel has three that Kafka clients can
// set — retention.ms, retention.bytes and segment.bytes — and a few whose
// value is fixed (fixed_configs.go), taken when they ask for what runnel
// does and reported so that tools showing a topic see what it does.

// topicConfig is one config as DescribeConfigs and CreateTopics report it
// (the broker's too).
type topicConfig struct {
	name     string
	value    string
	def      string // its value when nothing sets it
	readOnly bool
	typ      kmsg.ConfigType
	doc      string // what it does in runnel, DescribeConfigs' documentation
}

// isSet reports whether the config differs from its default, which is
// what tools list as a topic's overrides.
func (tc topicConfig) isSet() bool { return tc.value != tc.def }

// topicConfigs lists a topic's configs.
func (s *Server) topicConfigs(cfg runnel.TopicConfig) []topicConfig {
	retMs, retBytes := int64(-1), int64(-1)
	if cfg.RetentionAge > 0 {
		retMs = cfg.RetentionAge.Milliseconds()
	}
	if cfg.RetentionBytes > 0 {
		retBytes = cfg.RetentionBytes
	}
	configs := []topicConfig{
		{name: "retention.bytes", value: strconv.FormatInt(retBytes, 10), def: "-1", typ: kmsg.ConfigTypeLong,
			doc: "The size each partition is kept within, in bytes: its oldest segments are removed past it. -1 for no limit."},
		{name: "retention.ms", value: strconv.FormatInt(retMs, 10), def: "-1", typ: kmsg.ConfigTypeLong,
			doc: "How long records are kept, in milliseconds: a segment whose records are all older is removed. -1 keeps them for ever."},
		{name: "segment.bytes", value: strconv.FormatInt(cfg.SegmentBytes, 10), def: strconv.Itoa(runnel.DefaultSegmentBytes), typ: kmsg.ConfigTypeInt,
			doc: "The size at which a partition's segment file is sealed and the next one begun; retention removes whole segments."},
	}
	for _, fc := range s.fixedTopicConfigs() {
		configs = append(configs, topicConfig{name: fc.name, value: fc.value, def: fc.value, readOnly: true, typ: fc.typ,
			doc: fmt.Sprintf("Always %s: %s.", fc.value, fc.why)})
	}
	slices.SortFunc(configs, func(a, b topicConfig) int { return strings.Compare(a.name, b.name) })
	return configs
}

// applyTopicConfig sets one config given by name in cfg; a nil value
// means the default. Configs runnel does not have are refused, except
// the fixed ones that ask for what runnel does anyway.
func (s *Server) applyTopicConfig(cfg *runnel.TopicConfig, name string, value *string) error {
	v := ""
	if value != nil {
		v = *value
	}
	num := func() (int64, error) {
		if value == nil {
			return -1, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not a number", name, v)
		}
		return n, nil
	}
	switch name {
	case "retention.ms":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.RetentionAge = 0
		if n > 0 {
			cfg.RetentionAge = time.Duration(n) * time.Millisecond
		}
	case "retention.bytes":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.RetentionBytes = max(n, 0)
	case "segment.bytes":
		n, err := num()
		if err != nil {
			return err
		}
		cfg.SegmentBytes = max(n, 0)
	default:
		for _, fc := range s.fixedTopicConfigs() {
			if fc.name == name {
				return fc.check(value)
			}
		}
		return fmt.Errorf("config %q is not supported (runnel has retention.ms, retention.bytes and segment.bytes, and takes %s only at the values it reports)", name, strings.Join(s.fixedTopicConfigNames(), ", "))
	}
	return nil
}
