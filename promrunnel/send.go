package promrunnel

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-log/runnel"
)

// metricSender sends constant metrics, the shape a collector of someone
// else's counters takes: nothing is registered per label set, so topics
// and groups that come and go leave nothing behind.
type metricSender chan<- prometheus.Metric

func (ch metricSender) counter(d *prometheus.Desc, v int64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (ch metricSender) gauge(d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// histogram sends h in seconds, Prometheus's unit for durations.
func (ch metricSender) histogram(d *prometheus.Desc, h runnel.Histogram, labels ...string) {
	buckets := make(map[float64]uint64, len(h.Buckets))
	for _, b := range h.Buckets {
		buckets[b.UpperBound.Seconds()] = uint64(b.Count)
	}
	ch <- prometheus.MustNewConstHistogram(d, uint64(h.Count), h.Sum.Seconds(), buckets, labels...)
}
