package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestTopicsDeleteRecords: topics delete-records moves each partition's
// start, as kafka-delete-records.sh does over Kafka, from arguments and
// from that tool's offset JSON file; -1 is every record; the start never
// moves back; consume and topics offsets begin at the start; an offset
// past the end and a missing partition fail.
func TestTopicsDeleteRecords(t *testing.T) {
	dir := offsetsLog(t) // t/0 holds 3 records, u/0 two, u/1 none
	if got, want := must(t, dir, "", "topics", "delete-records", "t:0:2", "u:0:-1"), "t [0] start 2\nu [0] start 2\n"; got != want {
		t.Errorf("delete-records: %q, want %q", got, want)
	}
	if got, want := must(t, dir, "", "topics", "offsets", "t:0:-2", "u:0:-2"), "t [0] offset 2\nu [0] offset 2\n"; got != want {
		t.Errorf("topics offsets of the starts: %q, want %q", got, want)
	}
	if got, want := must(t, dir, "", "consume", "t", "-f", "%o\n"), "2\n"; got != want {
		t.Errorf("consume after delete-records: %q, want %q", got, want)
	}
	file := filepath.Join(t.TempDir(), "offsets.json")
	doc := `{"partitions": [{"topic": "t", "partition": 0, "offset": 1}, {"topic": "u", "partition": 1, "offset": 0}], "version": 1}`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	want := `[{"topic":"t","partition":0,"start_offset":2},{"topic":"u","partition":1,"start_offset":0}]` + "\n"
	if got := must(t, dir, "", "topics", "delete-records", "-offset-json-file", file, "-format", "json"); got != want {
		t.Errorf("delete-records -offset-json-file: %q, want %q (the start never moves back)", got, want)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "nothing to delete"},
		{[]string{"t:0"}, 2, "want TOPIC:PARTITION:OFFSET"},
		{[]string{"t:0:-2"}, 2, "want TOPIC:PARTITION:OFFSET"},
		{[]string{"t:x:1"}, 2, "want TOPIC:PARTITION:OFFSET"},
		{[]string{"t:0:4"}, 1, "past its end"},
		{[]string{"t:3:0"}, 1, "partition 3"},
		{[]string{"nosuch:0:0"}, 1, "nosuch"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"topics", "delete-records"}, tc.args...)...), tc.code, tc.want)
	}
}

// TestDeleteRecordsOffsetJSONDamage: an -offset-json-file with something
// after its document (a second document: its deletes were left undone
// without a word) is refused before anything is deleted, and a JSON
// error says at which byte.
func TestDeleteRecordsOffsetJSONDamage(t *testing.T) {
	dir := offsetsLog(t) // t/0 holds 3 records, u/0 two, u/1 none
	files := t.TempDir()
	for i, tc := range []struct{ doc, want string }{
		{`{"partitions": [{"topic": "t", "partition": 0, "offset": 1}]}` + "\n" +
			`{"partitions": [{"topic": "u", "partition": 0, "offset": 1}]}`, "after top-level value"},
		{`{"partitions": [{"topic": "t", "partition": "0", "offset": 1}]}`, " at byte "},
		{`{"partitions": [{"topic": "t", "partition": 0, "offset": 1}`, "unexpected end of JSON input"},
	} {
		file := filepath.Join(files, fmt.Sprintf("offsets%d.json", i))
		if err := os.WriteFile(file, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		failing(t, runIn(t, dir, "", "topics", "delete-records", "-offset-json-file", file), 2, file)
		failing(t, runIn(t, dir, "", "topics", "delete-records", "-offset-json-file", file), 2, tc.want)
	}
	if got, want := must(t, dir, "", "topics", "offsets", "t:0:-2"), "t [0] offset 0\n"; got != want {
		t.Errorf("t's start after the refusals: %q, want %q", got, want)
	}
}
