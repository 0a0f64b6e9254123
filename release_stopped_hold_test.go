package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// heldBehindStopped is the state releaseHoldBehindStopped leaves: a Send
// to partition "held" waits, holding its append mutex, for a writer lock
// that a stopped process took the moment a release of that partition
// let this Log's kept lock go, and the release's Send to another
// partition has returned (or the test failed).
type heldBehindStopped struct {
	l      *Log
	held   *partition
	holder *os.Process
	waits  chan error // the held Send's result
}

// releaseHoldBehindStopped drives the window in which a release stops a
// kept writer lock's watcher: the watcher, woken by the release, is held
// (testHookWatcherWoke) while another process takes the lock the release
// let go and is stopped, and a Send of this Log to the partition takes
// its append mutex (p.wmu) and waits for that lock. Then the watcher goes
// on. The release had waited for the watcher to end, and the watcher, to
// end, for p.wmu: the Send to another partition whose admission asked for
// the release (a budget of two partitions) waited as long as the process
// was stopped.
func releaseHoldBehindStopped(t *testing.T, mode Durability) heldBehindStopped {
	t.Helper()
	// The watcher sleeps until the release stops it: its first wake-up
	// is the release's.
	stretchHold(t)
	l := openTest(t, t.TempDir(), &Options{Durability: mode, SyncInterval: time.Hour, RetentionInterval: -1, MaxOpenFiles: minMaxOpenFiles})
	ctx := context.Background()
	prods := map[string]*Producer{}
	for _, name := range []string{"held", "other1", "other2"} {
		mustCreate(t, l, name, TopicConfig{Partitions: 1})
		prods[name] = mustProducer(t, l, name, nil)
	}
	held := l.topics["held"].parts()[0]

	woke, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookWatcherWoke = func(p *partition) {
		if p == held {
			once.Do(func() { close(woke); <-resume })
		}
	}
	t.Cleanup(func() { testHookWatcherWoke = nil })
	var resumeOnce sync.Once
	resumeWatcher := func() { resumeOnce.Do(func() { close(resume) }) }
	t.Cleanup(resumeWatcher)

	for _, name := range []string{"held", "other1"} {
		if _, err := prods[name].Send(ctx, Record{Value: []byte(name)}); err != nil {
			t.Fatal(err)
		}
	}
	// A third partition: its admission releases "held", the one the
	// clock hand meets first unused.
	sent := make(chan error, 1)
	go func() {
		_, err := prods["other2"].Send(ctx, Record{Value: []byte("other2")})
		sent <- err
	}()
	inTime(t, "the release to wake the kept lock's watcher", func() error { <-woke; return nil })

	metaPath := filepath.Join(held.dir, metaFileName)
	holder, _ := holdInChild(t, metaPath, writerLockByte)
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Signal(syscall.SIGCONT) })
	meta, err := openMeta(held.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.close() })
	waits := make(chan error, 1)
	prods["held"].SendAsync(Record{Value: []byte("behind")}, func(_ Position, err error) { waits <- err })
	waitFor(t, 30*time.Second, "the Send to wait for the stopped process's writer lock", func() bool {
		return meta.waiting.count().Load() > 0
	})

	resumeWatcher()
	err = inTime(t, "the Send to another partition, whose admission released the held partition's files,", func() error { return <-sent })
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().OpenPartitions; got > 2 {
		t.Errorf("%d partitions with files open, want at most the budget's 2", got)
	}
	return heldBehindStopped{l: l, held: held, holder: holder.Process, waits: waits}
}

// TestReleaseBehindStoppedHold: a release of a partition whose kept
// writer lock another process took, and stopped holding, the moment the
// release let it go, waits for nothing that process does. The Send whose
// admission asked for it returns, and a bounded CloseContext returns.
func TestReleaseBehindStoppedHold(t *testing.T) {
	for _, mode := range []Durability{Buffered, Periodic} {
		t.Run(mode.String(), func(t *testing.T) {
			s := releaseHoldBehindStopped(t, mode)
			closeGivesUp(t, s.l)
			if err := inTime(t, "the held Send's callback", func() error { return <-s.waits }); !errors.Is(err, ErrClosed) {
				t.Errorf("the Send behind the stopped process: %v, want ErrClosed", err)
			}
		})
	}
}

// TestReleaseBehindStoppedHoldLater: the partition that kept its files
// because its Send waited for the stopped process releases them at a
// later try, the idle sweep's, once the process is gone and the Send done.
func TestReleaseBehindStoppedHoldLater(t *testing.T) {
	s := releaseHoldBehindStopped(t, Buffered)
	s.holder.Kill()
	if err := inTime(t, "the held Send", func() error { return <-s.waits }); err != nil {
		t.Fatalf("the Send once the stopped process is gone: %v", err)
	}
	released := s.l.Stats().FileReleases
	// The first sweep unmarks the partition the Send used; a sweep may
	// also meet it busy (a sync stage finishing) and keep it a sweep
	// longer.
	for i := 0; ; i++ {
		s.l.parts.sweep()
		s.held.wmu.Lock()
		open := s.held.shm != nil || s.held.meta != nil || s.held.w != nil
		s.held.wmu.Unlock()
		if !open {
			break
		}
		if i > 1000 {
			t.Fatalf("the held partition still has its files open after %d sweeps", i)
		}
		time.Sleep(time.Millisecond)
	}
	if got := s.l.Stats().FileReleases; got <= released {
		t.Errorf("FileReleases %d, want more than %d", got, released)
	}
	recs := readAll(t, s.l, "held", 2, nil)
	if got := fmt.Sprintf("%s %s", recs[0].Value, recs[1].Value); got != "held behind" {
		t.Errorf("the held partition holds %s, want held behind", got)
	}
}
