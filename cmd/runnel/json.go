package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/runnel-log/runnel"
)

// The JSON forms of the commands' output (-format json). Names are
// snake_case; numbers that can be unknown are null rather than -1; times
// are RFC 3339 in UTC; paths are relative to the log directory. README
// "JSON output" shows each shape.

// writeJSON writes v as one line of JSON, HTML characters left as they are.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonBytes shows bytes as a JSON string when they are UTF-8, as
// {"base64": "..."} when not, and as null when nil.
func jsonBytes(b []byte) any {
	switch {
	case b == nil:
		return nil
	case utf8.Valid(b):
		return string(b)
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(b)}
}

func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// jsonRecord is one line of "consume -format json".
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int          `json:"partition"`
	Offset    int64        `json:"offset"`
	Time      string       `json:"time"`
	Key       any          `json:"key"`
	Value     any          `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   any `json:"key"`
	Value any `json:"value"`
}

func newJSONRecord(topic string, r runnel.Record) jsonRecord {
	headers := make([]jsonHeader, len(r.Headers))
	for i, h := range r.Headers {
		headers[i] = jsonHeader{Key: jsonBytes([]byte(h.Key)), Value: jsonBytes(h.Value)}
	}
	return jsonRecord{
		Topic:     topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Time:      jsonTime(r.Time),
		Key:       jsonBytes(r.Key),
		Value:     jsonBytes(r.Value),
		Headers:   headers,
	}
}

// kcatRecord is one line of "consume -J": kcat -J's envelope, field for
// field and in its order, so that what reads kcat's output (jq
// '.payload') reads this. kcat writes a key or payload that is not UTF-8
// as it is, which is not JSON; here it is {"base64": "..."}, as in
// -format json.
type kcatRecord struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	TSType    string `json:"tstype"` // runnel's times are the producer's: Kafka's CreateTime
	TS        int64  `json:"ts"`     // milliseconds since 1970
	Broker    int    `json:"broker"` // the node runnel serve is, 0, as kcat through it prints
	Headers   []any  `json:"headers,omitempty"`
	Key       any    `json:"key"`
	Payload   any    `json:"payload"`
}

// newKcatRecord is r in kcat -J's envelope: headers, when r has any, a
// flat list of names and values (kcat's default, not its -X
// json.headers.map), a header without a value as null.
func newKcatRecord(topic string, r runnel.Record) kcatRecord {
	var headers []any
	for _, h := range r.Headers {
		headers = append(headers, jsonBytes([]byte(h.Key)), jsonBytes(h.Value))
	}
	return kcatRecord{
		Topic:     topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		TSType:    "create",
		TS:        r.Time.UnixMilli(),
		Broker:    0,
		Headers:   headers,
		Key:       jsonBytes(r.Key),
		Payload:   jsonBytes(r.Value),
	}
}

// jsonTopicEntry is one element of "topics list -format json".
type jsonTopicEntry struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
}

// jsonTopic is "topics describe -format json".
type jsonTopic struct {
	Name       string               `json:"name"`
	Partitions int                  `json:"partitions"`
	Config     runnel.TopicConfig   `json:"config"` // as stored in topic.json
	Offsets    []jsonPartitionState `json:"offsets"`
}

type jsonPartitionState struct {
	Partition   int   `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	NextOffset  int64 `json:"next_offset"`
	Records     int64 `json:"records"`
	Segments    int   `json:"segments"`
	Bytes       int64 `json:"bytes"`
}

func newPartitionState(p runnel.PartitionInfo) jsonPartitionState {
	return jsonPartitionState{
		Partition: p.Partition, StartOffset: p.StartOffset, NextOffset: p.NextOffset,
		Records: p.NextOffset - p.StartOffset, Segments: p.Segments, Bytes: p.Bytes,
	}
}

func newJSONTopic(info runnel.TopicInfo) jsonTopic {
	t := jsonTopic{Name: info.Name, Partitions: len(info.Partitions), Config: info.Config, Offsets: []jsonPartitionState{}}
	for _, p := range info.Partitions {
		t.Offsets = append(t.Offsets, newPartitionState(p))
	}
	return t
}

// jsonGroupEntry is one element of "groups list -format json": a group
// and the topics it has offsets for.
type jsonGroupEntry struct {
	Name   string   `json:"name"`
	Topics []string `json:"topics"`
}

// newJSONGroupEntry lists the topics DescribeGroup described, and those
// whose offsets it could not read, which err names.
func newJSONGroupEntry(info runnel.GroupInfo, err error) jsonGroupEntry {
	g := jsonGroupEntry{Name: info.Group, Topics: []string{}}
	for _, t := range info.Topics {
		g.Topics = append(g.Topics, t.Topic)
	}
	for _, gte := range runnel.GroupTopicErrors(err) {
		g.Topics = append(g.Topics, gte.Topic)
	}
	slices.Sort(g.Topics)
	return g
}

// jsonGroup is "groups describe -format json".
type jsonGroup struct {
	Name   string           `json:"name"`
	Topics []jsonGroupTopic `json:"topics"`
}

type jsonGroupTopic struct {
	Topic      string               `json:"topic"`
	Members    []jsonMember         `json:"members"`
	Partitions []jsonGroupPartition `json:"partitions"`
}

type jsonMember struct {
	Slot       int    `json:"slot"`
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	Joined     string `json:"joined"`
	Partitions []int  `json:"partitions"`
}

