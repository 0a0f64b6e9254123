package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncedSizes is a sync observer that remembers, for each file, the size
// it had when its last completed fdatasync started (what that sync made
// durable), and checks each checkpoint msync'd into partition.meta against
// it: a checkpoint must never vouch for log bytes no fdatasync covered.
type syncedSizes struct {
	mu      sync.Mutex
	started map[int]string // fd -> path of a sync in progress
	sizeAt  map[int]int64  // fd -> size of the file when its sync started
	synced  map[string]int64
	bad     []string
	total   int
	onMeta  func(base, pos int64) // called for each checkpoint synced, if set
}

func newSyncedSizes() *syncedSizes {
	return &syncedSizes{started: map[int]string{}, sizeAt: map[int]int64{}, synced: map[string]int64{}}
}

func (s *syncedSizes) observe(e syncEvent) {
	switch {
	case e.kind == syncData && !e.done:
		p, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", e.fd))
		st, _ := os.Stat(p)
		s.mu.Lock()
		s.started[e.fd] = p
		if st != nil {
			s.sizeAt[e.fd] = st.Size()
		}
		s.mu.Unlock()
	case e.kind == syncData && e.done && e.err == nil:
		s.mu.Lock()
		if p := s.started[e.fd]; s.sizeAt[e.fd] > s.synced[p] {
			s.synced[p] = s.sizeAt[e.fd]
		}
		s.mu.Unlock()
	case e.kind == syncMeta && e.done:
		b, err := os.ReadFile(e.path)
		if err != nil || len(b) < metaCkptPosOff+8 {
			return
		}
		base := int64(binary.LittleEndian.Uint64(b[metaCkptBaseOff:]))
		pos := int64(binary.LittleEndian.Uint64(b[metaCkptPosOff:]))
		seg := segmentPath(filepath.Dir(e.path), base, logExt)
		s.mu.Lock()
		s.total++
		if pos > 0 && pos > s.synced[seg] {
			s.bad = append(s.bad, fmt.Sprintf("checkpoint msync'd at segment %d byte %d; the log was synced to byte %d", base, pos, s.synced[seg]))
		}
		onMeta := s.onMeta
		s.mu.Unlock()
		if onMeta != nil {
			onMeta(base, pos)
		}
	}
}

// install makes s the process's sync observer until the test ends.
func (s *syncedSizes) install(t *testing.T) {
	obs := s.observe
	syncObserver.Store(&obs)
	t.Cleanup(func() { syncObserver.Store(nil) })
}

func (s *syncedSizes) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Error(b)
	}
}

