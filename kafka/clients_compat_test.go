package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
)

// KafkaJS and kafka-python against the server: admin, produce with every
// codec they have, group consumption and commits, offsets by timestamp,
// group deletion, a group shared by two of their processes and a native
// member, SASL, TLS, and (KafkaJS: kafka-python's producer is not
// idempotent) retries through a server restart. What they print is
// checked against the log directory.

func TestKafkaJS(t *testing.T) {
	lc := kafkaJS(t)
	t.Run("scenario", func(t *testing.T) { testClientScenario(t, lc) })
	t.Run("group", func(t *testing.T) { testClientGroup(t, lc) })
	t.Run("admin", func(t *testing.T) { testClientAdmin(t, lc) })
	t.Run("topics", func(t *testing.T) { testClientTopics(t, lc) })
	t.Run("sasl", func(t *testing.T) { testClientSASL(t, lc) })
	t.Run("tls", func(t *testing.T) { testClientTLS(t, lc) })
	t.Run("transaction", func(t *testing.T) { testKafkaJSTransaction(t, lc) })
	t.Run("restart", func(t *testing.T) { testClientRestart(t, lc) })
}

// testKafkaJSTransaction: KafkaJS's transactional producer fails at once
// on the broker's TRANSACTIONAL_ID_AUTHORIZATION_FAILED and stores
// nothing. (The transaction coordinator was "not available", which it
// retried until its retries ran out.) kafka-python 2.0 has no
// transactions.
func testKafkaJSTransaction(t *testing.T, lc langClient) {
	ts := startServer(t, nil)
	ts.createTopic("tx", 1)
	evs := lc.run(t, "transaction", map[string]string{"BROKER": ts.addr, "TOPIC": "tx"})
	refused := ofKind(evs, "refused")
	if len(refused) != 1 || !slices.Contains(refused[0].Names, "Transactional Id authorization failed") {
		t.Errorf("%s's transactional producer: %+v; want it refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED", lc.name, evs)
	}
	if _, end, err := ts.log.PartitionOffsets("tx", 0); err != nil || end != 0 {
		t.Errorf("the topic ends at %d (%v) after a refused transaction, want 0", end, err)
	}
}

func TestKafkaPython(t *testing.T) {
	lc := kafkaPython(t)
	t.Run("scenario", func(t *testing.T) { testClientScenario(t, lc) })
	t.Run("group", func(t *testing.T) { testClientGroup(t, lc) })
	t.Run("admin", func(t *testing.T) { testClientAdmin(t, lc) })
	t.Run("topics", func(t *testing.T) { testClientTopics(t, lc) })
	t.Run("old-api", func(t *testing.T) { testKafkaPythonOldAPI(t, lc) })
	t.Run("admin-more", func(t *testing.T) { testKafkaPythonAdminMore(t, lc) })
	t.Run("sasl", func(t *testing.T) { testClientSASL(t, lc) })
	t.Run("tls", func(t *testing.T) { testClientTLS(t, lc) })
}

// testKafkaPythonOldAPI: a kafka-python consumer pinned to an old Kafka's
// protocol (api_version) fails each call the server refuses the version
// of with UnsupportedVersionError, and makes the others: ListOffsets v0,
// Fetch v0-3 and OffsetCommit v0-1 are answered with UNSUPPORTED_VERSION
// in each partition, as their responses have no other place for it. (The
// server closed the connection, and kafka-python connected again and
// asked again without end.)
func testKafkaPythonOldAPI(t *testing.T, lc langClient) {
	ts := startServer(t, nil)
	ts.createTopic("old", 1)
	produceSpread(t, ts.log, "old", 1, 3, "v")
	refused := "UnsupportedVersionError"
	for _, tc := range []struct {
		version string
		want    map[string]string // call: how it ended
	}{
		// ListOffsets v0, Fetch v2, OffsetCommit v2.
		{"0.10.0", map[string]string{"beginning_offsets": refused, "poll": refused, "commit": "ok"}},
		// ListOffsets v1, Fetch v3.
		{"0.10.2", map[string]string{"beginning_offsets": "ok", "poll": refused, "commit": "ok"}},
		// ListOffsets v0, Fetch v0, OffsetCommit v1.
		{"0.8.2", map[string]string{"beginning_offsets": refused, "poll": refused, "commit": refused}},
	} {
		evs := lc.run(t, "old-api", map[string]string{"BROKER": ts.addr, "TOPIC": "old", "GROUP": "oldgrp", "API_VERSION": tc.version})
		got := map[string]string{}
		for _, ev := range ofKind(evs, "call") {
			got[ev.Name] = ev.State
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s with api_version %s: %v, want %v", lc.name, tc.version, got, tc.want)
		}
	}
}

