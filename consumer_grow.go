package runnel

// followGrowth starts reading, from their first records, the partitions
// added to the topic (AlterTopic) since a Consumer of every partition
// without a group began: every record of such a partition was sent after
// the consumer started, whatever its Start said. A consumer of listed
// partitions reads those alone, as Kafka's assign does; a group member
// gets new partitions through its group.
func (c *Consumer) followGrowth() error {
	if c.g != nil || c.opts.Partitions != nil {
		return nil
	}
	for id := len(c.byID); id < len(c.topic.parts()); id++ {
		part, err := c.addPart(id)
		if err != nil {
			return c.log.orGone(c.topic, err)
		}
		c.position(part, Earliest, true) // an error stays with the partition, for Poll
	}
	return nil
}
