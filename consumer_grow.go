package runnel

// followGrowth starts reading, from their first records, the partitions
// added to the topic (AlterTopic) since a Consumer of every partition
// without a group began: every record of such a partition was sent after
// the consumer started, whatever its Start said. A consumer of listed
// partitions reads those alone, as Kafka's assign does; a group member
// gets new partitions through its group.
//
// Another process's growth is seen at the first look after it published
// the count (topic_hint.go), which it also wakes a sleeping Poll for.
func (c *Consumer) followGrowth() error {
	if c.g != nil || c.opts.Partitions != nil {
		return nil
	}
	c.log.followHint(c.topic)
	for id := len(c.byID); id < len(c.topic.parts()); id++ {
		part, err := c.addPart(id)
		if err != nil {
			return c.log.orGone(c.topic, err)
		}
		c.position(part, Earliest, true) // an error stays with the partition, for Poll
	}
	return nil
}

// followGroupGrowth makes a group member's share count the partitions
// added to the topic (AlterTopic), reporting whether it did. The topic's
// count is what this process last read of topic.json; at a change of the
// group's generation, which an AlterTopic makes once it wrote topic.json,
// the member also reads how many partitions the offsets file covers, and
// topic.json if the file grew past what it knows. Every member of the
// group does so, so they all agree on the count at once, not one
// retention check apart.
func (c *Consumer) followGroupGrowth(moved bool) (bool, error) {
	m := c.g.m
	n := len(c.topic.parts())
	if n <= m.nparts && !moved {
		return false, nil
	}
	covers, err := m.off.covers()
	if err != nil {
		return false, err
	}
	if n <= m.nparts {
		if covers <= m.nparts {
			return false, nil
		}
		c.log.refreshPartitions(c.topic)
		if n = len(c.topic.parts()); n <= m.nparts {
			return false, nil // the AlterTopic has not written topic.json yet, or died
		}
	}
	if n > covers {
		return false, m.off.corrupt(growSlotOff, "the file covers %d partitions but the topic has %d now", covers, n)
	}
	c.mu.Lock()
	m.grow(n)
	c.growByID(n)
	c.mu.Unlock()
	return true, nil
}
