package promrunnel

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-log/runnel"
)

var (
	partLabels  = []string{"topic", "partition"}
	groupLabels = []string{"group", "topic"}
	gpLabels    = []string{"group", "topic", "partition"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("runnel_"+name, help, labels, nil)
}

// The Log's metrics. Help texts say counter or gauge by the _total suffix
// and the type Prometheus shows; they say whose figure it is.
var (
	infoDesc        = desc("info", "The Log's append backend and durability mode (always 1).", "backend", "durability")
	writerLocksDesc = desc("writer_locks_total", "Times this process's Log took a partition's writer lock.")
	syncWaitsDesc   = desc("sync_waits_total", "Times a durable append of this process slept while another process's fdatasync ran.")
	pollWaitsDesc   = desc("poll_waits_total", "Times a Poll of this process's consumers slept, having found no records.")
	wakeupsDesc     = desc("poll_wakeups_total", "Of those sleeps, the ones an append or a group change ended (not a timeout).")
	statsErrorsDesc = desc("stats_errors", "Partitions and groups whose state this scrape could not read (damage, permissions); the log says why.")

	recordsAppendedDesc = desc("records_appended_total", "Records this process appended to the partition.", partLabels...)
	bytesAppendedDesc   = desc("bytes_appended_total", "Bytes of the frames this process appended, as stored.", partLabels...)
	framesAppendedDesc  = desc("frames_appended_total", "Frames (batches) this process appended.", partLabels...)
	fsyncDesc           = desc("fsync_seconds", "Latency of this process's fdatasyncs of the partition's segments.", partLabels...)
	repairsDesc         = desc("repairs_total", "Torn or uncommitted tails this process cut from the partition.", partLabels...)
	repairedBytesDesc   = desc("repaired_bytes_total", "Bytes those repairs cut.", partLabels...)
	recoveriesDesc      = desc("recoveries_total", "Recovery reports (after a reboot, or losses found) this process made for the partition.", partLabels...)
	recordsLostDesc     = desc("records_lost_total", "Committed records this process found gone (power loss or damage).", partLabels...)
	recordsReadDesc     = desc("records_read_total", "Records this process's consumers read from the partition.", partLabels...)
	bytesReadDesc       = desc("bytes_read_total", "Bytes of the frames they were read from, as stored.", partLabels...)
	gapsSkippedDesc     = desc("gap_records_skipped_total", "Lost offsets (gaps left by a salvage) this process's consumers skipped.", partLabels...)

	startOffsetDesc   = desc("partition_start_offset", "First offset still stored in the partition.", partLabels...)
	endOffsetDesc     = desc("partition_end_offset", "Offset the partition's next record will get (log end offset).", partLabels...)
	durableOffsetDesc = desc("partition_durable_offset", "Offset below which every record of the partition is known to be on disk.", partLabels...)
	durableLagDesc    = desc("partition_durable_lag_records", "Committed records of the partition no fdatasync has covered yet.", partLabels...)
	segmentsDesc      = desc("partition_segments", "Segment files of the partition.", partLabels...)
	diskBytesDesc     = desc("partition_disk_bytes", "Bytes of the partition's segment files on disk.", partLabels...)

	membersDesc    = desc("consumer_group_members", "Live members of the group for the topic, in any process.", groupLabels...)
	rebalancesDesc = desc("consumer_group_rebalances_total", "Times this process's members of the group took or gave up partitions of the topic.", groupLabels...)
	committedDesc  = desc("consumer_group_committed_offset", "The group's committed offset (next to read) in the partition.", gpLabels...)
	groupLagDesc   = desc("consumer_group_lag", "Records between the group's committed offset and the partition's end.", gpLabels...)
)

var logDescs = []*prometheus.Desc{
	infoDesc, writerLocksDesc, syncWaitsDesc, pollWaitsDesc, wakeupsDesc, statsErrorsDesc,
	recordsAppendedDesc, bytesAppendedDesc, framesAppendedDesc, fsyncDesc, repairsDesc, repairedBytesDesc,
	recoveriesDesc, recordsLostDesc, recordsReadDesc, bytesReadDesc, gapsSkippedDesc,
	startOffsetDesc, endOffsetDesc, durableOffsetDesc, durableLagDesc, segmentsDesc, diskBytesDesc,
	membersDesc, rebalancesDesc, committedDesc, groupLagDesc,
}

// Collector is a prometheus.Collector of a Log's Stats.
type Collector struct {
	log *runnel.Log
}

// NewCollector returns a Collector for l. Each scrape calls l.Stats; after
// l is closed a scrape reports the counters and an error for the rest.
func NewCollector(l *runnel.Log) *Collector {
	return &Collector{log: l}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range logDescs {
		ch <- d
	}
}

// Collect takes the Log's Stats and sends its metrics. A partition or
// group whose state could not be read contributes its counters only, and
// counts in runnel_stats_errors.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.log.Stats()
	emit := metricSender(ch)
	emit.gauge(infoDesc, 1, st.Backend, st.Durability.String())
	emit.counter(writerLocksDesc, st.WriterLocks)
	emit.counter(syncWaitsDesc, st.SyncWaits)
	emit.counter(pollWaitsDesc, st.PollWaits)
	emit.counter(wakeupsDesc, st.Wakeups)
	errs := 0
	for _, p := range st.Partitions {
		if !collectPartition(emit, p) {
			errs++
		}
	}
	for _, g := range st.Groups {
		if g.Err != nil {
			errs++
			if g.Topic != "" { // one topic's offsets unreadable: not the counter
				emit.counter(rebalancesDesc, g.Rebalances, g.Group, g.Topic)
			}
			continue
		}
		emit.gauge(membersDesc, float64(g.Members), g.Group, g.Topic)
		emit.counter(rebalancesDesc, g.Rebalances, g.Group, g.Topic)
		for _, gp := range g.Partitions {
			part := strconv.Itoa(gp.Partition)
			if gp.Committed >= 0 {
				emit.gauge(committedDesc, float64(gp.Committed), g.Group, g.Topic, part)
			}
			if gp.Lag >= 0 {
				emit.gauge(groupLagDesc, float64(gp.Lag), g.Group, g.Topic, part)
			}
		}
	}
	if st.Err != nil && len(st.Partitions) == 0 && len(st.Groups) == 0 {
		errs++ // the directory itself could not be listed, or the Log is closed
	}
	emit.gauge(statsErrorsDesc, float64(errs))
}

