package kafka

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/runnel-log/runnel/internal/fifotest"
	"github.com/runnel-log/runnel/internal/regfile"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The server's files under kafka/ are opened by runnel's rule
// (regfile.Open): a FIFO at one of their names makes the call that reads
// it fail at once, or pass it over, naming it, where the open waited for
// a writer that never came.

// namesNotRegular checks that err says path is not a regular file.
func namesNotRegular(t *testing.T, what, path string, err error) {
	t.Helper()
	if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), path) {
		t.Errorf("%s: %v, want an error naming %s, not a regular file", what, err, path)
	}
}

func openFifoTestLog(t *testing.T) *runnel.Log {
	t.Helper()
	l, err := runnel.Open(t.TempDir(), &runnel.Options{Durability: runnel.Buffered, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestNonRegularClusterID: NewServer fails on a FIFO at kafka/cluster.id.
func TestNonRegularClusterID(t *testing.T) {
	l := openFifoTestLog(t)
	path := filepath.Join(l.Dir(), stateDir, clusterIDFile)
	fifotest.Replace(t, path)
	err := fifotest.Returns(t, "NewServer", path, func() error {
		_, err := NewServer(l, nil)
		return err
	})
	namesNotRegular(t, "NewServer", path, err)
}

// TestNonRegularProducerIDs: a reservation of producer ids fails on a
// FIFO at kafka/producer-ids, where it read "illegal seek".
func TestNonRegularProducerIDs(t *testing.T) {
	l := openFifoTestLog(t)
	path := filepath.Join(l.Dir(), stateDir, pidFile)
	fifotest.Replace(t, path)
	err := fifotest.Returns(t, "reserve", path, func() error {
		_, err := newPIDAllocator(l.Dir()).reserve(context.Background())
		return err
	})
	namesNotRegular(t, "reserve", path, err)
}

// TestNonRegularGroupState: a FIFO at the server's group state file is
// a state that does not check out: warned about, naming it, and ignored.
func TestNonRegularGroupState(t *testing.T) {
	l := openFifoTestLog(t)
	const addr = "127.0.0.1:9092"
	path := groupStatePath(l.Dir(), addr)
	fifotest.Replace(t, path)
	var warned []any
	err := fifotest.Returns(t, "openGroupState", path, func() error {
		f, saved, err := openGroupState(l.Dir(), addr, func(msg string, args ...any) { warned = append(warned, args...) })
		if err == nil {
			f.close()
			if len(saved) != 0 {
				err = errors.New("groups read from a FIFO")
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, a := range warned {
		if e, ok := a.(error); ok {
			werr = e
		}
	}
	namesNotRegular(t, "the warning", path, werr)
}

// TestNonRegularJournalFile: a DeleteTopics that drops the topic's
// producer journals passes over a FIFO among their files, where the
// look at its header waited for a writer.
func TestNonRegularJournalFile(t *testing.T) {
	l := openFifoTestLog(t)
	ts := startServerOn(t, l, nil)
	ts.createTopic("j", 1)
	path := filepath.Join(journalDir(l.Dir(), "j", 0), "stray")
	fifotest.Replace(t, path)
	err := fifotest.Returns(t, "DeleteTopics", path, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := kadm.NewClient(ts.client()).DeleteTopics(ctx, "j")
		if err == nil {
			err = res["j"].Err
		}
		return err
	})
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the FIFO, none of runnel's: %v, want it left", err)
	}
}

// TestNonRegularGroupStateTemp: a FIFO put at the group state file's
// temporary name while the server runs fails the next write (logged)
// at once, naming it, and the write removes it, so the one after is
// written; the write's open waited for a reader for good, holding the
// file's mutex, so that every later save of a group waited too.
func TestNonRegularGroupStateTemp(t *testing.T) {
	l := openFifoTestLog(t)
	const addr = "127.0.0.1:9092"
	f, _, err := openGroupState(l.Dir(), addr, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	tmp := groupStatePath(l.Dir(), addr) + groupStateTempSuffix
	fifotest.Replace(t, tmp)
	err = fifotest.Returns(t, "write", tmp, f.write)
	namesNotRegular(t, "write", tmp, err)
	if err := f.write(); err != nil {
		t.Errorf("the write after it: %v", err)
	}
}
