package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAdminTopics(t *testing.T) {
	ts := startServer(t, nil)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()

	retention := "3600000"
	segment := "1048576"
	retained := "10485760"
	res, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": &retention, "segment.bytes": &segment, "retention.bytes": &retained}, "made")
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	info, err := ts.log.DescribeTopic("made")
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Partitions != 3 || info.Config.RetentionAge != time.Hour || info.Config.SegmentBytes != 1<<20 || info.Config.RetentionBytes != 10<<20 {
		t.Fatalf("runnel topic config %+v", info.Config)
	}

	// The configs read back.
	rcs, err := adm.DescribeTopicConfigs(ctx, "made")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("made", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs: %v %v", err, rc.Err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["retention.ms"] != "3600000" || got["segment.bytes"] != "1048576" || got["retention.bytes"] != "10485760" {
		t.Fatalf("described configs %v", got)
	}
	// A config is reported as set (a topic override) only where it is
	// not the default, as tools list a topic's overrides.
	overrides := func(topic string) []string {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("DescribeTopicConfigs %s: %v %v", topic, err, rc.Err)
		}
		var set []string
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				set = append(set, c.Key)
			}
		}
		slices.Sort(set)
		return set
	}
	if set := overrides("made"); !slices.Equal(set, []string{"retention.bytes", "retention.ms", "segment.bytes"}) {
		t.Errorf("configs set on made: %v", set)
	}
	if res, err := adm.CreateTopic(ctx, 1, 1, nil, "plain"); err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v %v", err, res.Err)
	}
	if set := overrides("plain"); len(set) != 0 {
		t.Errorf("configs set on a topic made with none: %v", set)
	}

	// Errors: an existing topic, a config runnel lacks, a replication
	// factor a single broker cannot have, a bad name.
	res, _ = adm.CreateTopic(ctx, 1, 1, nil, "made")
	if !isCode(res.Err, kerr.TopicAlreadyExists) {
		t.Errorf("existing topic: %v", res.Err)
	}
	compact := "compact"
	res, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "compacted")
	if !isCode(res.Err, kerr.InvalidConfig) {
		t.Errorf("cleanup.policy=compact: %v", res.Err)
	}
	res, _ = adm.CreateTopic(ctx, 1, 3, nil, "replicated")
	if !isCode(res.Err, kerr.InvalidReplicationFactor) {
		t.Errorf("replication factor 3: %v", res.Err)
	}
	res, _ = adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
	if !isCode(res.Err, kerr.InvalidTopicException) {
		t.Errorf("bad name: %v", res.Err)
	}

	// Metadata lists it; DeleteTopics removes it.
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td, ok := md.Topics["made"]; !ok || len(td.Partitions) != 3 {
		t.Fatalf("metadata: %+v", md.Topics)
	}
	if md.Cluster != ts.srv.ClusterID() || len(md.Brokers) != 1 || md.Brokers[0].NodeID != 0 {
		t.Fatalf("cluster %q brokers %+v", md.Cluster, md.Brokers)
	}
	dr, err := adm.DeleteTopics(ctx, "made")
	if err != nil || dr["made"].Err != nil {
		t.Fatalf("DeleteTopics: %v %v", err, dr["made"].Err)
	}
	if _, err := ts.log.DescribeTopic("made"); err == nil {
		t.Fatal("topic still exists after DeleteTopics")
	}
}

func isCode(err error, want *kerr.Error) bool {
	var ke *kerr.Error
	return err != nil && errors.As(err, &ke) && ke.Code == want.Code
}

