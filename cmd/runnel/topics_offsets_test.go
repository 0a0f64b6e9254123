package main

import (
	"context"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
)

// offsetsLog makes a log whose records have known times: t's partition
// 0 at 1, 2 and 3 seconds after 1970, u's partition 0 at 1 and 5 seconds,
// its partition 1 empty.
func offsetsLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "t")
	must(t, dir, "", "topics", "create", "u", "-partitions", "2")
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for topic, secs := range map[string][]int64{"t": {1, 2, 3}, "u": {1, 5}} {
		p, err := l.Producer(topic, &runnel.ProducerOptions{Partitioner: runnel.ManualPartitioner})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secs {
			if _, err := p.Send(context.Background(), runnel.Record{Value: []byte("v"), Time: time.Unix(s, 0)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestTopicsOffsets: topics offsets finds each partition's first record
// at or after a time, as kcat -Q does over Kafka (ListOffsets by
// timestamp), in kcat's TOPIC:PARTITION:MS form or with -time; -1 is a
// partition's end and -2 its start, as librdkafka asks for them.
func TestTopicsOffsets(t *testing.T) {
	dir := offsetsLog(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"t:0:2000"}, "t [0] offset 1\n"},
		{[]string{"t:0:1500"}, "t [0] offset 1\n"},
		{[]string{"t:0:0"}, "t [0] offset 0\n"},
		{[]string{"t:0:3001"}, "t [0] offset -1\n"},
		{[]string{"t:0:-1"}, "t [0] offset 3\n"},
		{[]string{"t:0:-2"}, "t [0] offset 0\n"},
		// Sorted by topic and partition, as kcat prints them.
		{[]string{"u:1:0", "u:0:2000", "t:0:2500"}, "t [0] offset 2\nu [0] offset 1\nu [1] offset -1\n"},
		{[]string{"u", "-time", "1970-01-01T00:00:02Z"}, "u [0] offset 1\nu [1] offset -1\n"},
		{[]string{"u:1", "t", "-time", "1970-01-01T00:00:01Z"}, "t [0] offset 0\nu [1] offset -1\n"},
		{[]string{"u:0:5000", "t:0", "-time", "1970-01-01T00:00:02Z"}, "t [0] offset 1\nu [0] offset 1\n"},
		// A partition asked for twice is answered twice, in the order asked.
		{[]string{"t:0:3000", "u:0:0", "t:0:-2"}, "t [0] offset 2\nt [0] offset 0\nu [0] offset 0\n"},
		{[]string{"t:0:1000", "u:0:6000", "u:1:-1", "-format", "json"},
			`[{"topic":"t","partition":0,"offset":0,"time":"1970-01-01T00:00:01Z"},` +
				`{"topic":"u","partition":0,"offset":null,"time":null},` +
				`{"topic":"u","partition":1,"offset":0,"time":null}]` + "\n"},
	} {
		if got := must(t, dir, "", append([]string{"topics", "offsets"}, tc.args...)...); got != tc.want {
			t.Errorf("topics offsets %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"t:0"}, 2, "give each a time"},
		{[]string{"t"}, 2, "give each a time"},
		{[]string{"t:x:0"}, 2, "want TOPIC[:PARTITION[:MS]]"},
		{[]string{"t:0:abc"}, 2, "want TOPIC[:PARTITION[:MS]]"},
		{[]string{"t:0:-3"}, 2, "want TOPIC[:PARTITION[:MS]]"},
		{[]string{"t:0:0", "-time", "nonsense"}, 2, "invalid time"},
		{[]string{"t:1:0"}, 1, "topic t has 1 partition (0 to 0), not 1"},
		{[]string{"nosuch:0:0"}, 1, "nosuch"},
	} {
		failing(t, runIn(t, dir, "", append([]string{"topics", "offsets"}, tc.args...)...), tc.code, tc.want)
	}
}

// TestTopicsOffsetsAsKcat: topics offsets prints what kcat -Q prints of
// the same partitions and times through runnel serve.
func TestTopicsOffsetsAsKcat(t *testing.T) {
	dir := offsetsLog(t)
	queries := []string{"u:1:0", "t:0:2500", "u:0:6000"}
	kcat := kcatThroughServe(t, dir)
	want := kcat("-Q", "-t", queries[0], "-t", queries[1], "-t", queries[2])
	if got := must(t, dir, "", append([]string{"topics", "offsets"}, queries...)...); got != want {
		t.Errorf("kcat -Q printed %q, runnel topics offsets %q", want, got)
	}
	// One partition at a time, as kcat takes each partition once.
	for _, q := range []string{"t:0:-1", "u:0:-2", "t:0:0", "t:0:3000", "t:0:3001"} {
		if want, got := kcat("-Q", "-t", q), must(t, dir, "", "topics", "offsets", q); got != want {
			t.Errorf("kcat -Q -t %s printed %q, runnel topics offsets %q", q, want, got)
		}
	}
}