type jsonGroupPartition struct {
	Partition   int     `json:"partition"`
	Committed   *int64  `json:"committed"`    // null: nothing committed
	CommittedAt *string `json:"committed_at"` // null: nothing committed
	End         *int64  `json:"end"`          // null: the topic is gone
	Lag         *int64  `json:"lag"`          // null: committed or end unknown
	Owned       bool    `json:"owned"`
	Owner       *int    `json:"owner"`    // member slot; null if none recorded
	LeaseMS     int64   `json:"lease_ms"` // a gone owner's lease holding the free partition back; 0 if none
}

func ptr[T any](v T) *T { return &v }

// known is n, or nil (JSON null) when n is negative: the library's
// "unknown".
func known[T int | int64](n T) *T {
	if n < 0 {
		return nil
	}
	return &n
}

func newJSONGroup(info runnel.GroupInfo) jsonGroup {
	g := jsonGroup{Name: info.Group, Topics: []jsonGroupTopic{}}
	for _, t := range info.Topics {
		g.Topics = append(g.Topics, jsonGroupTopic{Topic: t.Topic, Members: groupMembers(t), Partitions: groupPartitions(t)})
	}
	return g
}

func groupMembers(t runnel.GroupTopic) []jsonMember {
	out := []jsonMember{}
	for _, m := range t.Members {
		out = append(out, jsonMember{Slot: m.Slot, Name: m.Name, PID: m.PID, Joined: jsonTime(m.Joined), Partitions: append([]int{}, m.Partitions...)})
	}
	return out
}

func groupPartitions(t runnel.GroupTopic) []jsonGroupPartition {
	out := []jsonGroupPartition{}
	for _, p := range t.Partitions {
		jp := jsonGroupPartition{Partition: p.Partition, Committed: known(p.Committed), End: known(p.End), Lag: known(p.Lag), Owned: p.Owned, Owner: known(p.Owner), LeaseMS: p.Lease.Milliseconds()}
		if !p.CommittedAt.IsZero() {
			at := jsonTime(p.CommittedAt)
			jp.CommittedAt = &at
		}
		out = append(out, jp)
	}
	return out
}

// jsonVerify is "verify -format json".
type jsonVerify struct {
	OK         bool                 `json:"ok"`
	Topics     int                  `json:"topics"`
	Segments   int                  `json:"segments"`
	Records    int64                `json:"records"`
	Bytes      int64                `json:"bytes"`
	Partitions []jsonPartitionCheck `json:"partitions"`
	Problems   []jsonProblem        `json:"problems"`
	Gaps       []jsonGap            `json:"gaps"` // known losses: salvaged gaps
	Notes      []string             `json:"notes"`
}

type jsonGap struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Path      string `json:"path"`
	Pos       int64  `json:"pos"`
	From      int64  `json:"from"` // the first offset lost
	To        int64  `json:"to"`   // the offset after the last one lost
}

type jsonPartitionCheck struct {
	Topic       string `json:"topic"`
	Partition   int    `json:"partition"`
	Segments    int    `json:"segments"`
	Frames      int64  `json:"frames"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
	StartOffset int64  `json:"start_offset"`
	NextOffset  int64  `json:"next_offset"`
	Lost        int64  `json:"lost"` // offsets in salvaged gaps
}

type jsonProblem struct {
	Kind       string `json:"kind"`
	Topic      string `json:"topic"`
	Partition  *int   `json:"partition"` // null: not a partition's problem
	Path       string `json:"path"`
	Pos        *int64 `json:"pos"`    // null: the whole file
	Offset     *int64 `json:"offset"` // null: unknown
	To         *int64 `json:"to"`     // the offset after the last one affected; null: unknown
	Detail     string `json:"detail"`
	Repairable bool   `json:"repairable"`
	// Salvageable: "repair -salvage" fixes it, giving up the records.
	Salvageable bool `json:"salvageable"`
}

func newJSONVerify(dir string, rep runnel.VerifyReport) jsonVerify {
	v := jsonVerify{OK: rep.OK(), Bytes: rep.Bytes, Partitions: []jsonPartitionCheck{}, Problems: []jsonProblem{}, Gaps: []jsonGap{}, Notes: append([]string{}, rep.Notes...)}
	topics := map[string]bool{}
	for _, pc := range rep.Partitions {
		topics[pc.Topic] = true
		v.Segments += pc.Segments
		v.Records += pc.Records
		v.Partitions = append(v.Partitions, jsonPartitionCheck(pc))
	}
	v.Topics = len(topics)
	for _, p := range rep.Problems {
		jp := jsonProblem{
			Kind: p.Kind.String(), Topic: p.Topic, Partition: known(p.Partition), Path: rel(dir, p.Path),
			Pos: known(p.Pos), Offset: known(p.Offset), Detail: p.Detail, Repairable: p.Repairable(), Salvageable: p.Salvageable(),
		}
		if p.To > p.Offset && p.Offset >= 0 {
			jp.To = &p.To
		}
		v.Problems = append(v.Problems, jp)
	}
	for _, g := range rep.Gaps {
		v.Gaps = append(v.Gaps, jsonGap{Topic: g.Topic, Partition: g.Partition, Path: rel(dir, g.Path), Pos: g.Pos, From: g.From, To: g.To})
	}
	return v
}