func TestClusterIDPersists(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s1, err := NewServer(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewServer(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s1.ClusterID() == "" || s1.ClusterID() != s2.ClusterID() {
		t.Fatalf("cluster ids %q and %q", s1.ClusterID(), s2.ClusterID())
	}
	s1.Close()
	s2.Close()
	// Producer ids never repeat across servers on one directory.
	a, _ := s1.pids.allocate(context.Background())
	b, _ := s2.pids.allocate(context.Background())
	if a == b {
		t.Fatalf("two servers handed out producer id %d", a)
	}
}

func TestAutoCreateTopics(t *testing.T) {
	off := startServer(t, nil)
	cl := off.client(kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation(), kgo.RecordRetries(2), kgo.ProduceRequestTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("produce to an unknown topic succeeded with auto-creation off")
	}
	if _, err := off.log.DescribeTopic("auto"); err == nil {
		t.Fatal("topic auto-created with auto-creation off")
	}

	on := startServer(t, &Options{AutoCreateTopics: true, DefaultPartitions: 2})
	cl = on.client(kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	info, err := on.log.DescribeTopic("auto")
	if err != nil || info.Config.Partitions != 2 {
		t.Fatalf("auto-created topic: %+v %v", info.Config, err)
	}
}

func TestListOffsetsAndLeaderEpochs(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("lo", 1)
	produceNative(t, ts.log, "lo", []runnel.Record{
		{Value: []byte("a"), Time: time.UnixMilli(1000)},
		{Value: []byte("b"), Time: time.UnixMilli(2000)},
		{Value: []byte("c"), Time: time.UnixMilli(3000)},
	})
	rc := ts.raw()
	// One query a request: Kafka refuses a partition named twice.
	for at, want := range map[int64]int64{-2: 0, -1: 3, 1500: 1, 3000: 2, 9000: -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 6
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, at
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := rc.request(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != want {
			t.Errorf("timestamp %d: offset %d code %d, want %d", at, p.Offset, p.ErrorCode, want)
		}
	}

	ep := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ep.Version = 3
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "lo"
	epp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	epp.Partition, epp.LeaderEpoch, epp.CurrentLeaderEpoch = 0, 0, 0
	et.Partitions = append(et.Partitions, epp)
	ep.Topics = append(ep.Topics, et)
	er := rc.request(ep).(*kmsg.OffsetForLeaderEpochResponse)
	if p := er.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.EndOffset != 3 || p.LeaderEpoch != 0 {
		t.Errorf("OffsetForLeaderEpoch: %+v", p)
	}
}

func TestGroupAdmin(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("ga", 2)
	produceSpread(t, ts.log, "ga", 2, 3, "v")
	cl := ts.client(groupOpts("gagrp", "ga")...)
	pollN(t, cl, 6)
	if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg["gagrp"]; !ok {
		t.Fatalf("ListGroups: %v", lg.Groups())
	}
	dg, err := adm.DescribeGroups(ctx, "gagrp")
	if err != nil {
		t.Fatal(err)
	}
	g := dg["gagrp"]
	if g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("DescribeGroups: state %q, %d members", g.State, len(g.Members))
	}
	offs, err := adm.FetchOffsets(ctx, "gagrp")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, ok := offs.Lookup("ga", p); !ok || o.At != 3 {
			t.Errorf("FetchOffsets partition %d: %+v", p, o)
		}
	}
	// A native member appears in DescribeGroups too.
	nc, err := ts.log.Consumer("ga", &runnel.ConsumerOptions{Group: "gagrp", MemberName: "native-one"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	dg, err = adm.DescribeGroups(ctx, "gagrp")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range dg["gagrp"].Members {
		found = found || m.ClientID == "runnel"
	}
	if !found {
		t.Errorf("the native member is not described: %+v", dg["gagrp"].Members)
	}
}

// TestDescribeGroupsLongMemberID: a Kafka member whose id makes a runnel
// member name longer than runnel keeps (39 bytes) is described once, as
// the Kafka member it is: the truncated name did not match the server's
// own member, which was described a second time as a native one.
func TestDescribeGroupsLongMemberID(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("lm", 1)
	produceSpread(t, ts.log, "lm", 1, 1, "v")
	cl := ts.client(append(groupOpts("lmgrp", "lm"), kgo.ClientID("consumer-orders-service-1"))...)
	pollN(t, cl, 1)
	dg, err := kadm.NewClient(ts.client()).DescribeGroups(context.Background(), "lmgrp")
	if err != nil {
		t.Fatal(err)
	}
	if g := dg["lmgrp"]; len(g.Members) != 1 || g.Members[0].ClientID != "consumer-orders-service-1" {
		t.Errorf("DescribeGroups: %+v, want the Kafka member alone", g.Members)
	}
}

func TestDeleteGroups(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("dg", 1)
	produceSpread(t, ts.log, "dg", 1, 1, "v")
	cl := ts.client(groupOpts("dggrp", "dg")...)
	pollN(t, cl, 1)
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	res, err := adm.DeleteGroups(ctx, "dggrp", "nosuchgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !isCode(res["dggrp"].Err, kerr.NonEmptyGroup) {
		t.Errorf("deleting an active group: %v", res["dggrp"].Err)
	}
	if !isCode(res["nosuchgroup"].Err, kerr.GroupIDNotFound) {
		t.Errorf("deleting a missing group: %v", res["nosuchgroup"].Err)
	}
	// A group with offsets and no live member goes; named twice, it is
	// answered once, as Kafka answers each group named (kadm, which reads
	// the answers by group, took a second answer for the last).
	if _, err := ts.log.ResetGroupOffsets(ctx, "idle", "dg", runnel.Earliest, nil); err != nil {
		t.Fatal(err)
	}
	res, err = adm.DeleteGroups(ctx, "idle", "nosuchgroup", "idle")
	if err != nil || res["idle"].Err != nil {
		t.Fatalf("deleting an idle group: %v, %v", err, res["idle"].Err)
	}
	if _, err := ts.log.DescribeGroup("idle"); !errors.Is(err, runnel.ErrGroupNotFound) {
		t.Errorf("the deleted group: %v, want ErrGroupNotFound", err)
	}

	// Once its member left, the group that was active goes too: it is no
	// longer listed, it is described as Dead, as Kafka describes a group
	// it does not know, and a member that comes back starts a new group,
	// at generation 1, from the start of the topic.
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	res, err = adm.DeleteGroups(ctx, "dggrp")
	if err != nil || res["dggrp"].Err != nil {
		t.Fatalf("deleting the group its member left: %v, %v", err, res["dggrp"].Err)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg["dggrp"]; ok {
		t.Errorf("ListGroups lists the deleted group: %v", lg.Groups())
	}
	dg, err := adm.DescribeGroups(ctx, "dggrp")
	if err != nil {
		t.Fatal(err)
	}
	if g := dg["dggrp"]; g.Err != nil || g.State != "Dead" || len(g.Members) != 0 {
		t.Errorf("DescribeGroups of the deleted group: state %q, %d members, %v", g.State, len(g.Members), g.Err)
	}
	again := ts.client(groupOpts("dggrp", "dg")...)
	if recs := pollN(t, again, 1); recs[0].Offset != 0 {
		t.Errorf("the group made again resumed at offset %d, want 0", recs[0].Offset)
	}
	if _, gen := again.GroupMetadata(); gen != 1 {
		t.Errorf("the group made again is at generation %d, want 1", gen)
	}
}

// TestCreateTopicsMaxPartitions: a CreateTopics request for more
// partitions than Options.MaxPartitions gets INVALID_PARTITIONS and
// creates nothing; one at the bound creates the topic. The bound is on
// the whole request: of topics that together pass it, those past it are
// refused. The default bound holds without options, and
// DefaultPartitions may not exceed it.
func TestCreateTopicsMaxPartitions(t *testing.T) {
	ts := startServer(t, &Options{MaxPartitions: 4})
	adm := kadm.NewClient(ts.client())
	ctx := context.Background()
	res, err := adm.CreateTopic(ctx, 5, 1, nil, "wide")
	if !isCode(res.Err, kerr.InvalidPartitions) {
		t.Fatalf("5 partitions with MaxPartitions 4: %v %v; want INVALID_PARTITIONS", err, res.Err)
	}
	if _, err := ts.log.DescribeTopic("wide"); !errors.Is(err, runnel.ErrTopicNotFound) {
		t.Fatalf("refused topic: DescribeTopic says %v; want it not created", err)
	}
	if res, err := adm.CreateTopic(ctx, 4, 1, nil, "wide"); err != nil || res.Err != nil {
		t.Fatalf("4 partitions with MaxPartitions 4: %v %v", err, res.Err)
	}
	if info, err := ts.log.DescribeTopic("wide"); err != nil || len(info.Partitions) != 4 {
		t.Fatalf("created topic: %d partitions, %v", len(info.Partitions), err)
	}
	many, err := adm.CreateTopics(ctx, 2, 1, nil, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, name := range []string{"a", "b", "c"} {
		_, derr := ts.log.DescribeTopic(name)
		switch r := many[name]; {
		case r.Err == nil && derr == nil:
		case isCode(r.Err, kerr.InvalidPartitions) && errors.Is(derr, runnel.ErrTopicNotFound):
			refused++
		default:
			t.Errorf("topic %s of three with 2 partitions each: %v, DescribeTopic %v", name, r.Err, derr)
		}
	}
	if refused != 1 {
		t.Errorf("three topics of 2 partitions with MaxPartitions 4: %d refused; want 1", refused)
	}

	def := startServer(t, nil)
	res, err = kadm.NewClient(def.client()).CreateTopic(ctx, DefaultMaxPartitions+1, 1, nil, "wider")
	if !isCode(res.Err, kerr.InvalidPartitions) {
		t.Fatalf("%d partitions by default: %v %v; want INVALID_PARTITIONS", DefaultMaxPartitions+1, err, res.Err)
	}
	if _, err := NewServer(ts.log, &Options{DefaultPartitions: 8, MaxPartitions: 4}); err == nil {
		t.Fatal("NewServer took DefaultPartitions above MaxPartitions")
	}
}

// TestCommitSentinelOffsets: a commit of -2 or -1, as KafkaJS's admin
// resetOffsets sends for earliest and latest, stores the partition's
// start or end; other negative offsets are refused and change nothing.
// Both from outside the group (an admin) and from a member.
func TestCommitSentinelOffsets(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("sn", 1)
	produceSpread(t, ts.log, "sn", 1, 5, "v")
	ctx := context.Background()
	committed := func(group string) int64 {
		t.Helper()
		info, err := ts.log.DescribeGroup(group)
		if err != nil {
			t.Fatal(err)
		}
		return info.Topics[0].Partitions[0].Committed
	}

	adm := kadm.NewClient(ts.client())
	commit := func(at int64) error {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "sn", Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, "sngrp", os)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Error()
	}
	for _, c := range []struct{ at, want int64 }{{3, 3}, {-1, 5}, {-2, 0}} {
		if err := commit(c.at); err != nil || committed("sngrp") != c.want {
			t.Errorf("admin commit of %d: %v, committed %d, want %d", c.at, err, committed("sngrp"), c.want)
		}
	}
	if err := commit(-3); !isCode(err, kerr.InvalidCommitOffsetSize) || committed("sngrp") != 0 {
		t.Errorf("admin commit of -3: %v, committed %d; want INVALID_COMMIT_OFFSET_SIZE and 0 kept", err, committed("sngrp"))
	}

	cl := ts.client(append(groupOpts("sngrp2", "sn"), kgo.DisableAutoCommit())...)
	pollN(t, cl, 5)
	for _, c := range []struct{ at, want int64 }{{-1, 5}, {-2, 0}} {
		var cerr error
		cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"sn": {0: {Epoch: -1, Offset: c.at}}},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				cerr = err
				if err == nil {
					cerr = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
			})
		if cerr != nil || committed("sngrp2") != c.want {
			t.Errorf("member commit of %d: %v, committed %d, want %d", c.at, cerr, committed("sngrp2"), c.want)
		}
	}
}

// TestAdminWaitsBounded: while another process holds a topic's admin
// lock, DeleteTopics and CreateTopics give up at their request's timeout
// with REQUEST_TIMED_OUT and leave the topic; AlterConfigs waits for the
// other call and then applies.
func TestAdminWaitsBounded(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("busy", 1)
	other, err := runnel.Open(ts.log.Dir(), nil) // another process's Log
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- other.AlterTopic("busy", func(*runnel.TopicConfig) {
			close(held)
			<-release
		})
	}()
	<-held

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TopicNames, del.TimeoutMillis = 4, []string{"busy"}, 100
	if code := ts.raw().request(del).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Errorf("DeleteTopics while another process holds the topic: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if _, err := ts.log.DescribeTopic("busy"); err != nil {
		t.Fatalf("the topic after a timed-out DeleteTopics: %v", err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version, create.TimeoutMillis = 5, 100
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "busy", NumPartitions: 1, ReplicationFactor: 1}}
	if code := ts.raw().request(create).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Errorf("CreateTopics while another process holds the name: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}

	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	alter.Version = 1
	alter.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "busy",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("60000")}}}}
	rc := ts.raw()
	rc.send(alter)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resp, err := rc.read(alter)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("AlterConfigs after the other call: %v", kerr.ErrorForCode(code))
	}
	if info, err := ts.log.DescribeTopic("busy"); err != nil || info.Config.RetentionAge != time.Minute {
		t.Fatalf("config after AlterConfigs: %+v, %v", info.Config, err)
	}
}

