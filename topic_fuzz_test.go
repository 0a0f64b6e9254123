package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTopicFile writes the fuzzer's bytes as the topic.json of a topic of
// two partitions with records, and uses the topic as a process opening
// the directory would: Topics, DescribeTopic, Verify, a consumer, a
// producer. Whatever the bytes: nothing panics; a topic.json that does
// not hold a valid config fails each call with a *CorruptError naming the
// file (and the byte, where the JSON breaks), and Verify reports it there;
// one that does is the topic's config, and the records of the partitions
// it names read as written; partitions it names past the directories there
// fail DescribeTopic with a *CorruptError naming the first missing one, and
// Verify reports each. Seeds: the file runnel wrote, cut, retyped
// and out of range.
func FuzzTopicFile(f *testing.F) {
	pristine := f.TempDir()
	l := openTest(f, pristine, &Options{Durability: Buffered})
	mustCreate(f, l, "t", TopicConfig{Partitions: 2})
	produceSpread(f, l, "t", 2, 3)
	l.Close()
	rel := filepath.Join("topics", "t", topicFileName)
	written, err := os.ReadFile(filepath.Join(pristine, rel))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(written)
	f.Add(written[:len(written)/2])
	f.Add([]byte{})
	f.Add([]byte("null"))
	f.Add([]byte(`{"partitions": 1}`))
	f.Add([]byte(`{"partitions": 3, "segment_bytes": 65536}`))
	f.Add([]byte(`{"partitions": "2"}`))
	f.Add([]byte(`{"partitions": 0}`))
	f.Add([]byte(`{"partitions": 2, "segment_bytes": 1e30}`))
	f.Add([]byte(`{"partitions": 2, "index_interval_bytes": -1, "id": 7}`))
	f.Add([]byte(`[{"partitions": 2}]`))
	f.Add([]byte(strings.Replace(string(written), `"id"`, `"id": "x", "id"`, 1)))

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		path := filepath.Join(dir, rel)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		damaged := func(who string, err error) {
			t.Helper()
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path || ce.Pos < -1 || ce.Pos > int64(len(data)) {
				t.Fatalf("%s: %v, want a *CorruptError naming %s", who, err, path)
			}
			if strings.Contains(err.Error(), "byte -") {
				t.Fatalf("%s: %v: a negative byte position", who, err)
			}
		}

		if names, err := l.Topics(); err != nil || fmt.Sprint(names) != "[t]" {
			t.Fatalf("Topics: %v, %v", names, err)
		}
		info, derr := l.DescribeTopic("t")
		rep, err := l.Verify(ctx, "", nil)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if ce := (*CorruptError)(nil); errors.As(derr, &ce) && ce.Path != path {
			// topic.json names partitions beyond the directories there:
			// damage naming the first missing directory, as Verify reports
			// each.
			cfg, err := l.TopicConfig("t")
			if err != nil || cfg.Partitions <= 2 || ce.Path != filepath.Join(filepath.Dir(path), "2") {
				t.Fatalf("DescribeTopic: %v; TopicConfig: %+v, %v", derr, cfg, err)
			}
			if len(rep.Problems) != cfg.Partitions-2 || rep.Problems[0].Path != filepath.Join(filepath.Dir(path), "2") {
				t.Fatalf("Verify found %v for %d partitions, 2 there", rep.Problems, cfg.Partitions)
			}
			return
		}
		if derr != nil {
			damaged("DescribeTopic", derr)
			if len(rep.Problems) != 1 || rep.Problems[0].Path != path {
				t.Fatalf("Verify found %v; DescribeTopic %v", rep.Problems, derr)
			}
			c, err := l.Consumer("t", nil)
			if err == nil {
				c.Close()
			}
			damaged("Consumer", err)
			p, err := l.Producer("t", nil)
			if err == nil {
				p.Close()
			}
			damaged("Producer", err)
			return
		}
		if len(info.Partitions) != info.Config.Partitions {
			t.Fatalf("DescribeTopic: %d partitions described, config says %d", len(info.Partitions), info.Config.Partitions)
		}
		recs, rerr := readFuzzedLog(t, l)
		if rerr != nil {
			t.Fatalf("reader: %v", rerr)
		}
		for _, r := range recs {
			if r.Partition >= 2 || string(r.Value) != fmt.Sprintf("%d/%d", r.Partition, r.Offset) {
				t.Fatalf("read %q at %d/%d, never written there", r.Value, r.Partition, r.Offset)
			}
		}
		if want := 3 * min(info.Config.Partitions, 2); len(recs) != want {
			t.Fatalf("read %d records of the %d in the partitions topic.json names", len(recs), want)
		}
		p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
		if _, err := p.Send(ctx, Record{Partition: info.Config.Partitions - 1, Value: []byte("more")}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Producer.Close: %v", err)
		}
	})
}

// FuzzFormatFile writes the fuzzer's bytes as a log's runnel.format:
// Open either takes the log, which then reads, or refuses it with
// ErrUnsupportedFormat naming the file or the directory; it never panics.
func FuzzFormatFile(f *testing.F) {
	f.Add([]byte(formatPrefix + "1\n"))
	f.Add([]byte(formatPrefix + "2\n"))
	f.Add([]byte(formatPrefix + "0"))
	f.Add([]byte(formatPrefix + "99999999999999999999999"))
	f.Add([]byte("  " + formatPrefix + "+1 \n\n"))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, formatFileName)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, testOptions(t, &Options{Durability: Buffered, RetentionInterval: -1}))
		if err != nil {
			if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), dir) || len(err.Error()) > 8*maxFormatFileBytes {
				t.Fatalf("Open: %.300q, want a bounded ErrUnsupportedFormat naming %s", err, dir)
			}
			return
		}
		defer l.Close()
		mustCreate(t, l, "t", TopicConfig{Partitions: 1})
		p := mustProducer(t, l, "t", nil)
		if _, err := p.Send(context.Background(), Record{Value: []byte("v")}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if recs, err := readFuzzedLog(t, l); err != nil || len(recs) != 1 {
			t.Fatalf("read %d records, %v", len(recs), err)
		}
	})
}
