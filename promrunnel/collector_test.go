package promrunnel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/runnel-log/runnel"
)

// gathered is a registry's metrics by name.
type gathered map[string]*dto.MetricFamily

func gather(t testing.TB, cs ...prometheus.Collector) gathered {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := gathered{}
	for _, f := range fams {
		g[f.GetName()] = f
	}
	return g
}

// metric returns name's metric with exactly labels (name, value pairs), or
// nil.
func (g gathered) metric(name string, labels ...string) *dto.Metric {
	f := g[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i, lp := range m.GetLabel() {
			if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, failing the test if it is absent.
func (g gathered) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	m := g.metric(name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no %s%v", name, labels)
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func TestCollector(t *testing.T) {
	ctx := context.Background()
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("orders", runnel.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	p, err := l.Producer("orders", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := p.Send(ctx, runnel.Record{Partition: i % 2, Value: []byte("order")}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := l.Consumer("orders", &runnel.ConsumerOptions{Group: "billing", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryPoll(); err != nil { // joins: the member owns both partitions
		t.Fatal(err)
	}
	if err := c.CommitOffsets(ctx, map[int]int64{0: 1, 1: 3}); err != nil {
		t.Fatal(err)
	}

	col := NewCollector(l)
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	g := gather(t, col)
	st := l.Stats()
	for part := range 2 {
		ps := st.Partitions[part]
		pl := []string{"partition", string(rune('0' + part)), "topic", "orders"}
		for name, want := range map[string]float64{
			"runnel_records_appended_total":   3,
			"runnel_bytes_appended_total":     float64(ps.BytesAppended),
			"runnel_partition_start_offset":   0,
			"runnel_partition_end_offset":     3,
			"runnel_partition_durable_offset": 3,
			"runnel_partition_segments":       1,
			"runnel_partition_disk_bytes":     float64(ps.Bytes),
			"runnel_repairs_total":            0,
		} {
			if got := g.value(t, name, pl...); got != want {
				t.Errorf("%s%v = %v, want %v", name, pl, got, want)
			}
		}
		h := g.metric("runnel_fsync_seconds", pl...).GetHistogram()
		if h.GetSampleCount() < 3 || h.GetSampleSum() <= 0 || len(h.GetBucket()) != len(ps.Syncs.Buckets) {
			t.Errorf("fsync histogram %v: want ≥ 3 samples (one per durable Send)", h)
		}
	}
	if ps := st.Partitions[0]; ps.BytesAppended == 0 || ps.Bytes != ps.BytesAppended {
		t.Errorf("bytes appended %d, on disk %d", ps.BytesAppended, ps.Bytes)
	}
	for part, want := range []struct{ committed, lag float64 }{{1, 2}, {3, 0}} {
		gl := []string{"group", "billing", "partition", string(rune('0' + part)), "topic", "orders"}
		if got := g.value(t, "runnel_consumer_group_committed_offset", gl...); got != want.committed {
			t.Errorf("committed%v = %v, want %v", gl, got, want.committed)
		}
		if got := g.value(t, "runnel_consumer_group_lag", gl...); got != want.lag {
			t.Errorf("lag%v = %v, want %v", gl, got, want.lag)
		}
	}
	if got := g.value(t, "runnel_consumer_group_members", "group", "billing", "topic", "orders"); got != 1 {
		t.Errorf("members = %v, want 1", got)
	}
	if got := g.value(t, "runnel_stats_errors"); got != 0 {
		t.Errorf("stats errors = %v", got)
	}
	if got := g.value(t, "runnel_info", "backend", st.Backend, "durability", "durable"); got != 1 {
		t.Errorf("info = %v", got)
	}
}

// TestCollectorClosed checks that a scrape of a closed Log still answers,
// with its counters and an error count.
func TestCollectorClosed(t *testing.T) {
	l, err := runnel.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	g := gather(t, NewCollector(l))
	if got := g.value(t, "runnel_stats_errors"); got != 1 {
		t.Fatalf("stats errors = %v, want 1", got)
	}
}

// TestCollectorOneDamagedTopic: a group whose offsets file for one topic
// is damaged has its other topics' metrics, and the damaged one counts in
// runnel_stats_errors with its counters kept; the group had no metrics.
func TestCollectorOneDamagedTopic(t *testing.T) {
	ctx := context.Background()
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, topic := range []string{"a", "t"} {
		if err := l.CreateTopic(topic, runnel.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		p, err := l.Producer(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := p.Send(ctx, runnel.Record{Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.ResetGroupOffsets(ctx, "g", topic, runnel.AtOffset(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	// A bit of a.offsets's header, as runnel's own damage tests flip.
	path := filepath.Join(l.Dir(), "groups", "g", "a.offsets")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[12] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	g := gather(t, NewCollector(l))
	if got := g.value(t, "runnel_consumer_group_lag", "group", "g", "partition", "0", "topic", "t"); got != 2 {
		t.Errorf("lag of g/t/0 = %v, want 2", got)
	}
	if got := g.value(t, "runnel_consumer_group_rebalances_total", "group", "g", "topic", "a"); got != 0 {
		t.Errorf("rebalances of g/a = %v, want 0", got)
	}
	if m := g.metric("runnel_consumer_group_lag", "group", "g", "partition", "0", "topic", "a"); m != nil {
		t.Errorf("lag of the damaged g/a: %v", m)
	}
	if got := g.value(t, "runnel_stats_errors"); got != 1 {
		t.Errorf("stats errors = %v, want 1 (g/a)", got)
	}
}

// BenchmarkCollect measures a scrape of a Log with 16 partitions and a
// group: Log.Stats plus building the metrics.
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	l, err := runnel.Open(b.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("t", runnel.TopicConfig{Partitions: 16}); err != nil {
		b.Fatal(err)
	}
	p, err := l.Producer("t", &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 16 * 100 {
		p.SendAsync(runnel.Record{Partition: i % 16, Value: make([]byte, 100)}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", runnel.AtOffset(50), nil); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(l))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCollectorGroupNameOutsideTopicRule: a group named as a Kafka group
// id may be ("app:prod/1 x", issue 13) is its metrics' group label as
// named, not as its directory is spelled.
func TestCollectorGroupNameOutsideTopicRule(t *testing.T) {
	ctx := context.Background()
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("t", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	const group = "app:prod/1 x é"
	if _, err := l.ResetGroupOffsets(ctx, group, "t", runnel.AtOffset(0), nil); err != nil {
		t.Fatal(err)
	}
	col := NewCollector(l)
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	gl := []string{"group", group, "partition", "0", "topic", "t"}
	if got := gather(t, col).value(t, "runnel_consumer_group_committed_offset", gl...); got != 0 {
		t.Errorf("committed%v = %v, want 0", gl, got)
	}
}
