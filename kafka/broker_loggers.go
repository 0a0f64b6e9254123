package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs' BROKER_LOGGER resource (type 8), which
// kafka-configs.sh --entity-type broker-loggers and Kafka UIs describe,
// is a broker's loggers and their levels: Kafka's broker answers with its
// log4j loggers, at least "root", for its own id, and refuses an empty
// name or another broker's id with INVALID_REQUEST. The server has one
// logger, Options.Logger, which is "root" here, at the least severe
// level it is enabled for, in log4j's names. Kafka marks its loggers
// writable, as IncrementalAlterConfigs sets them; here they are
// read-only, since the level is the Logger's, which the program that
// made it sets (IncrementalAlterConfigs refuses BROKER_LOGGER).

// log4jLevels are log4j's level names, least severe first, with the slog
// level each stands for.
var log4jLevels = []struct {
	name  string
	level slog.Level
}{
	{"TRACE", slog.LevelDebug - 4},
	{"DEBUG", slog.LevelDebug},
	{"INFO", slog.LevelInfo},
	{"WARN", slog.LevelWarn},
	{"ERROR", slog.LevelError},
}

// rootLoggerLevel is the log4j name of the least severe level the
// server's Logger is enabled for, "OFF" if none (the default, which
// discards).
func (s *Server) rootLoggerLevel() string {
	for _, l := range log4jLevels {
		if s.opts.Logger.Enabled(context.Background(), l.level) {
			return l.name
		}
	}
	return "OFF"
}

// brokerLoggers describes the server's loggers, as Kafka's broker does
// its own: no synonyms, type or documentation, whatever is asked.
func (s *Server) brokerLoggers() []kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name, rc.Value = "root", kmsg.StringPtr(s.rootLoggerLevel())
	rc.Source, rc.ReadOnly = kmsg.ConfigSourceDynamicBrokerLoggerConfig, true
	return []kmsg.DescribeConfigsResponseResourceConfig{rc}
}
