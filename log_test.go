package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testBackend lets .ci/run repeat the whole suite on each append backend.
func testOptions(t testing.TB, o *Options) *Options {
	t.Helper()
	var c Options
	if o != nil {
		c = *o
	}
	if c.Backend == BackendAuto {
		c.Backend = os.Getenv("RUNNEL_TEST_BACKEND")
	}
	return &c
}

func openTest(t testing.TB, dir string, o *Options) *Log {
	t.Helper()
	l, err := Open(dir, testOptions(t, o))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustCreate(t testing.TB, l *Log, name string, cfg TopicConfig) {
	t.Helper()
	if err := l.CreateTopic(name, cfg); err != nil {
		t.Fatalf("CreateTopic(%s): %v", name, err)
	}
}

// readAll reads a topic's partitions from the start until n records came.
func readAll(t testing.TB, l *Log, topic string, n int, opts *ConsumerOptions) []Record {
	t.Helper()
	c, err := l.Consumer(topic, opts)
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	defer c.Close()
	return pollUntil(t, c, n, 20*time.Second)
}

// pollUntil polls c until it has n records, failing the test on error or
// once timeout has passed. Values are copied.
func pollUntil(t testing.TB, c *Consumer, n int, timeout time.Duration) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d of %d records: %v", len(out), n, err)
		}
		for _, r := range recs {
			out = append(out, cloneRecord(r))
		}
	}
	return out
}

// polled is what one Poll returned.
type polled struct {
	recs []Record
	err  error
}

// pollAsync runs one Poll of c with ctx on another goroutine, for a test
// to act while it waits; the channel gets what it returned.
func pollAsync(ctx context.Context, c *Consumer) <-chan polled {
	done := make(chan polled, 1)
	go func() {
		recs, err := c.Poll(ctx)
		done <- polled{recs, err}
	}()
	return done
}

func cloneRecord(r Record) Record {
	c := r
	if r.Key != nil {
		c.Key = append([]byte{}, r.Key...)
	}
	if r.Value != nil {
		c.Value = append([]byte{}, r.Value...)
	}
	if r.Headers != nil {
		// Header values alias the read buffer as Value does.
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = h
			if h.Value != nil {
				c.Headers[i].Value = append([]byte{}, h.Value...)
			}
		}
	}
	return c
}

// TestCloneRecordHeaders checks the test helper that keeps records past
// the next Poll: header values alias the read buffer too.
func TestCloneRecordHeaders(t *testing.T) {
	val := []byte("v")
	r := Record{Value: []byte("x"), Headers: []Header{{Key: "k", Value: val}, {Key: "nil"}}}
	c := cloneRecord(r)
	val[0] = 'w'
	r.Headers[0].Key = "changed"
	if string(c.Headers[0].Value) != "v" || c.Headers[0].Key != "k" || c.Headers[1].Value != nil {
		t.Fatalf("clone shares header memory with the original: %+v", c.Headers)
	}
}

func TestRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	sent := []Record{
		{Key: []byte("k"), Value: []byte("v"), Time: ts},
		{Key: nil, Value: nil, Time: ts.Add(-time.Hour)},
		{Key: []byte{}, Value: []byte{}, Time: ts.Add(time.Hour)},
		{Value: []byte("with headers"), Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "c", Value: []byte{}}}, Time: ts},
		{Key: []byte("big"), Value: []byte(strings.Repeat("x", 100_000)), Time: ts},
		{Value: []byte("epoch"), Time: time.Unix(0, 1)},
	}
	for _, durability := range []Durability{Durable, Buffered, Periodic} {
		t.Run(durability.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), &Options{Durability: durability})
			mustCreate(t, l, "rt", TopicConfig{Partitions: 1})
			p, err := l.Producer("rt", nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range sent {
				pos, err := p.Send(context.Background(), r)
				if err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
				if pos != (Position{0, int64(i)}) {
					t.Fatalf("Send %d at %+v", i, pos)
				}
			}
			got := readAll(t, l, "rt", len(sent), nil)
			want := make([]Record, len(sent))
			for i, r := range sent {
				want[i] = r
				want[i].Offset = int64(i)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("records differ (-sent +read):\n%s", diff)
			}
		})
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	l := openTest(t, t.TempDir(), nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p, _ := l.Producer("t", nil)
	c, _ := l.Consumer("t", nil)
	var acks int
	for i := range 100 {
		p.SendAsync(Record{Value: []byte(fmt.Sprint(i))}, func(_ Position, err error) {
			if err == nil {
				acks++
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if acks != 100 {
		t.Fatalf("Close acknowledged %d of 100 queued records", acks)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{
		"CreateTopic": l.CreateTopic("u", TopicConfig{Partitions: 1}),
		"Flush":       p.Flush(context.Background()),
	}
	_, checks["Send"] = p.Send(context.Background(), Record{})
	_, checks["Poll"] = c.Poll(context.Background())
	_, checks["Producer"] = l.Producer("t", nil)
	_, checks["Consumer"] = l.Consumer("t", nil)
	_, checks["Topics"] = l.Topics()
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	var asyncErr error
	p.SendAsync(Record{}, func(_ Position, err error) { asyncErr = err })
	if !errors.Is(asyncErr, ErrClosed) {
		t.Errorf("SendAsync after Close: %v", asyncErr)
	}

	l2 := openTest(t, l.Dir(), nil)
	if got := readAll(t, l2, "t", 100, nil); len(got) != 100 {
		t.Fatalf("reopened log has %d records", len(got))
	}
}

func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil).Close()
	data, err := os.ReadFile(filepath.Join(dir, formatFileName))
	if err != nil || string(data) != "runnel format 1\n" {
		t.Fatalf("format file %q, %v", data, err)
	}
	for _, content := range []string{"runnel format 2\n", "garbage", ""} {
		os.WriteFile(filepath.Join(dir, formatFileName), []byte(content), 0o644)
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("Open with format file %q: %v, want ErrUnsupportedFormat", content, err)
		}
	}
}
