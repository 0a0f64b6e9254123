package runnel

// Reads of one topic that need less than DescribeTopic, which opens every
// partition's last segment and sizes every segment: a Kafka server asks
// for a topic's partition count on every Metadata request and for a
// partition's end after every fetch, and DescribeTopic's work grows with
// the partitions and segments the topic has.

// TopicConfig reports a topic's config as it is on disk now, including
// other processes' AlterTopic calls: DescribeTopic's Config, read from the
// topic's file alone. It fails with ErrTopicNotFound if there is no such
// topic.
func (l *Log) TopicConfig(name string) (TopicConfig, error) {
	cfg, _, err := l.TopicConfigAndID(name)
	return cfg, err
}

// TopicID reports a topic's ID (TopicInfo.ID), read from the topic's file
// alone: "" for a topic created before runnel recorded IDs. It fails with
// ErrTopicNotFound if there is no such topic. A name deleted and created
// again has a new ID, so state kept beside a topic (a Kafka server's
// producer journal) can tell it belongs to an earlier one.
func (l *Log) TopicID(name string) (string, error) {
	_, id, err := l.TopicConfigAndID(name)
	return id, err
}

// TopicConfigAndID is TopicConfig and TopicID from one read of the
// topic's file, so that both describe the same topic even while another
// process deletes it and creates it again under its name (a Kafka
// server's Metadata answer names a topic by its ID and its partitions).
func (l *Log) TopicConfigAndID(name string) (TopicConfig, string, error) {
	if err := l.checkOpen(); err != nil {
		return TopicConfig{}, "", err
	}
	if err := validateName("topic", name); err != nil {
		return TopicConfig{}, "", err
	}
	tf, err := l.readTopicFile(name)
	return tf.TopicConfig, tf.ID, err
}

// PartitionOffsets reports where one partition starts and ends now: the
// first offset still stored and the offset the next record will get
// (DescribeTopic's StartOffset and NextOffset), including other processes'
// appends, without the per-segment work. It fails with ErrTopicNotFound if
// there is no such topic and ErrInvalidArgument if it has no such
// partition.
func (l *Log) PartitionOffsets(topicName string, partition int) (start, next int64, err error) {
	_, _, err = l.readTopicFiles(topicName, func(t *topic) error {
		p, err := l.partitionOf(t, partition)
		if err != nil {
			return err
		}
		start, next, err = p.offsets()
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return start, next, nil
}