// In Durable mode an append's fdatasync runs after its commit, outside the
// writer lock, and the checkpointer may count the frame before it ran:
// the checkpoint must still sync the log it vouches for. Senders that do
// not wait for durability (AckCommitted) make it likely.
func TestCheckpointNeverAheadOfLogSync(t *testing.T) {
	for _, acks := range []Acks{AckDurability, AckCommitted} {
		t.Run(fmt.Sprint(acks), func(t *testing.T) {
			s := newSyncedSizes()
			s.install(t)
			l := openTest(t, t.TempDir(), &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
			p := mustProducer(t, l, "t", &ProducerOptions{Acks: acks})
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 150 {
						if _, err := p.Send(context.Background(), Record{Value: make([]byte, 900)}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			s.check(t)
			if s.total == 0 {
				t.Fatal("no checkpoint was synced")
			}
		})
	}
}

// The forced interleaving: the first fdatasync of a new segment (an
// append's, in Durable mode) is held back until a checkpoint in that
// segment is synced, or until another sync of the segment starts (the
// checkpoint's own, which must come first). When the checkpoint is
// synced, power fails: the image keeps of the new segment only what its
// syncs covered. A checkpoint past that would make the next writer find
// offsets "known committed" gone, and refuse appends.
func TestCheckpointWaitsForLogSyncDurable(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(t.TempDir(), "img")
	pdir := filepath.Join(dir, "topics", "t", "0")
	s := newSyncedSizes()
	var mu sync.Mutex
	heldPath := ""
	frozen := false // the image is being taken: no sync may start
	release := make(chan struct{})
	var releaseOnce, imageOnce sync.Once
	metaSynced := make(chan struct{})
	copyNow := make(chan [2]int64)
	copied := make(chan struct{})
	s.onMeta = func(base, pos int64) {
		if base == 0 {
			return
		}
		imageOnce.Do(func() {
			mu.Lock()
			frozen = true
			mu.Unlock()
			copyNow <- [2]int64{base, pos}
			<-copied
			releaseOnce.Do(func() { close(release) })
			close(metaSynced)
		})
	}
	obs := func(e syncEvent) {
		if e.kind == syncData && !e.done {
			mu.Lock()
			wait := frozen
			mu.Unlock()
			if wait {
				<-copied
			}
			p, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", e.fd))
			if strings.HasSuffix(p, logExt) && filepath.Base(p) != filepath.Base(segmentPath(pdir, 0, logExt)) {
				mu.Lock()
				first := heldPath == ""
				if first {
					heldPath = p
				} else if p == heldPath {
					releaseOnce.Do(func() { close(release) })
				}
				mu.Unlock()
				if first {
					<-release
				}
			}
		}
		s.observe(e)
	}
	syncObserver.Store(&obs)
	defer syncObserver.Store(nil)

	l := openTest(t, dir, &Options{Durability: Durable, Backend: BackendPwrite, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", nil)
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000)}); err != nil {
				errc <- err
				return
			}
			select {
			case <-metaSynced:
				errc <- nil
				return
			default:
			}
		}
	}()
	var ck [2]int64
	select {
	case ck = <-copyNow:
	case err := <-errc:
		t.Fatalf("no checkpoint in a later segment: %v", err)
	}
	// The image: syncs that started before it are done or cover only
	// what they found; none starts while it is taken.
	copyTree(t, dir, img)
	seg := segmentPath(pdir, ck[0], logExt)
	s.mu.Lock()
	synced := s.synced[seg]
	s.mu.Unlock()
	if err := os.Truncate(segmentPath(filepath.Join(img, "topics", "t", "0"), ck[0], logExt), synced); err != nil {
		t.Fatal(err)
	}
	close(copied)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ck[1] > synced {
		t.Errorf("checkpoint at byte %d of segment %d vouches for log bytes no fdatasync covered (synced: %d)", ck[1], ck[0], synced)
	}
	syncObserver.Store(nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s.check(t)

	setBootIDForTest(t, [16]byte{9, 9, 9})
	l2 := openTest(t, img, &Options{Durability: Durable, RetentionInterval: -1})
	p2 := mustProducer(t, l2, "t", nil)
	if _, err := p2.Send(context.Background(), Record{Value: []byte("after")}); err != nil {
		t.Fatalf("append after the power loss: %v\nrecoveries: %+v", err, l2.Recoveries())
	}
	readAllClean(t, l2)
}

// Same boot, partition.meta's checkpoint does not check out (torn by a
// crash as it was rewritten, damaged, or written by an older runnel): the
// next writer verifies the whole partition and records a checkpoint at
// the tail. It must sync the log it vouches for first.
func TestRecoveryCheckpointSyncsLog(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	p := mustProducer(t, l, "t", nil)
	sendSeq(t, p, 0, seqRecords(0, 50))
	// A byte of the checkpoint flipped in the page cache.
	part := l.topics["t"].parts()[0]
	part.shm.mem[metaCkptPosOff] ^= 0xff
	part.stopHold()

	s := newSyncedSizes()
	s.install(t)
	l2 := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	p2 := mustProducer(t, l2, "t", nil)
	if _, err := p2.Send(context.Background(), Record{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s.check(t)
	if s.total == 0 {
		t.Fatal("recovery synced no checkpoint")
	}
}

var _ = bytes.Repeat
