package kafka

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/runnel-log/runnel"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// Go's two other common Kafka clients against the server, in the test
// process: Sarama, at the oldest protocol it may speak here (Kafka 0.11,
// the first with record batches), its default and a recent one, and
// segmentio's kafka-go. Each creates a topic with a config, produces with
// every codec, consumes as a group whose commits are runnel's, and shares
// a group with a native member.

func TestSarama(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.DefaultVersion, sarama.V3_6_0_0} {
		t.Run(v.String(), func(t *testing.T) { testSarama(t, v) })
	}
}

func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // as idempotence requires
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 50 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 2 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	return cfg
}

func testSarama(t *testing.T, v sarama.KafkaVersion) {
	ts := startServer(t, fastGroups)
	cfg := saramaConfig(v)
	adm, err := sarama.NewClusterAdmin([]string{ts.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	hour := "3600000"
	if err := adm.CreateTopic("sa", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &hour}}, false); err != nil {
		t.Fatal(err)
	}
	if info, err := ts.log.DescribeTopic("sa"); err != nil || len(info.Partitions) != 2 || info.Config.RetentionAge != time.Hour {
		t.Fatalf("topic made by Sarama: %+v, %v", info, err)
	}

	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4}
	if v.IsAtLeast(sarama.V2_1_0_0) {
		codecs = append(codecs, sarama.CompressionZSTD) // Kafka 2.1 brought zstd
	}
	at := time.UnixMilli(1_700_000_000_000)
	var keys []string
	for _, codec := range codecs {
		keys = append(keys, codec.String())
		pcfg := *cfg
		pcfg.Producer.Compression = codec
		p, err := sarama.NewSyncProducer([]string{ts.addr}, &pcfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "sa", Partition: 0, Timestamp: at,
			Key: sarama.StringEncoder(codec.String()), Value: sarama.StringEncoder("v"),
			Headers: []sarama.RecordHeader{{Key: []byte("src"), Value: []byte("sarama")}}})
		p.Close()
		if err != nil {
			t.Fatalf("producing with %v: %v", codec, err)
		}
	}
	checkStored(t, ts.log, "sa", keys, "sarama", at)

	// A group member reads everything and commits it.
	produceNative(t, ts.log, "sa", []runnel.Record{{Partition: 1, Value: []byte("native")}})
	m := startSaramaMember(t, ts, cfg, "sg", "sa")
	waitFor(t, "Sarama's member to read every record", func() bool { return m.read() == len(codecs)+1 })
	waitFor(t, "Sarama's commits in runnel", func() bool { return committedTotal(t, ts.log, "sg") == int64(len(codecs)+1) })

	// It shares the group with a native member, each partition owned by
	// one of them, and the native member takes all once it leaves.
	n := pollNative(t, ts.log, "sa", &runnel.ConsumerOptions{Group: "sg"})
	waitFor(t, "Sarama's member and a native one to share the partitions", func() bool {
		return sharedWith(t, ts.log, "sg", "sa", n, m.claims())
	})
	m.stop()
	waitFor(t, "the native member to own every partition after Sarama's left", func() bool {
		return slices.Equal(n.partitions(), []int{0, 1})
	})
}

// saramaMember is a Sarama consumer group member consuming in the
// background; it marks what it reads, and auto-commit commits it.
type saramaMember struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	n      int
	owned  []int
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owned = nil
	for _, ps := range s.Claims() {
		for _, p := range ps {
			m.owned = append(m.owned, int(p))
		}
	}
	slices.Sort(m.owned)
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.owned = nil
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.n++
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) read() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

func (m *saramaMember) claims() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.owned)
}

func (m *saramaMember) stop() {
	m.cancel()
	<-m.done
}

