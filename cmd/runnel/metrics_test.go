package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// exposition is parsed Prometheus text, by metric name.
type exposition map[string]*dto.MetricFamily

func parseExposition(t *testing.T, r io.Reader) exposition {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// find returns name's sample whose labels include want (name=value
// pairs, comma-separated), or nil.
func (e exposition) find(name, want string) *dto.Metric {
	f := e[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for _, kv := range strings.Split(want, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && have[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value is the counter's or gauge's value, failing if it is absent.
func (e exposition) value(t *testing.T, name, labels string) float64 {
	t.Helper()
	m := e.find(name, labels)
	if m == nil {
		t.Fatalf("no %s{%s} in the exposition", name, labels)
	}
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return parseExposition(t, resp.Body)
}

// TestServeMetrics scrapes a running "runnel serve -metrics" after a Kafka
// client produced and a Kafka group committed, and checks the figures
// against what they did; then "runnel metrics" reads the same gauges.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t", "-partitions", "2")
	b := startBackground(t, dir, "serve", "-listen", "127.0.0.1:0", "-metrics", "127.0.0.1:0")
	var lines []string
	for len(lines) < 2 {
		select {
		case l := <-b.lines:
			lines = append(lines, l)
		case <-time.After(30 * time.Second):
			t.Fatalf("serve printed %q: %s", lines, b.stderr.String())
		}
	}
	kafkaAddr := lines[0][strings.LastIndex(lines[0], " ")+1:]
	url := lines[1][strings.LastIndex(lines[1], " ")+1:]
	if !strings.HasPrefix(lines[1], "serving metrics on http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("second line %q", lines[1])
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic("t"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(partition int32, n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte("metered")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 3)
	produce(1, 2)

	// A Kafka group reads everything and commits, then two more records
	// arrive in partition 0: the group lags by 2 there.
	gc, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	for got := 0; got < 5; {
		fs := gc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records", got)
		}
		got += len(fs.Records())
	}
	if err := gc.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	gc.Close()
	produce(0, 2)

	e := scrape(t, url)
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"runnel_records_appended_total", "topic=t,partition=0", 5},
		{"runnel_records_appended_total", "topic=t,partition=1", 2},
		{"runnel_partition_start_offset", "topic=t,partition=0", 0},
		{"runnel_partition_end_offset", "topic=t,partition=0", 5},
		{"runnel_partition_end_offset", "topic=t,partition=1", 2},
		{"runnel_partition_durable_lag_records", "topic=t,partition=0", 0}, // acks=all in durable mode
		{"runnel_partition_segments", "topic=t,partition=0", 1},
		{"runnel_consumer_group_committed_offset", "group=billing,topic=t,partition=0", 3},
		{"runnel_consumer_group_committed_offset", "group=billing,topic=t,partition=1", 2},
		{"runnel_consumer_group_lag", "group=billing,topic=t,partition=0", 2},
		{"runnel_consumer_group_lag", "group=billing,topic=t,partition=1", 0},
		{"runnel_repairs_total", "topic=t,partition=0", 0},
		{"runnel_kafka_produced_records_total", "", 7},
		{"runnel_kafka_duplicate_batches_total", "", 0},
		{"runnel_kafka_journal_mismatches_total", "", 0},
		{"runnel_stats_errors", "", 0},
	} {
		if got := e.value(t, c.name, c.labels); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// One segment, nothing cut: the frames appended are the file.
	for _, p := range []string{"0", "1"} {
		l := "topic=t,partition=" + p
		if ab, db := e.value(t, "runnel_bytes_appended_total", l), e.value(t, "runnel_partition_disk_bytes", l); ab <= 0 || ab != db {
			t.Errorf("partition %s: %v bytes appended, %v on disk", p, ab, db)
		}
	}
	if h := e.find("runnel_fsync_seconds", "topic=t,partition=0"); h == nil || h.GetHistogram().GetSampleCount() == 0 {
		t.Errorf("fsync histogram of partition 0: %v; want samples (durable mode syncs each acks=all produce)", h)
	}
	if n := e.value(t, "runnel_kafka_requests_total", "api=Produce,error=NONE"); n < 7 {
		t.Errorf("Produce requests %v, want ≥ 7 (one per ProduceSync)", n)
	}
	if n := e.value(t, "runnel_kafka_requests_total", "api=OffsetCommit,error=NONE"); n < 1 {
		t.Errorf("OffsetCommit requests %v, want ≥ 1", n)
	}
	if n := e.value(t, "runnel_kafka_connections_total", ""); n < 2 {
		t.Errorf("connections %v, want ≥ 2", n)
	}
	if e["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
	cl.Close()
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("serve exited %d after Ctrl-C: %s", code, b.stderr.String())
	}

	// The one-shot reads the same directory state; its own counters are 0.
	e = parseExposition(t, strings.NewReader(must(t, dir, "", "metrics")))
	if got := e.value(t, "runnel_partition_end_offset", "topic=t,partition=0"); got != 5 {
		t.Errorf("runnel metrics: end offset %v, want 5", got)
	}
	if got := e.value(t, "runnel_consumer_group_lag", "group=billing,topic=t,partition=0"); got != 2 {
		t.Errorf("runnel metrics: lag %v, want 2", got)
	}
	if got := e.value(t, "runnel_records_appended_total", "topic=t,partition=0"); got != 0 {
		t.Errorf("runnel metrics: appended %v by a process that appended nothing", got)
	}
}

func TestMetricsAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9308":           "127.0.0.1:9308",
		":9308":          ":9308",
		"0.0.0.0:9308":   "0.0.0.0:9308",
		"[::1]:9308":     "[::1]:9308",
		"127.0.0.1:9308": "127.0.0.1:9308",
	} {
		if got := metricsAddr(in); got != want {
			t.Errorf("metricsAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
