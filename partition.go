package runnel

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/runnel-log/runnel/internal/frame"
)

// partition is a Log's handle on one partition directory. Its writer side
// (batch queue in producer.go, appends in append.go) is shared by every
// Producer of the Log; readers (reader.go) only read its files.
type partition struct {
	log   *Log
	topic *topic
	id    int
	dir   string

	// Batching, guarded by mu (producer.go).
	mu       sync.Mutex
	work     sync.Cond // the writer waits for a pending record
	space    sync.Cond // senders wait for room in the pending batch
	pending  *batch // records waiting for the writer; never nil once started
	inflight *batch // the batch being written, if any
	spare    *frame.Builder
	closed   bool
	started  bool
	loopDone chan struct{}

	// Appends, guarded by wmu; only the writer goroutine appends, but the
	// periodic syncer and Close also touch the active segment.
	wmu    sync.Mutex
	meta   *lockFile  // partition.meta: byte 0 is the writer lock
	w      *activeSeg // this Log's view of the tail; nil until first append
	broken error      // sticky: committed data is damaged, appends refused
	dirty  bool       // written since the last fdatasync (Periodic mode)

	// Readers waiting for appends by this Log, woken after each batch.
	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
}

const metaFileName = "partition.meta"

func newPartition(l *Log, t *topic, id int) *partition {
	p := &partition{
		log:   l,
		topic: t,
		id:    id,
		dir:   filepath.Join(l.topicDir(t.name), strconv.Itoa(id)),
		subs:  map[chan struct{}]struct{}{},
	}
	p.work.L = &p.mu
	p.space.L = &p.mu
	return p
}

// subscribe registers ch to receive a non-blocking send after every batch
// this Log appends to the partition.
func (p *partition) subscribe(ch chan struct{}) {
	p.subMu.Lock()
	p.subs[ch] = struct{}{}
	p.subMu.Unlock()
}

func (p *partition) unsubscribe(ch chan struct{}) {
	p.subMu.Lock()
	delete(p.subs, ch)
	p.subMu.Unlock()
}

// notify wakes every subscribed reader without blocking on any.
func (p *partition) notify() {
	p.subMu.Lock()
	for ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.subMu.Unlock()
}

// close drains the batch queue, then closes the partition's files.
func (p *partition) close() error {
	p.mu.Lock()
	p.closed = true
	started := p.started
	p.work.Broadcast()
	p.space.Broadcast()
	p.mu.Unlock()
	if started {
		<-p.loopDone
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	var errs []error
	if p.w != nil {
		if p.dirty {
			errs = append(errs, fdatasync(p.w.fd))
		}
		errs = append(errs, p.w.close())
		p.w = nil
	}
	if p.meta != nil {
		errs = append(errs, p.meta.Close())
		p.meta = nil
	}
	p.notify()
	return errors.Join(errs...)
}

// describe reads the partition's extent from disk, without any lock.
func (p *partition) describe() (PartitionInfo, error) {
	info := PartitionInfo{Partition: p.id}
	bases, err := listSegments(p.dir)
	if err != nil {
		return info, err
	}
	info.Segments = len(bases)
	for _, b := range bases {
		if st, err := os.Stat(segmentPath(p.dir, b, logExt)); err == nil {
			info.Bytes += st.Size()
		}
	}
	if len(bases) == 0 {
		return info, nil
	}
	info.StartOffset = bases[0]
	info.NextOffset, err = p.endOffset()
	return info, err
}

// endOffset finds the offset after the last committed record by reading,
// lock-free, from the last segment's last index entry.
func (p *partition) endOffset() (int64, error) {
	r := newPartReader(p, 0)
	defer r.close()
	if err := r.seekEnd(); err != nil {
		return 0, err
	}
	return r.next, nil
}
