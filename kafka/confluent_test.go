package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runnel-log/runnel"
)

// confluent-kafka, librdkafka's Python binding (Debian's
// python3-confluent-kafka), against the server: its AdminClient, an
// idempotent Producer with every codec, a group Consumer with its commits,
// watermarks and offsets by time, and librdkafka's group admin calls
// (testdata/clients/confluent). What they print is checked against the
// log directory and against what Kafka's broker answers each call.

// confluentKafka is confluent-kafka on the first Python that imports it
// (python).
func confluentKafka(t *testing.T) langClient {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "clients", "confluent"))
	if err != nil {
		t.Fatal(err)
	}
	py := python("import confluent_kafka")
	if py == "" {
		requireClient(t, "no python3 with confluent_kafka", "Debian's python3-confluent-kafka")
	}
	// -B: no __pycache__ of rdkafka_admin.py in the tree.
	return langClient{name: "confluent-kafka", argv: []string{py, "-B", filepath.Join(dir, "compat.py")}}
}

func TestConfluentKafka(t *testing.T) {
	lc := confluentKafka(t)
	t.Run("admin", func(t *testing.T) { testConfluentAdmin(t, lc) })
	t.Run("produce-consume", func(t *testing.T) { testConfluentProduceConsume(t, lc) })
	t.Run("groups", func(t *testing.T) { testConfluentGroups(t, lc) })
}

// calls is how each "call" event ended, by name.
func calls(evs []clientEvent) map[string]string {
	out := map[string]string{}
	for _, ev := range ofKind(evs, "call") {
		out[ev.Name] = ev.State
	}
	return out
}

// valuesOf maps the name of each event of a kind to its value.
func valuesOf(evs []clientEvent, kind string) map[string]string {
	out := map[string]string{}
	for _, ev := range ofKind(evs, kind) {
		if ev.Value != nil {
			out[ev.Name] = *ev.Value
		}
	}
	return out
}

// testConfluentAdmin: AdminClient's metadata, CreateTopics (with configs,
// validate_only, and each refusal Kafka gives), DescribeConfigs of a topic
// and the broker, AlterConfigs (and validate_only) and DeleteTopics.
func testConfluentAdmin(t *testing.T, lc langClient) {
	ts := startServer(t, nil)
	ts.createTopic("ct", 2)
	evs := lc.run(t, "admin", map[string]string{"BROKER": ts.addr, "TOPIC": "ct", "NEW_TOPIC": "made"})

	cluster := ofKind(evs, "cluster")
	if len(cluster) != 1 || cluster[0].Value == nil || *cluster[0].Value == "" || cluster[0].Offset != 0 ||
		!slices.Equal(cluster[0].Names, []string{"0 " + ts.addr}) {
		t.Errorf("%s read the cluster as %+v; want an id, controller 0 and broker 0 at %s", lc.name, cluster, ts.addr)
	}
	wantParts := map[string][]int{"ct": {0, 1}, "made": {0, 1, 2}}
	for _, ev := range ofKind(evs, "partitions") {
		if !slices.Equal(ev.Partitions, wantParts[ev.Name]) {
			t.Errorf("%s read the partitions of %s as %v, want %v", lc.name, ev.Name, ev.Partitions, wantParts[ev.Name])
		}
		if ev.Name == "ct" && !slices.Equal(ev.Names, []string{"0 0 [0] [0]", "1 0 [0] [0]"}) {
			t.Errorf("%s read ct's partitions as %q; want leader 0, replicas [0] and in-sync replicas [0] each", lc.name, ev.Names)
		}
	}
	want := map[string]string{
		"metadata of a missing topic":             "UNKNOWN_TOPIC_OR_PART",
		"create validate_only":                    "ok",
		"create validate_only compacted":          "INVALID_CONFIG",
		"create validate_only an existing topic":  "TOPIC_ALREADY_EXISTS",
		"create":                                  "ok",
		"create again":                            "TOPIC_ALREADY_EXISTS",
		"create with an unknown config":           "INVALID_CONFIG",
		"create compacted":                        "INVALID_CONFIG",
		"create with 3 replicas":                  "INVALID_REPLICATION_FACTOR",
		"create with a bad name":                  "TOPIC_EXCEPTION", // Kafka's INVALID_TOPIC_EXCEPTION
		"create with the defaults":                "ok",
		"alter":                                   "ok",
		"alter validate_only":                     "ok",
		"alter an unknown config":                 "INVALID_CONFIG",
		"describe the configs of a missing topic": "UNKNOWN_TOPIC_OR_PART",
		"delete":                 "ok",
		"delete a missing topic": "UNKNOWN_TOPIC_OR_PART",
	}
	if diff := cmp.Diff(want, calls(evs)); diff != "" {
		t.Errorf("%s's admin calls (-want +got):\n%s", lc.name, diff)
	}
	for _, ev := range ofKind(evs, "topics-after-validate") {
		if slices.Contains(ev.Names, "made") {
			t.Errorf("%s lists %v after a validate_only CreateTopics; want it not made", lc.name, ev.Names)
		}
	}
	if got := valuesOf(evs, "config")["retention.ms"]; got != "60000" {
		t.Errorf("%s read retention.ms %q as made, want 60000", lc.name, got)
	}
	if got := valuesOf(evs, "altered")["retention.ms"]; got != "120000" {
		t.Errorf("%s read retention.ms %q after AlterConfigs (and a validate_only one), want 120000", lc.name, got)
	}
	if got := valuesOf(evs, "broker-config")["num.partitions"]; got != "1" {
		t.Errorf("%s read the broker's num.partitions as %q, want 1", lc.name, got)
	}
	if cfg, err := ts.log.TopicConfig("made-defaults"); err != nil || cfg.Partitions != 1 {
		t.Errorf("the topic made with the defaults: %+v, %v; want the server's 1 partition", cfg, err)
	}
	checkTopicDeleted(t, lc, ts, evs, "topics-after-delete", "made")
}

