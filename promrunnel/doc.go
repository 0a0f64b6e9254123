// Package promrunnel exposes runnel's metrics to Prometheus: a
// prometheus.Collector for a Log (Log.Stats) and one for a Kafka server
// (kafka.Server.Stats), built with the official client library. It is a
// package of its own so that the runnel package does not depend on
// client_golang.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(promrunnel.NewCollector(l), promrunnel.NewKafkaCollector(srv))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric is named runnel_*, with units in the name and _total on
// counters. Counters (records appended, fsyncs, repairs, ...) are what this
// process's Log did since Open; gauges (offsets, segments, bytes, durable
// lag, group lag) describe the directory, which every process that opens
// it reports alike. So sum() counters over the processes that share a
// directory, and take max() of gauges. docs/OPERATIONS.md lists the
// metrics with alert rules.
//
// # Cost of a scrape
//
// Counters are atomic loads. Gauges are read from the files at every
// scrape (Log.Stats documents the reads): in proportion to the number of
// partitions, plus, per group and topic, a read of the offsets file and
// of each partition's end for the lag. Nothing is cached between scrapes
// and no lock that appends or consumers take is held, so a scrape never
// stalls them; on a log of thousands of partitions, scrape less often, or
// measure it with BenchmarkCollect.
//
// Two Logs in one registry would collide: wrap one with
// prometheus.WrapRegistererWith and a label that tells them apart.
package promrunnel