// testKafkaPythonAdminMore: the KafkaAdminClient calls the other steps
// leave out, answered as Kafka's broker answers them: describe_cluster,
// create_topics with validate_only and with a topic that exists beside a
// new one (the new one made, the call failing on the other), describe_topics
// of every topic and of a missing one, describe_configs of the broker and
// of one config of a topic with its synonyms, describe_consumer_groups of
// a live group (its member's client id, host and assignment) and with
// include_authorized_operations, list_consumer_groups of broker 0,
// delete_consumer_groups of a live and a missing group,
// list_consumer_group_offsets of partitions with and without commits, and
// the ACL calls, which the server does not offer and kafka-python refuses
// as against a Kafka broker without them (IncompatibleBrokerVersion).
func testKafkaPythonAdminMore(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	ts.createTopic("km", 2)
	produceSpread(t, ts.log, "km", 2, 3, "v")
	if _, err := ts.log.ResetGroupOffsets(context.Background(), "kg", "km", runnel.AtOffset(2), nil); err != nil {
		t.Fatal(err)
	}
	evs := lc.run(t, "admin-more", map[string]string{"BROKER": ts.addr, "TOPIC": "km", "NEW_TOPIC": "kmade", "GROUP": "kg", "LIVE_GROUP": "kl"})
	if c := ofKind(evs, "cluster"); len(c) != 1 || c[0].Value == nil || *c[0].Value == "" || c[0].Offset != 0 ||
		!slices.Equal(c[0].Names, []string{"0 " + ts.addr + " None"}) {
		t.Errorf("%s described the cluster as %+v; want an id, controller 0 and broker 0 at %s without a rack", lc.name, c, ts.addr)
	}
	wantCalls := map[string]string{
		"create validate_only":                   "ok",
		"create a new topic and an existing one": "TopicAlreadyExistsError",
		"delete group kl":                        "NonEmptyGroupError",
		"delete group missing":                   "GroupIdNotFoundError",
		"describe acls":                          "IncompatibleBrokerVersion",
		"create acls":                            "IncompatibleBrokerVersion",
		"delete acls":                            "IncompatibleBrokerVersion",
	}
	if diff := cmp.Diff(wantCalls, calls(evs)); diff != "" {
		t.Errorf("%s's admin calls (-want +got):\n%s", lc.name, diff)
	}
	names := func(kind string) []string {
		if evs := ofKind(evs, kind); len(evs) == 1 {
			return evs[0].Names
		}
		return nil
	}
	if slices.Contains(names("topics-after-validate"), "kmade") {
		t.Errorf("%s lists kmade after a validate_only create_topics", lc.name)
	}
	if d := names("described"); !slices.Contains(d, "kmade 0 3 False") || !slices.Contains(d, "km 0 2 False") {
		t.Errorf("%s described the topics as %q; want km with 2 partitions and kmade, made beside km's refusal, with 3", lc.name, d)
	}
	if d := names("described-missing"); !slices.Equal(d, []string{"missing 3"}) {
		t.Errorf("%s described a missing topic as %q, want UNKNOWN_TOPIC_OR_PARTITION (3)", lc.name, d)
	}
	if bc := ofKind(evs, "broker-configs"); len(bc) != 1 || bc[0].Error != 0 || !slices.Contains(bc[0].Names, "num.partitions") {
		t.Errorf("%s described the broker's configs as %+v", lc.name, bc)
	}
	if tc := ofKind(evs, "topic-config"); len(tc) != 1 || tc[0].Name != "retention.ms" || len(tc[0].Names) == 0 {
		t.Errorf("%s described km's retention.ms with its synonyms as %+v", lc.name, tc)
	}
	wantGroups := map[string]string{
		"kl": "Stable range 1 0 [kafka-python-live /127.0.0.1 km/0,km/1]",
		"kg": "Empty null 0 0 []",
	}
	gotGroups := map[string]string{}
	for _, ev := range ofKind(evs, "group") {
		gotGroups[ev.Name] = fmt.Sprintf("%s %s %d %d %v", ev.State, show64(ev.Value), ev.Members, ev.Error, ev.Names)
	}
	if diff := cmp.Diff(wantGroups, gotGroups); diff != "" {
		t.Errorf("%s described the groups (-want +got):\n%s", lc.name, diff)
	}
	if g := names("groups"); !slices.Contains(g, "kg consumer") || !slices.Contains(g, "kl consumer") {
		t.Errorf("%s listed the groups of broker 0 as %q", lc.name, g)
	}
	if o := names("offsets"); !slices.Equal(o, []string{"km/0@2", "km/9@-1", "missing/0@-1"}) {
		t.Errorf("%s listed the group's offsets of three partitions as %q; want km/0's commit and none for the others", lc.name, o)
	}
}

