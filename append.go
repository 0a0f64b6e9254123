package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
	"github.com/runnel-log/runnel/internal/tracefmt"
)

// The append protocol (DESIGN §3): under the partition's writer lock
// (writerlock.go: taken, or still held from this Log's last append), find
// the tail, repair whatever a dead writer left past it, roll when the
// segment is full, write the frame uncommitted, commit it, index it,
// publish the new tail and wake readers; then keep or release the lock.
// Making the frame durable comes after, outside the lock (commit.go).

const writerLockByte = 0

// activeSeg is this Log's view of the partition's last segment, valid
// between appends only while no other writer appended (checked cheaply on
// every append).
type activeSeg struct {
	base  int64
	path  string
	sf    *segFile // shared with syncs in flight
	f     *os.File
	fd    int
	cm    *commitMap // a window of the file mapped for commit bytes
	pos   int64      // where the next frame goes
	next  int64      // offset the next record gets
	maxTS int64      // newest record timestamp in the segment so far
	idx   *indexWriter
	probe [12]byte    // findTail's look around pos
	id    os.FileInfo // the file opened: one reopened after releaseFiles must be it

	reserved    int64 // blocks are reserved up to here (prealloc.go)
	noReserve   bool  // reserving failed: append without
	extended    int64 // the file is extended with zeros up to here (0: not)
	extendStep  int64 // the last extension's step (prealloc.go)
	noExtend    bool  // extending failed: pwrite frames
	zeroed      int64 // zeros are written up to here, if past pos (zerowrite.go)
	noZeroWrite bool  // writing zeros failed: leave them fallocated
}

func (a *activeSeg) close() error {
	a.cm.close()
	return errors.Join(a.sf.release(), a.idx.close())
}

// tail is where the segment's committed data ends.
func (a *activeSeg) tail() logPos { return logPos{a.base, a.pos, a.next} }

// errWriterBusy says that an append that may not wait found the writer
// lock (or this Log's append mutex) taken, and did nothing.
var errWriterBusy = errors.New("runnel: writer lock busy")

// appendBatch writes one finished batch and returns its base offset and
// where the frame ends. wait says whether it may wait for the writer
// lock; without it, a lock that is taken, by another process or by this
// Log's maintenance, makes it return errWriterBusy at once. notes are
// called with their records' offsets under the writer lock, before the
// frame is written (SendRecordBatchAsyncNoted).
func (p *partition) appendBatch(fb *frame.Builder, notes []batchNote, wait bool) (int64, logPos, error) {
	base, end, err := p.appendBatchLocked(fb, notes, wait)
	p.log.parts.used(p) // after p.wmu: it may release other partitions' files
	if errors.Is(err, ErrTopicNotFound) {
		// The partition is marked deleted by a DeleteTopic, or the handle
		// stale. Outside p.wmu and the writer lock, which finishing the
		// delete takes.
		p.log.finishDeadDelete(p.topic)
	}
	return base, end, err
}

func (p *partition) appendBatchLocked(fb *frame.Builder, notes []batchNote, wait bool) (int64, logPos, error) {
	if wait {
		p.wmu.Lock()
	} else if !p.wmu.TryLock() {
		return 0, logPos{}, errWriterBusy
	}
	defer p.wmu.Unlock()
	if p.broken != nil {
		return 0, logPos{}, p.broken
	}
	if wait {
		if err := p.lockWriter(context.Background()); err != nil {
			return 0, logPos{}, err
		}
	} else if got, err := p.tryLockWriter(); err != nil {
		return 0, logPos{}, err
	} else if !got {
		return 0, logPos{}, errWriterBusy
	}
	tracePoint(tracefmt.WriterLocked)
	base, err := p.appendLocked(fb, notes)
	p.afterAppend(err == nil)
	tracePoint(tracefmt.AppendDone)
	if err != nil {
		return 0, logPos{}, err
	}
	return base, p.w.tail(), nil
}