// collectPartition sends one partition's metrics, and reports whether its
// state could be read.
func collectPartition(emit metricSender, p runnel.PartitionStats) bool {
	l := []string{p.Topic, strconv.Itoa(p.Partition)}
	emit.counter(recordsAppendedDesc, p.RecordsAppended, l...)
	emit.counter(bytesAppendedDesc, p.BytesAppended, l...)
	emit.counter(framesAppendedDesc, p.FramesAppended, l...)
	emit.histogram(fsyncDesc, p.Syncs, l...)
	emit.counter(repairsDesc, p.Repairs, l...)
	emit.counter(repairedBytesDesc, p.BytesRepaired, l...)
	emit.counter(recoveriesDesc, p.Recoveries, l...)
	emit.counter(recordsLostDesc, p.RecordsLost, l...)
	emit.counter(recordsReadDesc, p.RecordsRead, l...)
	emit.counter(bytesReadDesc, p.BytesRead, l...)
	emit.counter(gapsSkippedDesc, p.GapsCrossed, l...)
	if p.Err != nil {
		return false
	}
	emit.gauge(startOffsetDesc, float64(p.StartOffset), l...)
	emit.gauge(endOffsetDesc, float64(p.EndOffset), l...)
	if p.DurableOffset >= 0 {
		emit.gauge(durableOffsetDesc, float64(p.DurableOffset), l...)
		emit.gauge(durableLagDesc, float64(p.DurableLag), l...)
	}
	emit.gauge(segmentsDesc, float64(p.Segments), l...)
	emit.gauge(diskBytesDesc, float64(p.Bytes), l...)
	return true
}
