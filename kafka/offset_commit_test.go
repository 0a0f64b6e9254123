package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitOutsideRange: Kafka's OffsetCommit stores any offset at
// or above 0 without comparing it with the log; only the consumer that
// later fetches there learns (OFFSET_OUT_OF_RANGE) and resets. So are
// commits from outside the group's membership (generation -1: kadm's
// CommitOffsets, kafka-consumer-groups --reset-offsets, and standalone
// consumers that assign partitions and commit, as kafka-python's and
// librdkafka's do), which got OFFSET_OUT_OF_RANGE below the log start or
// past the end: a standalone consumer that fell behind retention could
// not commit what it processed.
func TestCommitOutsideRange(t *testing.T) {
	ts := startServer(t, nil)
	start, end := trimmedTopic(t, ts, "cr")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(ts.client())
	for _, at := range []int64{3, end + 10} {
		resp, err := adm.CommitOffsets(ctx, "crgrp", kadm.Offsets{"cr": {0: {Topic: "cr", Partition: 0, At: at}}})
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Errorf("commit of offset %d (the log holds [%d, %d)) from outside the group: %v, want it stored as Kafka does", at, start, end, err)
			continue
		}
		fetched, err := adm.FetchOffsets(ctx, "crgrp")
		if o, ok := fetched.Lookup("cr", 0); err != nil || !ok || o.At != at {
			t.Errorf("after committing %d the group's offset is %+v (%v)", at, o, err)
		}
	}
}