// testConfluentProduceConsume: an idempotent Producer with each codec,
// whose records are stored as sent, then a group Consumer that reads them
// and native ones once each and commits, and what it reads back: its
// commits, position, watermarks, offsets by time, its group as listed
// (rd_kafka_list_groups: ListGroups and DescribeGroups), and a commit from
// outside the group.
func testConfluentProduceConsume(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	ts.createTopic("pc", 2)
	nativeTime := time.UnixMilli(1_700_000_000_000)
	clientTime := nativeTime.Add(100 * time.Second)
	native := produceNative(t, ts.log, "pc", []runnel.Record{
		{Partition: 0, Key: []byte("go"), Value: []byte("from Go"), Time: nativeTime,
			Headers: []runnel.Header{{Key: "h", Value: []byte("v")}, {Key: "null", Value: nil}}},
		{Partition: 1, Key: nil, Value: []byte{}, Time: nativeTime},
	})
	env := map[string]string{"BROKER": ts.addr, "TOPIC": "pc", "GROUP": "cg", "OTHER_GROUP": "og",
		"TIMESTAMP": strconv.FormatInt(clientTime.UnixMilli(), 10)}
	evs := lc.run(t, "produce", env)
	produced := ofKind(evs, "produced")
	offsets := map[int][]int64{}
	for _, ev := range produced {
		if ev.Error != 0 {
			t.Errorf("%s produce with %s: %+v", lc.name, ev.Codec, ev)
		}
		offsets[ev.Partition] = append(offsets[ev.Partition], ev.Offset)
	}
	// Three records a codec, two in partition 0 and one in 1, after the
	// native record of each.
	for p, n := range map[int]int{0: 10, 1: 5} {
		slices.Sort(offsets[p])
		if len(offsets[p]) != n || offsets[p][0] != 1 || offsets[p][n-1] != int64(n) {
			t.Errorf("%s's records acknowledged in partition %d at %v, want 1 to %d", lc.name, p, offsets[p], n)
		}
	}
	total := len(native) + len(produced)
	stored := readNative(t, ts.log, "pc", total)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		for i := range 3 {
			r := findKey(stored, fmt.Sprintf("confluent-%s-%d", codec, i))
			switch {
			case r == nil:
				t.Errorf("%s's %s record %d not stored", lc.name, codec, i)
			case i == 2 && r.Value != nil, i < 2 && string(r.Value) != "v":
				t.Errorf("%s's %s record %d stored with value %q", lc.name, codec, i, r.Value)
			case i == 0 && (len(r.Headers) != 1 || r.Headers[0].Key != "src" || string(r.Headers[0].Value) != "confluent"),
				i > 0 && len(r.Headers) != 0:
				t.Errorf("%s's %s record %d stored with headers %+v", lc.name, codec, i, r.Headers)
			case !r.Time.Equal(clientTime):
				t.Errorf("%s's %s record %d stored at %v, want %v", lc.name, codec, i, r.Time, clientTime)
			}
		}
	}

	env["WANT"] = strconv.Itoa(total)
	evs = lc.run(t, "consume", env)
	checkConsumed(t, lc, ofKind(evs, "record"), stored)
	if g := ofKind(evs, "group"); len(g) != 1 || g[0].State != "Stable" || g[0].Members != 1 || show64(g[0].Value) != "range" ||
		!slices.Equal(g[0].Names, []string{"confluent-compat /127.0.0.1"}) {
		t.Errorf("%s listed its group as %+v; want Stable, range, one member confluent-compat at /127.0.0.1", lc.name, g)
	}
	if calls(evs)["commit"] != "ok" {
		t.Errorf("%s's commit: %q", lc.name, calls(evs)["commit"])
	}
	ends := map[int]int64{0: 11, 1: 6}
	for _, kind := range []string{"commit", "committed", "position", "watermarks"} {
		got := map[int]int64{}
		for _, ev := range ofKind(evs, kind) {
			got[ev.Partition] = ev.Offset
			if kind == "watermarks" && ev.Timestamp != 0 {
				t.Errorf("%s read partition %d's low watermark as %d, want 0", lc.name, ev.Partition, ev.Timestamp)
			}
		}
		if !maps.Equal(got, ends) {
			t.Errorf("%s's %s offsets: %v, want the ends %v", lc.name, kind, got, ends)
		}
	}
	if g, err := ts.log.DescribeGroup("cg"); err != nil || len(g.Topics) != 1 ||
		g.Topics[0].Partitions[0].Committed != 11 || g.Topics[0].Partitions[1].Committed != 6 {
		t.Errorf("runnel's group after %s's commit: %+v, %v; want 11 and 6", lc.name, g, err)
	}
	// By time: the first client record of each partition is at the
	// client's time; none is after it; the first record is after 1 ms.
	want := map[string]int64{"at/0": 1, "at/1": 1, "after/0": -1, "after/1": -1, "before/0": 0, "before/1": 0}
	got := map[string]int64{}
	for _, ev := range ofKind(evs, "offset-for-time") {
		got[fmt.Sprintf("%s/%d", ev.Name, ev.Partition)] = ev.Offset
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s's offsets for times: %v, want %v", lc.name, got, want)
	}
	if g := ofKind(evs, "group-after-close"); len(g) != 1 || g[0].State != "Empty" || g[0].Members != 0 {
		t.Errorf("%s listed its group after closing as %+v, want Empty", lc.name, g)
	}
	// -1001 is librdkafka's "no offset".
	other := map[int]int64{}
	for _, ev := range ofKind(evs, "other-committed") {
		other[ev.Partition] = ev.Offset
	}
	if calls(evs)["commit outside the group"] != "ok" || !maps.Equal(other, map[int]int64{0: 1, 1: -1001}) {
		t.Errorf("%s's commit outside the group: %q, read back as %v", lc.name, calls(evs)["commit outside the group"], other)
	}
}