// testClientAdmin: the client reads a topic's partitions and its start
// and end offsets, sets a group's offset (KafkaJS: setOffsets; kafka-python
// reads a record after a seek, then commits) and reads it back, and
// deletes the topic. The group's id is one outside the topic rule, kept
// in an escaped directory (issue 13).
func testClientAdmin(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	ts.createTopic("adm", 2)
	produceSpread(t, ts.log, "adm", 1, 3, "v")
	const group = "adm grp:é/1"
	evs := lc.run(t, "admin", map[string]string{"BROKER": ts.addr, "TOPIC": "adm", "GROUP": group, "COMMIT": "2"})
	if ps := ofKind(evs, "partitions"); len(ps) != 1 || !slices.Equal(ps[0].Partitions, []int{0, 1}) {
		t.Errorf("%s read the partitions as %+v, want [0 1]", lc.name, ps)
	}
	for kind, want := range map[string]map[int]int64{"start": {0: 0, 1: 0}, "end": {0: 3, 1: 0}, "committed": {0: 2}} {
		got := map[int]int64{}
		for _, ev := range ofKind(evs, kind) {
			got[ev.Partition] = ev.Offset
		}
		if kind == "committed" {
			delete(got, 1) // KafkaJS lists partition 1 too, with -1
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s read the %s offsets as %v, want %v", lc.name, kind, got, want)
		}
	}
	for _, ev := range ofKind(evs, "record") { // kafka-python's, after its seek
		if ev.Partition != 0 || ev.Offset != 1 || show(ev.Value) != `"v-0-1"` {
			t.Errorf("%s read %+v after seeking to partition 0 offset 1", lc.name, ev)
		}
	}
	checkTopicDeleted(t, lc, ts, evs, "topics", "adm")
}

// testClientTopics: a group member of two topics reads every record of
// both, once, as stored. KafkaJS, which shuffles a fetch's partitions and
// so names a topic in two entries of most fetches, fetches at least ten
// times; it crashed at the first such fetch (UNKNOWN_SERVER_ERROR: each
// entry made the topic's reader anew and closed the other's).
func testClientTopics(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	parts := map[string]int{"ta": 4, "tb": 3}
	want := map[string]int{} // topic/partition/offset value: times read
	for topic, n := range parts {
		ts.createTopic(topic, n)
		produceSpread(t, ts.log, topic, n, 5, topic)
		for _, r := range readNative(t, ts.log, topic, n*5) {
			want[fmt.Sprintf("%s/%d/%d %s", topic, r.Partition, r.Offset, show(b64(r.Value)))] = 1
		}
	}
	evs := lc.run(t, "topics", map[string]string{
		"BROKER": ts.addr, "TOPICS": "ta,tb", "GROUP": "tg", "WANT": strconv.Itoa(len(want)), "FETCHES": "10",
	})
	read := map[string]int{}
	for _, ev := range ofKind(evs, "record") {
		read[fmt.Sprintf("%s/%d/%d %s", ev.Name, ev.Partition, ev.Offset, show(ev.Value))]++
	}
	if !maps.Equal(read, want) {
		t.Errorf("%s read %v, want each of %v once", lc.name, read, want)
	}
}