// TestOffsetFetchOneDamagedTopic: a group's damaged offsets file for one
// topic gets that topic's partitions KAFKA_STORAGE_ERROR, and the other
// topics their commits; the whole group got COORDINATOR_NOT_AVAILABLE,
// which clients retry for ever.
func TestOffsetFetchOneDamagedTopic(t *testing.T) {
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, topic := range []string{"a", "t"} {
		ts.createTopic(topic, 1)
		produceNative(t, ts.log, topic, []runnel.Record{{Value: []byte("1")}, {Value: []byte("2")}})
		if _, err := ts.log.ResetGroupOffsets(ctx, "g", topic, runnel.AtOffset(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	damageOffsets(t, ts.log, "g", "a")
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 7, "g"
	for _, topic := range []string{"a", "t"} {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
	}
	resp := ts.raw().request(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 2 {
		t.Fatalf("OffsetFetch: code %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	for _, rt := range resp.Topics {
		p := rt.Partitions[0]
		switch {
		case rt.Topic == "a" && p.ErrorCode != kerr.KafkaStorageError.Code:
			t.Errorf("a/0 (damaged offsets): code %d, want KAFKA_STORAGE_ERROR", p.ErrorCode)
		case rt.Topic == "t" && (p.ErrorCode != 0 || p.Offset != 1):
			t.Errorf("t/0: code %d offset %d, want its commit at 1", p.ErrorCode, p.Offset)
		}
	}
}

// damageOffsets flips a bit of the header of group's offsets file for
// topic: DescribeGroup can no longer read that topic, and says so with a
// *runnel.GroupTopicError. It returns the file's path.
func damageOffsets(t *testing.T, l *runnel.Log, group, topic string) string {
	t.Helper()
	path := filepath.Join(l.Dir(), "groups", group, topic+".offsets")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[12] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOffsetFetchMetadataEmpty: Kafka answers an offset committed
// without metadata, and a partition with no commit, with metadata "",
// at every version (its OffsetFetchResponse.NO_METADATA); runnel
// answered null, which kafka-python hands its callers as None where
// Kafka's give "".
func TestOffsetFetchMetadataEmpty(t *testing.T) {
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts.createTopic("md", 2)
	produceNative(t, ts.log, "md", []runnel.Record{{Value: []byte("1")}, {Value: []byte("2")}})
	adm := kadm.NewClient(ts.client())
	resp, err := adm.CommitOffsets(ctx, "mdgrp", kadm.Offsets{"md": {0: {Topic: "md", Partition: 0, At: 1}}})
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	checkMetadata := func(version int16, what, topic string, partition int32, metadata *string) {
		t.Helper()
		switch {
		case metadata == nil:
			t.Errorf("v%d %s %s/%d: metadata null, want \"\"", version, what, topic, partition)
		case *metadata != "":
			t.Errorf("v%d %s %s/%d: metadata %q, want \"\"", version, what, topic, partition, *metadata)
		}
	}
	for _, version := range []int16{1, 5, 7, 8, 9} {
		for _, what := range []string{"asked for", "all"} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version, req.Group = version, "mdgrp"
			if version >= 8 {
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = "mdgrp"
				if what == "asked for" {
					rt := kmsg.NewOffsetFetchRequestGroupTopic()
					rt.Topic, rt.Partitions = "md", []int32{0, 1}
					rg.Topics = append(rg.Topics, rt)
				}
				req.Groups = append(req.Groups, rg)
			} else if what == "asked for" {
				rt := kmsg.NewOffsetFetchRequestTopic()
				rt.Topic, rt.Partitions = "md", []int32{0, 1}
				req.Topics = append(req.Topics, rt)
			} else if version < 2 {
				continue // all topics: v2+
			}
			r := ts.raw().request(req).(*kmsg.OffsetFetchResponse)
			n := 0
			for _, rt := range r.Topics {
				for _, p := range rt.Partitions {
					checkMetadata(version, what, rt.Topic, p.Partition, p.Metadata)
					n++
				}
			}
			for _, g := range r.Groups {
				for _, rt := range g.Topics {
					for _, p := range rt.Partitions {
						checkMetadata(version, what, rt.Topic, p.Partition, p.Metadata)
						n++
					}
				}
			}
			if n == 0 {
				t.Errorf("v%d %s: no partitions answered", version, what)
			}
		}
	}
}

// TestOffsetFetchV1GroupError: OffsetFetch v1's response has no group
// error code (v2 added it), so a group-level error (here INVALID_GROUP_ID
// for a name runnel cannot keep) is answered in every partition the
// request names, with offset -1, as Kafka's broker answers v0 and v1
// (OffsetFetchRequest.getErrorResponse). The encoding dropped the code,
// and the client read an answer with no partitions and no error.
func TestOffsetFetchV1GroupError(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("t", 2)
	rc := ts.raw()
	long := strings.Repeat("é", 200) // a directory name past names.MaxLen
	for _, version := range []int16{1, 2, 7} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = version, long
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0, 1}
		req.Topics = append(req.Topics, rt)
		resp := rc.request(req).(*kmsg.OffsetFetchResponse)
		code := resp.ErrorCode
		if version < 2 {
			var got []string
			for _, rt := range resp.Topics {
				for _, p := range rt.Partitions {
					got = append(got, fmt.Sprintf("%s/%d: code %d offset %d", rt.Topic, p.Partition, p.ErrorCode, p.Offset))
				}
			}
			want := []string{"t/0: code 24 offset -1", "t/1: code 24 offset -1"}
			if !slices.Equal(got, want) {
				t.Errorf("v%d: partitions %q, want %q", version, got, want)
			}
			continue
		}
		if code != kerr.InvalidGroupID.Code {
			t.Errorf("v%d: code %d, want INVALID_GROUP_ID", version, code)
		}
	}
}

// TestCommitOutsideGroupWithNativeMember: a commit from outside the group
// (generation -1, no member id: an admin's, as librdkafka's
// AlterConsumerGroupOffsets and kadm's CommitOffsets send it) while the
// group's only member is a native runnel consumer that owns the partition
// gets UNKNOWN_MEMBER_ID,
// as when its members are Kafka clients and as Kafka answers a group that
// is not empty, instead of ILLEGAL_GENERATION; nothing is committed.
func TestCommitOutsideGroupWithNativeMember(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("nm", 1)
	produceSpread(t, ts.log, "nm", 1, 3, "v")
	nc, err := ts.log.Consumer("nm", &runnel.ConsumerOptions{Group: "nmg", Start: runnel.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.TryPoll(); err != nil { // it owns the partition once it polls
		t.Fatal(err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "nmg", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "nm"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 2
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if code := ts.raw().request(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Errorf("commit from outside a group with a native member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	if g, err := ts.log.DescribeGroup("nmg"); err != nil || g.Topics[0].Partitions[0].Committed != -1 {
		t.Errorf("the group after the refused commit: %+v, %v; want no commit", g, err)
	}
}
