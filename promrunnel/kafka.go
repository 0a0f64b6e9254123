package promrunnel

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-log/runnel/kafka"
)

var (
	kConnsOpenDesc   = desc("kafka_connections_open", "Client connections open now.")
	kConnsDesc       = desc("kafka_connections_total", "Client connections accepted.")
	kRequestsDesc    = desc("kafka_requests_total", "Requests answered, by API and by the error code of the response (NONE for success).", "api", "error")
	kProducedRecDesc = desc("kafka_produced_records_total", "Records stored by Produce requests.")
	kProducedDesc    = desc("kafka_produced_bytes_total", "Record batch bytes received by Produce requests.")
	kFetchedRecDesc  = desc("kafka_fetched_records_total", "Records returned by Fetch requests.")
	kFetchedDesc     = desc("kafka_fetched_bytes_total", "Record batch bytes returned by Fetch requests.")
	kDuplicatesDesc  = desc("kafka_duplicate_batches_total", "Idempotent producers' retries answered with the offsets of the batch already stored.")
	kMismatchesDesc  = desc("kafka_journal_mismatches_total", "Retries a stopped server's producer journal named that the log did not hold (stored anew; after a crash before the commit, or a power loss).")
)

// KafkaCollector is a prometheus.Collector of a kafka.Server's Stats. It
// costs a few atomic loads and a short lock per scrape.
type KafkaCollector struct {
	srv *kafka.Server
}

// NewKafkaCollector returns a KafkaCollector for srv. Register it next to
// the Collector of the Log srv serves: the Log's metrics cover what the
// server's requests did to the partitions.
func NewKafkaCollector(srv *kafka.Server) *KafkaCollector {
	return &KafkaCollector{srv: srv}
}

// Describe sends every metric's description.
func (c *KafkaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{kConnsOpenDesc, kConnsDesc, kRequestsDesc, kProducedRecDesc, kProducedDesc, kFetchedRecDesc, kFetchedDesc, kDuplicatesDesc, kMismatchesDesc} {
		ch <- d
	}
}

// Collect sends the server's metrics.
func (c *KafkaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	emit := metricSender(ch)
	emit.gauge(kConnsOpenDesc, float64(st.ConnectionsOpen))
	emit.counter(kConnsDesc, st.ConnectionsAccepted)
	for _, r := range st.RequestsByAPI {
		emit.counter(kRequestsDesc, r.Count, r.API, r.Error)
	}
	emit.counter(kProducedRecDesc, st.ProducedRecords)
	emit.counter(kProducedDesc, st.ProducedBytes)
	emit.counter(kFetchedRecDesc, st.FetchedRecords)
	emit.counter(kFetchedDesc, st.FetchedBytes)
	emit.counter(kDuplicatesDesc, st.DuplicateBatches)
	emit.counter(kMismatchesDesc, st.JournalMismatches)
}