// testClientSASL: the client authenticates with PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 (kafka-python with Kafka's original raw exchange, after a
// v0 handshake), and a wrong password is refused.
func testClientSASL(t *testing.T, lc langClient) {
	ts := startServer(t, &Options{Credentials: testCredentials(t)})
	ts.createTopic("secret", 1)
	evs := lc.run(t, "sasl", map[string]string{"BROKER": ts.addr, "USER_NAME": "alice", "PASSWORD": "s3cret:with:colons"})
	var in, refused []string
	for _, ev := range ofKind(evs, "sasl") {
		if ev.Value == nil || *ev.Value == "wrong" || !slices.Equal(ev.Names, []string{"secret"}) {
			t.Errorf("%s authenticated: %+v", lc.name, ev)
		}
		in = append(in, ev.Name)
	}
	for _, ev := range ofKind(evs, "sasl-refused") {
		if ev.Value == nil || *ev.Value != "wrong" {
			t.Errorf("%s was refused with the right password: %+v", lc.name, ev)
		}
		refused = append(refused, ev.Name)
	}
	if len(in) != 3 || len(refused) != 3 {
		t.Errorf("%s authenticated with %v and was refused with %v; want both mechanisms in each", lc.name, in, refused)
	}
}

// testClientTLS: over TLS, with SCRAM-SHA-512 over it (Kafka's SASL_SSL),
// the client checks the server's certificate against the CA it is given,
// produces a record and lists the topics; the record is stored as sent.
func testClientTLS(t *testing.T, lc langClient) {
	ts, ca := tlsServer(t, testCredentials(t))
	ts.createTopic("sealed", 1)
	evs := lc.run(t, "tls", map[string]string{"BROKER": ts.addr, "CA_FILE": ca, "USER_NAME": "bob", "PASSWORD": "hunter2", "TOPIC": "sealed"})
	if got := ofKind(evs, "tls"); len(got) != 1 || !slices.Equal(got[0].Names, []string{"sealed"}) {
		t.Errorf("%s over TLS listed %+v, want the topic sealed", lc.name, got)
	}
	got := readNative(t, ts.log, "sealed", 1)[0]
	if string(got.Key) != "k" || string(got.Value) != "over tls" {
		t.Errorf("%s over TLS stored %q %q, want \"k\" \"over tls\"", lc.name, got.Key, got.Value)
	}
}

// b64 is how the scripts print bytes; nil stays null.
func b64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// show prints a base64 field as its text, or null.
func show(s *string) string {
	if s == nil {
		return "null"
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return "bad base64 " + *s
	}
	return strconv.Quote(string(b))
}

