package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

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
	pending  *batch    // records waiting for the writer; never nil once started
	inflight *batch    // the batch being written, if any
	spare    *frame.Builder
	closed   bool
	started  bool
	loopDone chan struct{}
	batchCap atomic.Int64 // half the segment size: the largest batch

	// Appends, guarded by wmu; only the writer goroutine appends, but the
	// periodic syncer and Close also touch the active segment.
	wmu      sync.Mutex
	meta     *lockFile  // partition.meta: byte 0 is the writer lock
	shm      *metaMap   // partition.meta mapped: wake-ups and the durable point
	w        *activeSeg // this Log's view of the tail; nil until first append
	broken   error      // sticky: committed data is damaged, appends refused
	dirty    bool       // written since the last fdatasync (Periodic mode)
	dirDirty bool       // a segment was created since the directory was synced

	// abandon is closed when a bounded close (Log.CloseContext,
	// DeleteTopicContext) runs out of time: every wait for the writer
	// lock, now or later, ends with ErrClosed.
	abandon     chan struct{}
	abandonOnce sync.Once
	abandoned   atomic.Bool // a wait ended so
}

const metaFileName = "partition.meta"

func newPartition(l *Log, t *topic, id int) *partition {
	p := &partition{
		log:   l,
		topic: t,
		id:    id,
		dir:   filepath.Join(l.topicDir(t.name), strconv.Itoa(id)),

		abandon: make(chan struct{}),
	}
	p.work.L = &p.mu
	p.space.L = &p.mu
	p.batchCap.Store(t.cfg.SegmentBytes / 2)
	return p
}

// lockForMaintenance takes the partition's writer lock, in this process
// and across processes, for work that rewrites its files outside an append
// (retention, repair). It fails with ErrClosed once the partition is
// closed. unlock releases both locks.
func (p *partition) lockForMaintenance(ctx context.Context) (unlock func(), err error) {
	p.wmu.Lock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.wmu.Unlock()
		return nil, ErrClosed
	}
	if err := p.lockWriterContext(ctx); err != nil {
		p.wmu.Unlock()
		return nil, err
	}
	return func() {
		p.meta.Unlock(writerLockByte)
		p.wmu.Unlock()
	}, nil
}

// giveUp ends the partition's waits for the writer lock, present and
// future, with ErrClosed: the bounded close that called it is out of time.
func (p *partition) giveUp() { p.abandonOnce.Do(func() { close(p.abandon) }) }

// waitWriterLock takes the writer lock on p.meta, waiting while another
// process (or Log) holds it until ctx ends or the partition is given up.
// A free lock is taken even then.
func (p *partition) waitWriterLock(ctx context.Context) error {
	if ok, err := p.meta.TryLock(writerLockByte); ok || err != nil {
		return err
	}
	select {
	case <-p.abandon:
		return p.gaveUp()
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.abandon:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := p.meta.Lock(wctx, writerLockByte)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return p.gaveUp()
	}
	return err
}

// gaveUp notes and returns the error of a wait for the writer lock that a
// bounded close ended.
func (p *partition) gaveUp() error {
	p.abandoned.Store(true)
	return fmt.Errorf("%w: gave up waiting for another process's writer lock on %s", ErrClosed, p.dir)
}

// errClosed is the error of a send to a closed partition: ErrClosed, or
// ErrTopicNotFound when it closed because its topic was deleted.
func (p *partition) errClosed() error {
	if p.topic.gone.Load() {
		return p.topic.errGone()
	}
	return ErrClosed
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
			errs = append(errs, p.syncLocked())
		}
		errs = append(errs, p.w.close())
		p.w = nil
	}
	if p.meta != nil {
		errs = append(errs, p.meta.Close())
		p.meta = nil
	}
	errs = append(errs, p.shm.close())
	p.shm = nil
	return errors.Join(errs...)
}

// syncIfDirty fdatasyncs the active segment if this Log wrote to it since
// the last sync.
func (p *partition) syncIfDirty() error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if !p.dirty || p.w == nil {
		return nil
	}
	return p.syncLocked()
}

// syncLocked fdatasyncs the active segment and, if the writer lock is free
// at once, records the durable point. The caller holds p.wmu (so this Log
// is not inside an append). The point's fields are only ever written by
// the writer-lock holder, so that no two writers can interleave them; a
// busy lock just leaves the point behind, which costs a longer
// re-verification after a power loss, never a wrong one.
func (p *partition) syncLocked() error {
	if err := fdatasync(p.w.fd); err != nil {
		return fmt.Errorf("runnel: sync %s: %w", p.w.path, err)
	}
	p.dirty = false
	p.log.stats.syncs.Add(1)
	if p.dirDirty {
		if err := syncDir(p.dir); err != nil {
			return err
		}
		p.dirDirty = false
	}
	if p.shm == nil || p.meta == nil {
		return nil
	}
	if got, err := p.meta.TryLock(writerLockByte); err != nil || !got {
		return nil
	}
	defer p.meta.Unlock(writerLockByte)
	_, base, pos, _, ok := p.shm.durablePoint()
	if !ok || base < p.w.base || base == p.w.base && pos < p.w.pos {
		p.shm.setDurablePoint(currentBootID, p.w.base, p.w.pos, p.w.next)
	}
	return nil
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

// outOfRange is the error for offset, which p does not hold, with p's
// extent as it is on disk now.
func (p *partition) outOfRange(offset int64) error {
	e := &OutOfRangeError{Topic: p.topic.name, Partition: p.id, Offset: offset, End: -1}
	if info, err := p.describe(); err == nil {
		e.Start, e.End = info.StartOffset, info.NextOffset
	}
	return e
}