func startSaramaMember(t *testing.T, ts *testServer, cfg *sarama.Config, group, topic string) *saramaMember {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{ts.addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer cg.Close() // leaves the group
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
				t.Logf("Sarama's Consume: %v", err)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func TestKafkaGo(t *testing.T) {
	ts := startServer(t, fastGroups)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := &kafkago.Client{Addr: kafkago.TCP(ts.addr)}
	created, err := cl.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: "kg", NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
	}}})
	if err != nil || created.Errors["kg"] != nil {
		t.Fatalf("kafka-go's CreateTopics: %v, %+v", err, created)
	}
	if info, err := ts.log.DescribeTopic("kg"); err != nil || len(info.Partitions) != 2 || info.Config.RetentionAge != time.Hour {
		t.Fatalf("topic made by kafka-go: %+v, %v", info, err)
	}

	codecs := []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}
	at := time.UnixMilli(1_700_000_000_000)
	var keys []string
	for _, codec := range codecs {
		keys = append(keys, codec.String())
		w := &kafkago.Writer{Addr: kafkago.TCP(ts.addr), Topic: "kg", Compression: codec,
			RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond, Balancer: partitionZero{}}
		err := w.WriteMessages(ctx, kafkago.Message{Key: []byte(codec.String()), Value: []byte("v"), Time: at,
			Headers: []kafkago.Header{{Key: "src", Value: []byte("kafka-go")}}})
		w.Close()
		if err != nil {
			t.Fatalf("producing with %v: %v", codec, err)
		}
	}
	checkStored(t, ts.log, "kg", keys, "kafka-go", at)

	// A group member reads everything and commits it.
	produceNative(t, ts.log, "kg", []runnel.Record{{Partition: 1, Value: []byte("native")}})
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{ts.addr}, GroupID: "kgg", Topic: "kg",
		StartOffset: kafkago.FirstOffset, SessionTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		MaxWait: 200 * time.Millisecond, CommitInterval: 0})
	defer r.Close()
	for range len(codecs) + 1 {
		if _, err := r.ReadMessage(ctx); err != nil {
			t.Fatalf("kafka-go's group member: %v", err)
		}
	}
	if got := committedTotal(t, ts.log, "kgg"); got != int64(len(codecs)+1) {
		t.Errorf("kafka-go committed %d records in runnel, want %d", got, len(codecs)+1)
	}
	// Its group is listed, and deleted once it left.
	r.Close()
	if groups, err := cl.ListGroups(ctx, &kafkago.ListGroupsRequest{}); err != nil || len(groups.Groups) != 1 || groups.Groups[0].GroupID != "kgg" {
		t.Errorf("kafka-go's ListGroups: %+v, %v", groups, err)
	}
	if del, err := cl.DeleteGroups(ctx, &kafkago.DeleteGroupsRequest{GroupIDs: []string{"kgg"}}); err != nil || del.Errors["kgg"] != nil {
		t.Errorf("kafka-go's DeleteGroups: %+v, %v", del, err)
	}
}

// checkStored reads a topic natively: one record for each key, of value
// "v", time at and one header src=src.
func checkStored(t *testing.T, l *runnel.Log, topic string, keys []string, src string, at time.Time) {
	t.Helper()
	stored := readNative(t, l, topic, len(keys))
	for _, key := range keys {
		r := findKey(stored, key)
		if r == nil || string(r.Value) != "v" || !r.Time.Equal(at) || len(r.Headers) != 1 || string(r.Headers[0].Value) != src {
			t.Errorf("%s's record %s stored as %+v", src, key, r)
		}
	}
}

// partitionZero sends every message to partition 0.
type partitionZero struct{}

func (partitionZero) Balance(kafkago.Message, ...int) int { return 0 }

// committedTotal sums a group's committed offsets in runnel.
func committedTotal(t *testing.T, l *runnel.Log, group string) int64 {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		return -1
	}
	var total int64
	for _, gt := range info.Topics {
		for _, gp := range gt.Partitions {
			total += max(gp.Committed, 0)
		}
	}
	return total
}

// sharedWith reports whether a Kafka member, holding kafkaHeld, and a
// native member n each own a part of the topic's partitions in runnel,
// together all of them, and the Kafka client holds exactly its part.
func sharedWith(t *testing.T, l *runnel.Log, group, topic string, n *polledNative, kafkaHeld []int) bool {
	kafkaOwned, nativeOwned, all := ownedByKind(t, l, group, topic)
	return all && len(kafkaOwned) > 0 && len(nativeOwned) > 0 &&
		slices.Equal(kafkaHeld, kafkaOwned) && slices.Equal(n.partitions(), nativeOwned)
}