// TestGroupsWithOneDamagedTopic: a group whose offsets file for one topic
// is damaged is listed and described as its other topics show it: Stable,
// with their live members. DeleteGroups refuses it while those members
// live (NON_EMPTY_GROUP), and after with UNKNOWN_SERVER_ERROR (logged
// with the file): runnel deletes a damaged offsets file only when forced.
// Any error from DescribeGroup hid the whole group: Empty, no members,
// and DeleteGroups got COORDINATOR_NOT_AVAILABLE, which clients retry.
func TestGroupsWithOneDamagedTopic(t *testing.T) {
	ts := startServer(t, fastGroups)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, topic := range []string{"a", "t"} {
		ts.createTopic(topic, 1)
		if _, err := ts.log.ResetGroupOffsets(ctx, "g", topic, runnel.Earliest, nil); err != nil {
			t.Fatal(err)
		}
	}
	path := damageOffsets(t, ts.log, "g", "a")
	nc, err := ts.log.Consumer("t", &runnel.ConsumerOptions{Group: "g", MemberName: "native-one"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	adm := kadm.NewClient(ts.client())
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := lg["g"]; !ok || g.State != "Stable" {
		t.Errorf("ListGroups: %+v, want g, Stable", lg)
	}
	dg, err := adm.DescribeGroups(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	g := dg["g"]
	if g.Err != nil || g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("DescribeGroups: state %q, members %+v, %v; want Stable and the native member", g.State, g.Members, g.Err)
	}
	if m := g.Members[0]; m.ClientID != "runnel" || !strings.Contains(m.MemberID, "native-one") {
		t.Errorf("DescribeGroups: member %+v, want the native member", m)
	}

	deleteGroup := func() int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = 2, []string{"g"}
		return ts.raw().request(req).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
	}
	if code := deleteGroup(); code != kerr.NonEmptyGroup.Code {
		t.Errorf("DeleteGroups with a live member: code %d, want NON_EMPTY_GROUP", code)
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if code := deleteGroup(); code != kerr.UnknownServerError.Code {
		t.Errorf("DeleteGroups of the idle group with a damaged file: code %d, want UNKNOWN_SERVER_ERROR", code)
	}
	if !strings.Contains(ts.logs.String(), path) {
		t.Errorf("the server log does not name %s:\n%s", path, ts.logs.String())
	}
	if info, err := ts.log.DescribeGroup("g"); len(info.Topics) != 1 {
		t.Errorf("after the refused DeleteGroups: %+v, %v; want t still there", info, err)
	}
}

// TestDescribeGroupsClientHost: a Kafka member's host is described as
// Kafka's broker describes it, its address as Java's InetAddress prints
// one without a host name ("/127.0.0.1", an IPv6 address in eight groups
// uncompressed), which kafka-consumer-groups.sh --describe shows in its
// HOST column, where it was the bare address.
func TestDescribeGroupsClientHost(t *testing.T) {
	ts := startServer(t, fastGroups)
	ts.createTopic("ch", 1)
	produceSpread(t, ts.log, "ch", 1, 1, "v")
	pollN(t, ts.client(groupOpts("chgrp", "ch")...), 1)
	dg, err := kadm.NewClient(ts.client()).DescribeGroups(context.Background(), "chgrp")
	if err != nil {
		t.Fatal(err)
	}
	if g := dg["chgrp"]; len(g.Members) != 1 || g.Members[0].ClientHost != "/127.0.0.1" {
		t.Errorf("DescribeGroups: %+v, want one member with host /127.0.0.1", g.Members)
	}
	for addr, want := range map[string]string{
		"127.0.0.1:9092":         "/127.0.0.1",
		"[::1]:9092":             "/0:0:0:0:0:0:0:1",
		"[fe80::a:1%eth0]:9092":  "/fe80:0:0:0:0:0:a:1%eth0",
		"[::ffff:10.1.2.3]:9092": "/10.1.2.3",
		"[2001:db8::ff00]:9092":  "/2001:db8:0:0:0:0:0:ff00",
		"not an address at all":  "not an address at all",
	} {
		if got := clientHost(addr); got != want {
			t.Errorf("clientHost(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestDeleteTopicsNameNoTopicHas: DeleteTopics of a name no topic can have
// (empty, with a space, too long) answers UNKNOWN_TOPIC_OR_PARTITION, as
// Kafka's controller answers every name it finds no topic of (it checks
// no name rule there), which a tool deleting a topic that may not exist
// takes as "already gone", instead of INVALID_TOPIC_EXCEPTION.
func TestDeleteTopicsNameNoTopicHas(t *testing.T) {
	ts := startServer(t, nil)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version, req.TimeoutMillis = 5, 30000
	req.TopicNames = []string{"", "bad name", strings.Repeat("x", 250), "missing"}
	for _, rt := range ts.raw().request(req).(*kmsg.DeleteTopicsResponse).Topics {
		if rt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("DeleteTopics of %.20q: %v, want UNKNOWN_TOPIC_OR_PARTITION", *rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
}

// TestDataRequestsNameNoTopicHas: a Produce, Fetch, ListOffsets,
// OffsetCommit, OffsetDelete or OffsetForLeaderEpoch naming a topic no
// topic can have (a space in it) is answered UNKNOWN_TOPIC_OR_PARTITION,
// as Kafka's broker answers a partition it does not host, which it checks
// before any name rule; only Metadata, CreateTopics and the config calls
// check the rule and answer INVALID_TOPIC_EXCEPTION, as here.
func TestDataRequestsNameNoTopicHas(t *testing.T) {
	ts := startServer(t, fastGroups)
	rc := ts.raw()
	const bad = "bad name"
	codes := map[string]int16{}

	codes["Produce"], _ = produceCode(t, rc.request(produceBatch(bad, 0, -1, -1, -1, "x", 9)))

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = 12, -1, 10, 1000
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = bad
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1000
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	codes["Fetch"] = rc.request(fetch).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version, lo.ReplicaID = 7, -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = bad
	lt.Partitions = append(lt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
	lo.Topics = append(lo.Topics, lt)
	codes["ListOffsets"] = rc.request(lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.Generation = 8, "g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = bad
	ot.Partitions = append(ot.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	oc.Topics = append(oc.Topics, ot)
	codes["OffsetCommit"] = rc.request(oc).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode

	ts.createTopic("t", 1)
	if _, err := ts.log.ResetGroupOffsets(context.Background(), "g", "t", runnel.AtOffset(0), nil); err != nil {
		t.Fatal(err)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = bad
	odt.Partitions = append(odt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	od.Topics = append(od.Topics, odt)
	codes["OffsetDelete"] = rc.request(od).(*kmsg.OffsetDeleteResponse).Topics[0].Partitions[0].ErrorCode

	ep := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ep.Version = 3
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = bad
	et.Partitions = append(et.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
	ep.Topics = append(ep.Topics, et)
	codes["OffsetForLeaderEpoch"] = rc.request(ep).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(bad)
	md.Topics = append(md.Topics, mt)
	codes["Metadata"] = rc.request(md).(*kmsg.MetadataResponse).Topics[0].ErrorCode

	want := map[string]int16{"Metadata": kerr.InvalidTopicException.Code}
	for _, api := range []string{"Produce", "Fetch", "ListOffsets", "OffsetCommit", "OffsetDelete", "OffsetForLeaderEpoch"} {
		want[api] = kerr.UnknownTopicOrPartition.Code
	}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("codes for a topic named %q (-want +got):\n%s", bad, diff)
	}
}