func testClientScenario(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	ts.createTopic("mixed", 2)
	nativeTime := time.UnixMilli(1_700_000_000_000)
	clientTime := nativeTime.Add(100 * time.Second)
	native := produceNative(t, ts.log, "mixed", []runnel.Record{
		{Partition: 0, Key: []byte("go"), Value: []byte("from Go"), Time: nativeTime,
			Headers: []runnel.Header{{Key: "h", Value: []byte("v")}, {Key: "bin", Value: []byte{0, 1, 0xff}},
				{Key: "empty", Value: []byte{}}, {Key: "null", Value: nil}}},
		{Partition: 1, Key: nil, Value: nil, Time: nativeTime},
		{Partition: 1, Key: []byte{}, Value: []byte{}, Time: nativeTime},
		{Partition: 1, Key: []byte{0xff, 0}, Value: []byte{0, 0xfe}, Time: nativeTime},
	})
	want := len(native) + 2*len(lc.codecs)
	evs := lc.run(t, "scenario", map[string]string{
		"BROKER": ts.addr, "TOPIC": "mixed", "NEW_TOPIC": "made", "GROUP": "g",
		"TIMESTAMP": strconv.FormatInt(clientTime.UnixMilli(), 10), "WANT": strconv.Itoa(want),
	})

	// CreateTopics with a config, DescribeConfigs of it, AlterConfigs of
	// it, and DescribeConfigs again.
	info, err := ts.log.DescribeTopic("made")
	if err != nil || len(info.Partitions) != 2 || info.Config.RetentionAge != 2*time.Hour {
		t.Errorf("topic made and altered by %s: %+v, %v", lc.name, info, err)
	}
	// It was made with min.insync.replicas=1 and compression.type=producer
	// too, which runnel does without a setting (fixed_configs.go), and
	// reports as what it does.
	for kind, want := range map[string]map[string]string{
		"config":  {"retention.ms": "3600000", "min.insync.replicas": "1", "compression.type": "uncompressed"},
		"altered": {"retention.ms": "7200000", "min.insync.replicas": "1", "compression.type": "uncompressed"},
	} {
		got := map[string]string{}
		for _, ev := range ofKind(evs, kind) {
			if _, ok := want[ev.Name]; ok && ev.Value != nil {
				got[ev.Name] = *ev.Value
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s read the configs %v after %s, want %v", lc.name, got, kind, want)
		}
	}

	// Produce: two records per codec, acknowledged at contiguous offsets
	// after the native record, and stored as sent.
	produced := ofKind(evs, "produced")
	var offsets []int64
	for _, ev := range produced {
		if ev.Error != 0 || ev.Partition != 0 {
			t.Errorf("%s produce with %s: %+v", lc.name, ev.Codec, ev)
		}
		offsets = append(offsets, ev.Offset)
	}
	slices.Sort(offsets)
	if len(offsets) != 2*len(lc.codecs) || offsets[0] != 1 || offsets[len(offsets)-1] != int64(len(offsets)) {
		t.Errorf("%s's records acknowledged at offsets %v", lc.name, offsets)
	}
	stored := readNative(t, ts.log, "mixed", want)
	for _, codec := range lc.codecs {
		a := findKey(stored, lc.name+"-"+codec+"-a")
		b := findKey(stored, lc.name+"-"+codec+"-b")
		switch {
		case a == nil || b == nil:
			t.Errorf("%s's %s records not stored", lc.name, codec)
		case string(a.Value) != "v" || len(a.Headers) != 1 || a.Headers[0].Key != "src" || string(a.Headers[0].Value) != lc.name:
			t.Errorf("%s's %s record stored as %+v", lc.name, codec, *a)
		case b.Value != nil || len(b.Headers) != 0:
			t.Errorf("%s's %s record with a null value stored as %+v", lc.name, codec, *b)
		case !a.Time.Equal(clientTime) || !b.Time.Equal(clientTime):
			t.Errorf("%s's %s records stored with times %v, %v, want %v", lc.name, codec, a.Time, b.Time, clientTime)
		}
	}

	// Consume as a group: every record once, as stored, the native ones
	// with nil and empty kept apart, in keys, values and header values,
	// and binary bytes as they are.
	checkConsumed(t, lc, ofKind(evs, "record"), stored)

	// Its commit is runnel's committed offsets: the end of each partition.
	g, err := ts.log.DescribeGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	committed := map[int]int64{}
	for _, gp := range g.Topics[0].Partitions {
		committed[gp.Partition] = gp.Committed
	}
	if committed[0] != int64(1+2*len(lc.codecs)) || committed[1] != 3 {
		t.Errorf("%s committed %v in runnel", lc.name, committed)
	}

	// Offsets by timestamp: partition 0's first record at or after the
	// clients' time is the first one it produced; partition 1 has none
	// (Kafka answers -1; a client may turn that into the end).
	for _, ev := range ofKind(evs, "offset-for-time") {
		if ev.Partition == 0 && ev.Offset != 1 || ev.Partition == 1 && ev.Offset != -1 && ev.Offset != 3 {
			t.Errorf("%s: offset for time %v in partition %d is %d", lc.name, clientTime, ev.Partition, ev.Offset)
		}
	}
	if n := len(ofKind(evs, "offset-for-time")); n != 2 {
		t.Errorf("%s printed %d offsets for time, want 2", lc.name, n)
	}

	// The group is listed, and Empty once its member left.
	if gs := ofKind(evs, "groups"); len(gs) != 1 || !slices.Contains(gs[0].Names, "g") {
		t.Errorf("%s listed groups %+v", lc.name, gs)
	}
	if gs := ofKind(evs, "group"); len(gs) != 1 || gs[0].State != "Empty" || gs[0].Members != 0 {
		t.Errorf("%s described the group as %+v", lc.name, gs)
	}

	// DeleteGroups removes it, from the listing and from runnel. Before,
	// the client reads its offsets, reset to the earliest if it can.
	evs = lc.run(t, "delete-group", map[string]string{"BROKER": ts.addr, "GROUP": "g", "TOPIC": "mixed"})
	wantRead := committed
	if lc.resets {
		wantRead = map[int]int64{0: 0, 1: 0}
	}
	read := map[int]int64{}
	for _, ev := range ofKind(evs, "committed") {
		read[ev.Partition] = ev.Offset
	}
	if !maps.Equal(read, wantRead) {
		t.Errorf("%s read the group's offsets as %v, want %v", lc.name, read, wantRead)
	}
	if d := ofKind(evs, "deleted"); len(d) != 1 || d[0].Error != 0 {
		t.Errorf("%s deleted the group: %+v", lc.name, d)
	}
	if gs := ofKind(evs, "groups"); len(gs) != 1 || slices.Contains(gs[0].Names, "g") {
		t.Errorf("%s lists groups %+v after deleting g", lc.name, gs)
	}
	if _, err := ts.log.DescribeGroup("g"); !errors.Is(err, runnel.ErrGroupNotFound) {
		t.Errorf("runnel still has the group %s deleted: %v", lc.name, err)
	}
}

// checkConsumed checks that a client consumed every stored record once,
// as stored (sameRecord).
func checkConsumed(t *testing.T, lc langClient, records []clientEvent, stored []runnel.Record) {
	t.Helper()
	if len(records) != len(stored) {
		t.Errorf("%s consumed %d records, want %d", lc.name, len(records), len(stored))
	}
	seen := map[[2]int64]bool{}
	for _, ev := range records {
		at := [2]int64{int64(ev.Partition), ev.Offset}
		if seen[at] {
			t.Errorf("%s consumed partition %d offset %d twice", lc.name, ev.Partition, ev.Offset)
		}
		seen[at] = true
		var r *runnel.Record
		for i := range stored {
			if stored[i].Partition == ev.Partition && stored[i].Offset == ev.Offset {
				r = &stored[i]
			}
		}
		if r == nil {
			t.Errorf("%s consumed a record at partition %d offset %d that is not stored", lc.name, ev.Partition, ev.Offset)
			continue
		}
		if msg := sameRecord(*r, ev); msg != "" {
			t.Errorf("%s consumed partition %d offset %d: %s", lc.name, ev.Partition, ev.Offset, msg)
		}
	}
}

// checkTopicDeleted checks that the client's listing of the topics (its
// one event of kind) and runnel both lack a topic it deleted.
func checkTopicDeleted(t *testing.T, lc langClient, ts *testServer, evs []clientEvent, kind, topic string) {
	t.Helper()
	if listed := ofKind(evs, kind); len(listed) != 1 || slices.Contains(listed[0].Names, topic) {
		t.Errorf("%s lists the topics %+v after deleting %s", lc.name, listed, topic)
	}
	if _, err := ts.log.TopicConfig(topic); !errors.Is(err, runnel.ErrTopicNotFound) {
		t.Errorf("runnel still has the topic %s %s deleted: %v", topic, lc.name, err)
	}
}

// findKey finds the record with a key.
func findKey(recs []runnel.Record, key string) *runnel.Record {
	for i := range recs {
		if string(recs[i].Key) == key {
			return &recs[i]
		}
	}
	return nil
}

// sameRecord compares a stored record with a client's print of it, nil
// and empty apart.
func sameRecord(r runnel.Record, ev clientEvent) string {
	var diffs []string
	if !samePtr(b64(r.Key), ev.Key) {
		diffs = append(diffs, fmt.Sprintf("key %s, stored %s", show(ev.Key), show(b64(r.Key))))
	}
	if !samePtr(b64(r.Value), ev.Value) {
		diffs = append(diffs, fmt.Sprintf("value %s, stored %s", show(ev.Value), show(b64(r.Value))))
	}
	if ev.Timestamp != r.Time.UnixMilli() {
		diffs = append(diffs, fmt.Sprintf("timestamp %d, stored %d", ev.Timestamp, r.Time.UnixMilli()))
	}
	var got, want []string
	for _, h := range ev.Headers {
		if len(h) == 2 && h[0] != nil {
			got = append(got, *h[0]+"="+show(h[1]))
		}
	}
	for _, h := range r.Headers {
		want = append(want, h.Key+"="+show(b64(h.Value)))
	}
	if !slices.Equal(got, want) {
		diffs = append(diffs, fmt.Sprintf("headers %v, stored %v", got, want))
	}
	return strings.Join(diffs, "; ")
}

func samePtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// testClientGroup shares one group between two processes of the client and
// a native member, through joins, a clean leave and a kill.
func testClientGroup(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("shared", parts)
	const group = "sg:kafka/1 x" // outside the topic rule: an escaped directory (issue 13)
	env := map[string]string{"BROKER": ts.addr, "TOPIC": "shared", "GROUP": group}

	// assigned is what each client process was last given, or nil.
	assigned := func(cp *clientProc) []int {
		ev, ok := cp.last("assigned")
		if !ok || ev.Partitions == nil {
			return []int{}
		}
		return ev.Partitions
	}
	var native *polledNative // once it joined
	// split reports whether the clients' assignments agree with runnel's
	// owners: the Kafka members own exactly what the clients were given,
	// disjointly, the native member (if any) the rest, each at least one.
	split := func(procs ...*clientProc) bool {
		kafkaOwned, nativeOwned, all := ownedByKind(t, ts.log, group, "shared")
		if !all {
			return false
		}
		var given []int
		for _, cp := range procs {
			a := assigned(cp)
			if len(a) == 0 {
				return false
			}
			given = append(given, a...)
		}
		slices.Sort(given)
		if native != nil && (len(nativeOwned) == 0 || !slices.Equal(native.partitions(), nativeOwned)) {
			return false
		}
		return slices.Equal(given, kafkaOwned) && (native != nil || len(nativeOwned) == 0)
	}

	a := lc.start(t, "member", env)
	waitForClient(t, "the first member to be given every partition", func() bool {
		return slices.Equal(assigned(a), []int{0, 1, 2, 3}) && split(a)
	}, a)

	b := lc.start(t, "member", env)
	waitForClient(t, "two members of the client to share the partitions", func() bool { return split(a, b) }, a, b)

	// A native member joins; it polls in the background.
	native = pollNative(t, ts.log, "shared", &runnel.ConsumerOptions{Group: group, Start: runnel.Earliest})
	waitForClient(t, "two client members and a native one to share the partitions", func() bool { return split(a, b) }, a, b)

	// b leaves cleanly (its standard input closes): a and the native
	// member take its partitions.
	b.stdin.Close()
	if evs := b.wait(); len(ofKind(evs, "left")) != 1 {
		t.Fatalf("%s member did not say it left", lc.name)
	}
	waitForClient(t, "the member that stayed and the native one to share the partitions", func() bool { return split(a) }, a)

	// a is killed: its session times out, and the native member owns all.
	a.cmd.Process.Kill()
	<-a.exited
	waitForClient(t, "the native member to own every partition after the kill", func() bool {
		for _, o := range runnelOwners(t, ts.log, group, "shared") {
			if o == "" || strings.HasPrefix(o, "kafka/") {
				return false
			}
		}
		return slices.Equal(native.partitions(), []int{0, 1, 2, 3})
	}, a)
}

// testClientRestart: the client's idempotent producer sends records one at
// a time through a server process that stores the first, holds its answer
// and is killed (SIGKILL); the client retries it against a server started
// anew on the directory and address, and every record is stored once, at
// the offset the client was told.
func testClientRestart(t *testing.T, lc langClient) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("restart", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(t.TempDir(), "held")
	first := startChild(t, "server", dir, childHoldEnv+"="+held)
	const count = 20
	cp := lc.start(t, "restart", map[string]string{"BROKER": first.addr, "TOPIC": "restart", "COUNT": strconv.Itoa(count)})
	cp.stdin.Close()
	waitForClient(t, "the first server to hold an answer", func() bool {
		_, err := os.Stat(held)
		return err == nil
	}, cp)
	first.kill()
	first.cmd.Wait()
	startChild(t, "server", dir, childListenEnv+"="+first.addr)
	sent := ofKind(cp.wait(), "sent")
	if len(sent) != count {
		t.Fatalf("%s acknowledged %d records, want %d\n%s", lc.name, len(sent), count, cp.transcript())
	}
	for i, ev := range sent {
		if ev.Name != strconv.Itoa(i) || ev.Offset != int64(i) {
			t.Errorf("%s: record %s acknowledged at offset %d, want %d at %d", lc.name, ev.Name, ev.Offset, i, i)
		}
	}
	_, end, err := l.PartitionOffsets("restart", 0)
	if err != nil || end != count {
		t.Fatalf("the topic ends at %d (%v), want %d: a record stored twice", end, err, count)
	}
	for i, r := range readNative(t, l, "restart", count) {
		if string(r.Value) != strconv.Itoa(i) {
			t.Errorf("offset %d holds %q", i, r.Value)
		}
	}
}