// appendLocked is appendBatch under the writer lock.
func (p *partition) appendLocked(fb *frame.Builder, notes []batchNote) (int64, error) {
	if p.shm.deleted() {
		err := p.markedErr()
		if errors.Is(err, ErrTopicNotFound) {
			p.broken = err // damage is not sticky: Repair may clear it
		}
		return 0, err
	}
	// With the lock held since this Log's last append, nobody else can
	// have appended: the tail is known.
	if !p.exact || p.w == nil {
		if err := p.findTail(); err != nil {
			return 0, err
		}
	}
	tracePoint(tracefmt.TailFound)
	w := p.w
	data := fb.Finish(w.next)
	if w.pos > 0 && w.pos+int64(len(data))+frame.HeaderSize > p.topic.cfg.SegmentBytes {
		if err := p.roll(); err != nil {
			return 0, err
		}
		w = p.w
		data = fb.Finish(w.next)
	}
	// Zeros ahead hold blocks already: a reservation would only add a
	// system call.
	if p.extendsAhead() {
		w.extend(w.pos+int64(len(data)), p.topic.cfg.SegmentBytes)
		if mapped := p.mapWrites() && w.cm.copies(len(data)); mapped || p.log.opts.Durability == Durable {
			w.writeZerosAhead(len(data), p.topic.cfg.SegmentBytes, mapped)
		}
	} else {
		w.reserve(w.pos+int64(len(data)), p.topic.cfg.SegmentBytes)
	}
	// The offsets are final (after the roll): notes learn them before
	// any byte of the frame is written, so before any process can see it.
	for _, n := range notes {
		n.fn(w.next + int64(n.idx))
	}
	if err := p.commitFrame(data, false); err != nil {
		return 0, err
	}
	tracePoint(tracefmt.FrameCommitted)
	base, pos := w.next, w.pos
	w.pos += int64(len(data))
	w.next += int64(fb.Count())
	// The index entry and the newest timestamp before the tail is
	// published: the next writer to take the lock starts its tail search
	// at the published tail (findTail) and never sees the frames before
	// it, so what they owe the indexes must be there already. A writer
	// that dies before publishing leaves the frame for the next one to
	// walk, which adds a missing entry then. (The entry is due once per
	// IndexIntervalBytes: readers rarely wait for it.)
	if w.idx.due(pos) {
		if err := w.idx.add(base-w.base, pos, w.maxTS); err != nil {
			// Indexes are caches: a failed entry costs a longer scan.
			p.log.opts.Logger.Warn("runnel: index append failed", "path", w.idx.offPath, "err", err)
		}
	}
	w.maxTS = max(w.maxTS, fb.MaxTime())
	if testHookBeforePublish != nil {
		testHookBeforePublish()
	}
	p.shm.publishTail(w.tail(), w.maxTS)
	p.shm.published()
	tracePoint(tracefmt.Published)
	p.noteAppend(fb.Count(), len(data))
	p.noteAppended()
	return base, nil
}

// testHookBeforePublish, if set, runs after a frame is committed and
// indexed, before its tail is published: a test's writer dies there.
var testHookBeforePublish func()

// mapWrites says whether the next frame may be copied through the
// segment's mapping (commitmap_linux.go): with the pwrite backend, outside
// Durable mode (where each fdatasync write-protects the pages again, and
// every store would fault), and only while this Log keeps the writer lock
// across appends, which it does when no other writer is waiting: writers
// that take turns pwrite (into the zeros a holder left them, if any).
func (p *partition) mapWrites() bool {
	_, pw := p.log.app.(pwriteAppender)
	return pw && p.exact && p.w.cm != nil
}

// extendsAhead says whether the segment is extended with zeros ahead of
// the tail before the next frame (prealloc.go): to copy frames through the
// mapping (mapWrites), and in Durable mode for a writer that keeps the
// writer lock across appends, takes turns with other writers (the zeros
// pass from one to the next with the lock: leaveZeros), or writes into
// zeros already. There a frame written inside the file's size makes its
// fdatasync cheaper, as the file's new size need not be made durable with
// it: a 152-byte pwrite+fdatasync took 155-158 µs into such zeros against
// 200-233 µs appended into reserved blocks (docs/PERFORMANCE.md). A lone
// append to a partition (and one now and then) gains nothing: its sync
// makes the extension's size durable anyway, and the zeros would be cut
// again when it lets the lock go.
func (p *partition) extendsAhead() bool {
	if p.mapWrites() {
		return true
	}
	return p.log.opts.Durability == Durable && (p.exact || !p.contended.IsZero() || p.w.extended > p.w.pos)
}