// show64 is a field that holds text, not base64, or "null".
func show64(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// testConfluentGroups: librdkafka's group admin calls (ListConsumerGroups,
// DescribeConsumerGroups, ListConsumerGroupOffsets,
// AlterConsumerGroupOffsets, DeleteConsumerGroupOffsets, DeleteGroups)
// answered as Kafka's broker answers them, with a live member and without,
// and DeleteRecords, whose low watermark is the partition's new start.
func testConfluentGroups(t *testing.T, lc langClient) {
	ts := startServer(t, fastGroups)
	ts.createTopic("gt", 2)
	produceSpread(t, ts.log, "gt", 2, 5, "v")
	if _, err := ts.log.ResetGroupOffsets(context.Background(), "cg", "gt", runnel.AtOffset(3), nil); err != nil {
		t.Fatal(err)
	}
	evs := lc.run(t, "groups", map[string]string{"BROKER": ts.addr, "TOPIC": "gt", "GROUP": "cg", "LIVE_GROUP": "lg"})
	if a := ofKind(evs, "assigned"); len(a) != 1 || !slices.Equal(a[0].Partitions, []int{0, 1}) {
		t.Fatalf("%s's live member was assigned %+v, want both partitions", lc.name, a)
	}
	if start, _, err := ts.log.PartitionOffsets("gt", 0); err != nil || start != 1 {
		t.Errorf("gt/0 starts at %d (%v) after %s's DeleteRecords to 1", start, err, lc.name)
	}
	want := map[string]string{
		"list groups":                                 "ok",
		"describe groups":                             "ok",
		"alter the offsets of a live group":           "ok",
		"alter the offsets of a live group lg":        "ok", // and UNKNOWN_MEMBER_ID in the partition, below
		"delete a live group":                         "ok",
		"delete a live group lg":                      "NON_EMPTY_GROUP",
		"list offsets":                                "ok",
		"list offsets cg":                             "ok",
		"list offsets of partitions":                  "ok",
		"list offsets of partitions cg":               "ok",
		"list the offsets of a missing group":         "ok",
		"list the offsets of a missing group missing": "ok",
		"alter offsets":                               "ok",
		"alter offsets cg":                            "ok",
		"alter the offset of a missing partition":     "ok",
		"alter the offset of a missing partition cg":  "ok",
		"list offsets after alter":                    "ok",
		"list offsets after alter cg":                 "ok",
		"delete an offset":                            "ok",
		"delete an offset cg":                         "ok",
		"list offsets after delete":                   "ok",
		"list offsets after delete cg":                "ok",
		"delete records":                              "ok",
		"delete group":                                "ok",
		"delete group cg":                             "ok",
		"delete a missing group":                      "ok",
		"delete a missing group missing":              "GROUP_ID_NOT_FOUND",
		"list groups after delete":                    "ok",
	}
	if diff := cmp.Diff(want, calls(evs)); diff != "" {
		t.Errorf("%s's group calls (-want +got):\n%s", lc.name, diff)
	}
	// -1001 is librdkafka's "no offset".
	wantParts := map[string][]string{
		"list groups":                                 {"cg Empty simple=False", "lg Stable simple=False"},
		"alter the offsets of a live group lg":        {"gt/0@1 UNKNOWN_MEMBER_ID"},
		"list offsets cg":                             {"gt/0@3 NO_ERROR", "gt/1@3 NO_ERROR"},
		"list offsets of partitions cg":               {"gt/0@3 NO_ERROR", "gt/9@-1001 NO_ERROR", "missing/0@-1001 NO_ERROR"},
		"list the offsets of a missing group missing": {},
		"alter offsets cg":                            {"gt/0@2 NO_ERROR", "gt/1@1 NO_ERROR"},
		"alter the offset of a missing partition cg":  {"gt/9@1 UNKNOWN_TOPIC_OR_PART"},
		"list offsets after alter cg":                 {"gt/0@2 NO_ERROR", "gt/1@1 NO_ERROR"},
		"delete an offset cg":                         {"gt/1@-1001 NO_ERROR"},
		"list offsets after delete cg":                {"gt/0@2 NO_ERROR"},
		"delete records":                              {"gt/0@1 NO_ERROR"},
	}
	for _, ev := range ofKind(evs, "call") {
		if w, ok := wantParts[ev.Name]; ok && !slices.Equal(ev.Names, w) {
			t.Errorf("%s's %s: %q, want %q", lc.name, ev.Name, ev.Names, w)
		}
		if ev.Name == "list groups after delete" && slices.Contains(ev.Names, "cg") {
			t.Errorf("%s lists the groups %q after deleting cg", lc.name, ev.Names)
		}
	}
	wantGroups := map[string]string{
		"lg":      "Stable range 1 [confluent-live /127.0.0.1 gt/0,gt/1 coordinator=[0, '127.0.0.1', " + port(t, ts.addr) + "] simple=False]",
		"cg":      "Empty  0 [coordinator=[0, '127.0.0.1', " + port(t, ts.addr) + "] simple=False]",
		"missing": "Dead  0 [coordinator=[0, '127.0.0.1', " + port(t, ts.addr) + "] simple=True]",
	}
	gotGroups := map[string]string{}
	for _, ev := range ofKind(evs, "group") {
		gotGroups[ev.Name] = fmt.Sprintf("%s %s %d %v", ev.State, show64(ev.Value), ev.Members, ev.Names)
		if ev.Error != 0 {
			gotGroups[ev.Name] += " with an error"
		}
	}
	if diff := cmp.Diff(wantGroups, gotGroups); diff != "" {
		t.Errorf("%s described the groups (-want +got):\n%s", lc.name, diff)
	}
	if _, err := ts.log.DescribeGroup("cg"); !errors.Is(err, runnel.ErrGroupNotFound) {
		t.Errorf("runnel still has the group %s deleted: %v", lc.name, err)
	}
	if g, err := ts.log.DescribeGroup("lg"); err == nil && len(g.Topics) == 1 && g.Topics[0].Partitions[0].Committed != -1 {
		t.Errorf("the live group has a commit at %d after a refused AlterConsumerGroupOffsets", g.Topics[0].Partitions[0].Committed)
	}
}

// port is the port of a host:port address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
