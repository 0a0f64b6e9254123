package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// DescribeLogDirs: v0-4. The server has one log dir, the runnel
// directory; each partition's size is its segments' bytes, as
// DescribeTopic reports them, and the dir's total and usable bytes are
// its filesystem's. Kafka UIs show topic sizes and free space from this.
// Topics and partitions that do not exist are left out, as in Kafka.

func init() { supports(kmsg.DescribeLogDirs, 0, 4) }

func (c *conn) describeLogDirs(req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.s.log.Dir()
	var st unix.Statfs_t
	if unix.Statfs(dir.Dir, &st) == nil {
		dir.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
		dir.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	want := map[string][]int32{} // the partitions asked for, per topic, if any
	var names []string
	if req.Topics == nil {
		var err error
		if names, err = c.s.log.Topics(); err != nil {
			dir.ErrorCode = topicErrorCode(err)
		}
	}
	for _, t := range req.Topics {
		if _, ok := want[t.Topic]; !ok {
			names = append(names, t.Topic)
		}
		want[t.Topic] = append(want[t.Topic], t.Partitions...)
	}
	for _, name := range names {
		info, err := c.s.log.DescribeTopic(name)
		if err != nil {
			continue // gone, or never there
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = name
		for _, pi := range info.Partitions {
			if ps := want[name]; req.Topics != nil && !slices.Contains(ps, int32(pi.Partition)) {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = int32(pi.Partition), pi.Bytes
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
