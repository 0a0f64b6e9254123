package kafka

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeBrokerLoggers: DescribeConfigs for BROKER_LOGGER (8), which
// kafka-configs.sh --describe --entity-type broker-loggers --entity-name
// 0 sends, is answered as a one-broker Kafka answers: broker 0's
// loggers, here the one "root" at the server Logger's level, as
// DYNAMIC_BROKER_LOGGER_CONFIG, with a value alone, filtered by the
// names asked; an empty name or another broker's id is INVALID_REQUEST
// with a message, as Kafka's broker refuses them. franz-go routes the
// request to the broker it names. Before, every BROKER_LOGGER resource
// was refused.
func TestDescribeBrokerLoggers(t *testing.T) {
	ts := startServer(t, nil) // its Logger logs from Debug up
	type logger struct {
		Name, Value string
		Source      kmsg.ConfigSource
		ReadOnly    bool
	}
	type answer struct {
		Code    int16
		Message bool
		Loggers []logger
	}
	request := func(name string, names []string) *kmsg.DescribeConfigsRequest {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeSynonyms, req.IncludeDocumentation = 4, true, true
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeBrokerLogger, name, names
		req.Resources = append(req.Resources, r)
		return req
	}
	answerOf := func(name string, resp *kmsg.DescribeConfigsResponse) answer {
		t.Helper()
		if len(resp.Resources) != 1 {
			t.Fatalf("broker logger %q: %d resources answered", name, len(resp.Resources))
		}
		rr := resp.Resources[0]
		if rr.ResourceType != kmsg.ConfigResourceTypeBrokerLogger || rr.ResourceName != name {
			t.Errorf("answered for resource %v %q, asked %q", rr.ResourceType, rr.ResourceName, name)
		}
		a := answer{Code: rr.ErrorCode, Message: rr.ErrorMessage != nil}
		for _, c := range rr.Configs {
			if c.Value == nil || len(c.ConfigSynonyms) > 0 || c.Documentation != nil {
				t.Errorf("logger %s: value %v, synonyms %v, documentation %v; Kafka gives a value alone", c.Name, c.Value, c.ConfigSynonyms, c.Documentation)
				continue
			}
			a.Loggers = append(a.Loggers, logger{c.Name, *c.Value, c.Source, c.ReadOnly})
		}
		return a
	}
	root := logger{"root", "DEBUG", kmsg.ConfigSourceDynamicBrokerLoggerConfig, true}
	refused := answer{Code: kerr.InvalidRequest.Code, Message: true}

	resp, err := request("0", nil).RequestWith(context.Background(), ts.client())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(answer{Loggers: []logger{root}}, answerOf("0", resp)); diff != "" {
		t.Errorf("broker 0's loggers through franz-go (-want +got):\n%s", diff)
	}
	rc := ts.raw()
	for _, c := range []struct {
		name  string
		names []string
		want  answer
	}{
		{"0", nil, answer{Loggers: []logger{root}}},
		{"0", []string{"root"}, answer{Loggers: []logger{root}}},
		{"0", []string{"kafka.server"}, answer{}},
		{"", nil, refused},
		{"1", nil, refused},
		{"broker", nil, refused},
	} {
		got := answerOf(c.name, rc.request(request(c.name, c.names)).(*kmsg.DescribeConfigsResponse))
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("broker logger %q, names %v (-want +got):\n%s", c.name, c.names, diff)
		}
	}
}

// TestRootLoggerLevel: the root logger's level is log4j's name of the
// least severe level the server's Logger takes, OFF for the default,
// which discards.
func TestRootLoggerLevel(t *testing.T) {
	for _, c := range []struct {
		logger *slog.Logger
		want   string
	}{
		{nil, "OFF"},
		{slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug - 4})), "TRACE"},
		{slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})), "DEBUG"},
		{slog.New(slog.NewTextHandler(io.Discard, nil)), "INFO"},
		{slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn + 1})), "ERROR"},
		{slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1})), "OFF"},
	} {
		opts, err := (&Options{Logger: c.logger}).withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if got := (&Server{opts: opts}).rootLoggerLevel(); got != c.want {
			t.Errorf("root logger of a Logger at %v: %s, want %s", c.logger, got, c.want)
		}
	}
}
