package runnel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/fifotest"
)

// wantNotRegular checks that err is the damage of what is at path: a
// *CorruptError naming it, saying it is not a regular file.
func wantNotRegular(t *testing.T, what, path string, err error) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("%s: %v, want a *CorruptError naming %s, not a regular file", what, err, path)
	}
}

// nonRegularLog makes a log with topic t of one partition of two
// segments and more (indexed), a log start recorded by DeleteRecords, and
// group g's offsets of the topic; it returns its directory, closed.
func nonRegularLog(t *testing.T) string {
	dir := t.TempDir()
	ctx := context.Background()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: 64 << 10, IndexIntervalBytes: 4 << 10})
	p := mustProducer(t, l, "t", nil)
	value := bytes.Repeat([]byte("v"), 8<<10)
	for range 20 {
		if _, err := p.Send(ctx, Record{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.DeleteRecords(ctx, "t", 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(ctx, "g", "t", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestNonRegularFiles: a FIFO at the name of one of runnel's files makes
// the calls that read it fail at once with a *CorruptError naming it,
// where their open waited for a writer that never came (or, at
// partition.meta and the active segment, opened for writing too, failed
// as "illegal seek"); Verify reports it as a problem naming it, and
// checks the rest. A directory or a socket there is the same damage,
// where the open of a file opened for writing too failed as "is a
// directory" and any open of a socket as "no such device or address",
// which Verify took for a partition.meta it could not read.
func TestNonRegularFiles(t *testing.T) {
	opts := &Options{Durability: Buffered, RetentionInterval: -1}
	part := func(dir string) string { return filepath.Join(dir, "topics", "t", "0") }
	poll := func(l *Log, start StartPosition) error {
		c, err := l.Consumer("t", &ConsumerOptions{Start: start})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.TryPoll()
		return err
	}
	for _, c := range []struct {
		name    string
		problem ProblemKind // Verify's
		path    func(dir string) string
		op      func(l *Log) error
	}{
		{"topic.json", ProblemCorrupt, func(dir string) string { return filepath.Join(dir, "topics", "t", topicFileName) },
			func(l *Log) error { _, err := l.DescribeTopic("t"); return err }},
		{"log-start", ProblemCorrupt, func(dir string) string { return logStartPath(part(dir)) },
			func(l *Log) error { return poll(l, Earliest) }},
		{"partition.meta", ProblemCorrupt, func(dir string) string { return filepath.Join(part(dir), metaFileName) },
			func(l *Log) error { _, err := l.DescribeTopic("t"); return err }},
		{"first segment", ProblemCorrupt, func(dir string) string { return segmentPath(part(dir), 0, logExt) },
			func(l *Log) error { return poll(l, Earliest) }},
		{"first segment, Backup", ProblemCorrupt, func(dir string) string { return segmentPath(part(dir), 0, logExt) },
			func(l *Log) error {
				_, err := l.Backup(context.Background(), filepath.Join(t.TempDir(), "copy"), nil)
				return err
			}},
		{"last segment", ProblemCorrupt, func(dir string) string {
			bases, err := listSegments(part(dir))
			if err != nil || len(bases) < 2 {
				t.Fatalf("segments %v, %v: want two or more", bases, err)
			}
			return segmentPath(part(dir), bases[len(bases)-1], logExt)
		}, func(l *Log) error {
			p, err := l.Producer("t", nil)
			if err != nil {
				return err
			}
			defer p.Close()
			_, err = p.Send(context.Background(), Record{Value: []byte("w")})
			return err
		}},
		{"offset index", ProblemIndex, func(dir string) string { return segmentPath(part(dir), 0, indexExt) },
			func(l *Log) error { return poll(l, AtOffset(5)) }},
		{"time index", ProblemIndex, func(dir string) string { return segmentPath(part(dir), 0, timeIndexExt) },
			func(l *Log) error { return poll(l, AtTime(time.Now().Add(-time.Hour))) }},
	} {
		for _, k := range notRegularKinds {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				dir := nonRegularLog(t)
				path := c.path(dir)
				k.replace(t, path)
				l := openTest(t, dir, opts)
				err := fifotest.Returns(t, c.name, path, func() error { return c.op(l) })
				wantNotRegular(t, c.name, path, err)

				var rep VerifyReport
				err = fifotest.Returns(t, "Verify", path, func() (err error) {
					rep, err = l.Verify(context.Background(), "", nil)
					return err
				})
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				named := false
				for _, p := range rep.Problems {
					named = named || p.Path == path && p.Kind == c.problem && strings.Contains(p.Detail, "not a regular file")
				}
				if !named {
					t.Errorf("Verify: %v, want a %v problem naming %s, not a regular file", rep.Problems, c.problem, path)
				}
			})
		}
	}
}

// notRegularKinds are what TestNonRegularFiles puts at a file's name: a
// FIFO, which an open waits on; a directory, whose open fails where it
// is for writing; a socket, whose open always fails.
var notRegularKinds = []struct {
	name    string
	replace func(testing.TB, string)
}{
	{"FIFO", fifotest.Replace},
	{"directory", func(t testing.TB, path string) {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}},
	{"socket", fifotest.ReplaceSocket},
}

// TestNonRegularFormatFile: a FIFO at runnel.format fails Open at once,
// naming it.
func TestNonRegularFormatFile(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, formatFileName)
	fifotest.Replace(t, path)
	err := fifotest.Returns(t, "Open", path, func() error {
		l, err := Open(dir, nil)
		if err == nil {
			l.Close()
		}
		return err
	})
	wantNotRegular(t, "Open", path, err)
}

// TestNonRegularDeleteIntent: a FIFO at a topic's delete intent path is
// a file there that is no intent, as one that does not hold the intent's
// line is: DeleteTopic goes on, where reading it waited for a writer.
func TestNonRegularDeleteIntent(t *testing.T) {
	dir := nonRegularLog(t)
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	path := l.intentPath("t")
	fifotest.Replace(t, path)
	err := fifotest.Returns(t, "DeleteTopic", path, func() error { return l.DeleteTopic("t") })
	if err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := l.DescribeTopic("t"); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("DescribeTopic after the delete: %v, want ErrTopicNotFound", err)
	}
}

// TestNonRegularOffsetsFile: anything but a regular file at a group's
// offsets file is damage that every look at the group's topics meets,
// as the Consumer that opens it does: Verify reports it, naming it, and
// DescribeGroup names it for its topic, where both passed over the name
// (the group then had no offsets for the topic, and Verify found nothing
// wrong), and the Consumer said an empty offsets file of a FIFO or a
// socket.
func TestNonRegularOffsetsFile(t *testing.T) {
	for _, k := range notRegularKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := nonRegularLog(t)
			path := offsetsPath(dir, "g", "t")
			k.replace(t, path)
			l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})

			err := fifotest.Returns(t, "Consumer", path, func() error {
				c, err := l.Consumer("t", &ConsumerOptions{Group: "g"})
				if err == nil {
					c.Close()
				}
				return err
			})
			wantNotRegular(t, "Consumer", path, err)

			rep, err := l.Verify(context.Background(), "", nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			named := false
			for _, p := range rep.Problems {
				named = named || p.Path == path && p.Kind == ProblemOffsets && strings.Contains(p.Detail, "not a regular file")
			}
			if !named {
				t.Errorf("Verify: %v, want an offsets problem naming %s, not a regular file", rep.Problems, path)
			}

			_, err = l.DescribeGroup("g")
			if tes := GroupTopicErrors(err); len(tes) != 1 || tes[0].Topic != "t" {
				t.Errorf("DescribeGroup: %v, want topic t's error", err)
			} else {
				wantNotRegular(t, "DescribeGroup", path, tes[0].Err)
			}
		})
	}
}

// TestLinkedOffsetsFile: a symbolic link to a group's offsets file is
// the file, as FORMAT says of every file of the directory: DescribeGroup
// and Verify read it, as a Consumer of the group does, where both passed
// over the name (the group was not found).
func TestLinkedOffsetsFile(t *testing.T) {
	dir := nonRegularLog(t)
	path := offsetsPath(dir, "g", "t")
	moved := filepath.Join(dir, "elsewhere.offsets")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, path); err != nil {
		t.Fatal(err)
	}
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	info, err := l.DescribeGroup("g")
	if err != nil || len(info.Topics) != 1 || info.Topics[0].Topic != "t" {
		t.Errorf("DescribeGroup: %+v, %v, want topic t", info, err)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("Verify: %v, %v, want no problem", rep.Problems, err)
	}
}