// commitFrame writes one frame at the tail through the Log's backend, and
// fdatasyncs the segment when sync is set. Appends leave the sync to the
// sync stage (commit.go) in Durable mode, and to the timer or Close in
// the others, so the frame is dirty until then.
func (p *partition) commitFrame(data []byte, sync bool) error {
	if err := p.log.app.appendFrame(p.w.fd, p.w.pos, data, sync, p.w.cm); err != nil {
		err = fmt.Errorf("runnel: append to %s at byte %d: %w", p.w.path, p.w.pos, err)
		if drained, ok := stillInFlight(err); ok {
			p.poison(err, drained)
			return p.broken
		}
		var state [1]byte
		if _, rerr := p.w.f.ReadAt(state[:], p.w.pos+frame.OffState); rerr == nil && state[0] == frame.StateCommitted {
			// The commit landed and the sync failed. After a failed
			// fdatasync the kernel may have dropped the dirty pages, so
			// nothing this Log wrote can be called durable any more:
			// refuse appends until the log is reopened, as databases do.
			p.broken = fmt.Errorf("%w; the partition refuses appends until reopened", err)
			p.dropActive()
			return p.broken
		}
		// The frame is uncommitted and maybe partly written: cut it, and
		// forget the tail; the next append re-discovers it.
		p.cutFailedAppend()
		p.dropActive()
		return err
	}
	if sync {
		p.log.stats.syncs.Add(1)
	} else if p.log.opts.Durability != Durable {
		p.dirty = true
	}
	return nil
}

func (p *partition) dropActive() {
	if p.w == nil {
		return
	}
	// Periodic mode promises a sync within the interval for every segment,
	// including one this Log stops writing to.
	if p.dirty && p.log.opts.Durability == Periodic {
		if err := fdatasync(p.w.fd); err != nil {
			p.log.opts.Logger.Error("runnel: sync before closing segment", "path", p.w.path, "err", err)
		}
	}
	p.dirty = false
	if p.held {
		p.trimExtension()
	}
	p.cur.Store(nil)
	p.w.close()
	p.w = nil
	p.parked = nil
}

// openActive opens (creating) segment base as the active segment.
func (p *partition) openActive(base int64) error {
	p.dropActive()
	path := segmentPath(p.dir, base, logExt)
	f, err := openRegular(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("runnel: open segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	idx, err := openIndexWriter(p.dir, base, st.Size(), p.topic.cfg.IndexIntervalBytes, f)
	if err == nil && !idx.consistent {
		// An entry was lost or damaged (the last time entry does not
		// bound the records before it): the time index can no longer
		// vouch for them. Rebuild both from the log.
		p.log.opts.Logger.Warn("runnel: indexes disagree, rebuilding", "path", path)
		idx.close()
		if err = rebuildIndex(p.dir, base, p.topic.cfg.IndexIntervalBytes); err == nil {
			idx, err = openIndexWriter(p.dir, base, st.Size(), p.topic.cfg.IndexIntervalBytes, nil)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("runnel: open index of %s: %w", path, err)
	}
	sf := newSegFile(base, f)
	p.w = &activeSeg{base: base, path: path, sf: sf, f: f, fd: sf.fd, next: base, maxTS: idx.maxTS, idx: idx, id: st}
	if p.log.opts.Durability != Durable {
		// Each fdatasync write-protects the pages it cleans, so in
		// Durable mode every commit through the mapping would fault
		// (commitmap_linux.go): there the commit byte is a pwrite.
		p.w.cm = newCommitMap(sf.fd)
	}
	p.cur.Store(sf)
	return nil
}

// roll seals the active segment and starts the next one. The caller holds
// the writer lock, so no two processes can roll the same segment.
//
// The sealed segment is fdatasync'd with its seal, in every durability
// mode, and the new segment's directory entry is synced: one fdatasync per
// segment, so that the sync which moves the durable point into a later
// segment (commit.go) finds the sealed ones clean. That sync fdatasyncs
// them again all the same, since a roller may die before its own.
func (p *partition) roll() error {
	// A sealed segment never carries zeros past its seal, not even after
	// a power loss: the cut of the zeros ahead of the tail (this writer's,
	// or a dead one's that repairTail cut) is made durable before the seal
	// is written, or a disk could keep the seal and the longer size of an
	// earlier sync (TestPowerLoss: "bytes after the seal"). Rolls are rare,
	// and the data before was synced or is synced with the seal anyway.
	p.trimExtension()
	if err := fdatasync(p.w.fd); err != nil {
		return fmt.Errorf("runnel: sync %s before sealing it: %w", p.w.path, err)
	}
	seal := frame.AppendSeal(nil, p.w.next)
	seal[frame.OffState] = frame.StateWritten
	began := time.Now()
	if err := p.commitFrame(seal, true); err != nil {
		return err
	}
	p.observeSync(began)
	p.releaseReserve(p.w.pos + int64(len(seal)))
	p.w.idx.addTime(p.w.next-p.w.base, p.w.maxTS)
	next := p.w.next
	if err := p.openActive(next); err != nil {
		return err
	}
	if err := p.segmentCreated(); err != nil {
		return err
	}
	if err := p.walkTail(0, next, true, p.knownCommitted(evidence{})); err != nil {
		return err
	}
	p.retainAfterRoll()
	return nil
}
