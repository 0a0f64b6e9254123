package runnel

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints bound recovery: after a reboot the first writer verifies
// only what follows the last synced checkpoint (meta_checkpoint.go). A
// partition takes one every checkpointBytes of appended log and at every
// roll; so a recovery verifies at most about that much. Taking one syncs
// what it covers first: the segments written since the last one and their
// index files. The log is synced in every mode unless this boot's durable
// point already covers the checkpoint: even a Durable append's own
// fdatasync may not have run yet when its frame is counted (it runs after
// the writer lock is let go, may wait on another process's, or nobody
// waits for it with AckCommitted). That
// is done off the append path, by one goroutine per Log, so a
// checkpoint never delays an append by more than the moment its writer
// lock is held to record it. Close takes none: it would cost several syncs
// to save a recovery the reading of a few MiB.

// checkpointBytes is how much log a partition takes between checkpoints:
// the most a recovery verifies beyond the segment it starts in.
const checkpointBytes = 8 << 20

// ckptState is a partition's side of checkpointing, guarded by p.wmu.
type ckptState struct {
	at     int64       // p.w.pos when the last checkpoint was asked for
	base   int64       // p.w.base then
	queued atomic.Bool // waiting in the Log's checkpointer
}

// countFromCheckpoint starts counting the bytes toward the next checkpoint
// from the one partition.meta holds, as a writer finds the tail: writers
// that each append a little and go still add up to one.
func (p *partition) countFromCheckpoint() {
	if cp, ok := p.shm.checkpoint(); ok {
		p.ckpt.base, p.ckpt.at = cp.base, cp.pos
		return
	}
	p.ckpt.base, p.ckpt.at = -1, 0 // none: take one soon
}

// noteAppended asks for a checkpoint when the partition has grown enough
// since the last one, or rolled. The caller holds p.wmu, after an append.
func (p *partition) noteAppended() {
	if p.w.base == p.ckpt.base && p.w.pos-p.ckpt.at < checkpointBytes {
		return
	}
	p.ckpt.base, p.ckpt.at = p.w.base, p.w.pos
	if p.ckpt.queued.CompareAndSwap(false, true) {
		p.log.ckpts.request(p)
	}
}

// checkpointer runs a Log's checkpoints in the background.
type checkpointer struct {
	mu       sync.Mutex
	queue    []*partition
	wake     chan struct{}
	done     chan struct{}
	started  bool
	stopping bool
}

// checkpointLockWait bounds how long a checkpoint waits for the writer
// lock, and for this Log's append mutex: a checkpoint not taken now is
// taken at the next one's turn.
const checkpointLockWait = time.Second

func (c *checkpointer) request(p *partition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		p.ckpt.queued.Store(false)
		return
	}
	if !c.started {
		c.wake, c.done = make(chan struct{}, 1), make(chan struct{})
		c.started = true
		go c.run()
	}
	c.queue = append(c.queue, p)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			if len(c.queue) == 0 || c.stopping {
				stopping := c.stopping
				c.mu.Unlock()
				if stopping {
					return
				}
				break
			}
			p := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			p.ckpt.queued.Store(false)
			if err := p.takeCheckpoint(); err != nil && !errors.Is(err, ErrClosed) {
				p.log.opts.Logger.Warn("runnel: checkpoint failed", "partition", p.dir, "err", err)
			}
		}
	}
}

// stop ends the checkpointer after the checkpoint in progress, if any:
// one that synced what it covers is worth recording. Those still queued
// are dropped; the next writer's count takes them up.
func (c *checkpointer) stop() {
	c.mu.Lock()
	c.stopping = true
	started := c.started
	c.queue = nil
	if started {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	if started {
		<-c.done
	}
}

// takeCheckpoint records a checkpoint at this Log's view of the tail:
// it syncs the segments written since the current checkpoint (outside
// any lock), then records it under the writer lock. What it reads of
// partition.meta it reads under p.wmu: a topic deleted meanwhile closes
// the partition, which unmaps it under p.wmu.
func (p *partition) takeCheckpoint() error {
	// Bounded as the wait for the writer lock below is: this Log's writer
	// holds p.wmu while it waits for another process's writer lock (which
	// a process stopped with Ctrl-Z or SIGSTOP keeps), and the checkpoints
	// of every other partition wait behind this one.
	wctx, cancel := context.WithTimeout(context.Background(), checkpointLockWait)
	err := p.lockWmuContext(wctx)
	cancel()
	if err != nil {
		return err
	}
	if p.w == nil || p.shm == nil {
		p.wmu.Unlock()
		return nil
	}
	target := checkpoint{boot: currentBootID, base: p.w.base, pos: p.w.pos, next: p.w.next}
	first := p.checkpointSegment()
	// The appends' own syncs usually got there first (the durable point
	// of this boot covers the target): then the log needs none, and the
	// checkpoint's fdatasync does not queue behind theirs on the file.
	d, ok := p.shm.durableNext()
	logSynced := ok && d >= target.next
	done, ok := p.useFiles() // p.shm stays mapped until the checkpoint is recorded
	p.wmu.Unlock()
	if !ok {
		return nil
	}
	defer done()
	if err := syncSegments(p.dir, first, target.base, !logSynced); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkpointLockWait)
	defer cancel()
	unlock, err := p.lockForCheckpoint(ctx)
	if err != nil {
		return err
	}
	recorded, err := p.recordCheckpoint(target)
	unlock()
	if err != nil || !recorded {
		return err
	}
	return p.shm.syncCheckpoint()
}

// checkpointSegment returns the base of the segment the current checkpoint
// is in: the first a new checkpoint must sync. Without one, every segment.
// The caller holds p.wmu.
func (p *partition) checkpointSegment() int64 {
	if cur, ok := p.shm.checkpoint(); ok {
		return cur.base
	}
	return 0
}

// syncUpTo makes the segments from the current checkpoint's to target's
// durable, with their indexes and their directory entries. The caller
// holds p.wmu.
func (p *partition) syncUpTo(target checkpoint) error {
	return syncSegments(p.dir, p.checkpointSegment(), target.base, true)
}

// syncSegments fdatasyncs the segments of partition directory dir whose
// bases are in [first, last], their index files (and with logs their log
// files), then the directory: what a checkpoint at segment last vouches
// for. The index entries before the checkpoint are synced too, so that
// recovery need only check those after it.
func syncSegments(dir string, first, last int64, logs bool) error {
	bases, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, b := range bases {
		if b < first || b > last {
			continue
		}
		for _, ext := range []string{logExt, indexExt, timeIndexExt} {
			if ext == logExt && !logs {
				continue
			}
			if err := syncFile(segmentPath(dir, b, ext)); err != nil {
				return err
			}
		}
	}
	// The directory too: the segment files must be found after a crash.
	return syncDir(dir)
}

// syncFile fdatasyncs the file at path, if it is there. Retention may
// remove it while the sync runs: the removed file's space is freed when
// the sync returns and closes it, not before.
func syncFile(path string) error {
	f, err := openRegularRead(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed by retention meanwhile
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if testHookSyncFile != nil {
		testHookSyncFile(path)
	}
	return fdatasync(int(f.Fd()))
}

// testHookSyncFile, if set, runs as syncFile has path open.
var testHookSyncFile func(path string)

// recordCheckpoint writes target into partition.meta as the checkpoint if
// it is ahead of the one there and its segment is still there; the caller
// syncs partition.meta then (syncCheckpoint). The caller holds the writer
// lock and synced what target covers.
func (p *partition) recordCheckpoint(target checkpoint) (bool, error) {
	cur, ok := p.shm.checkpoint()
	if ok && cur.boot == target.boot && (cur.base > target.base || cur.base == target.base && cur.pos >= target.pos) {
		return false, nil
	}
	if !ok || cur.boot != target.boot {
		// The checkpoint there was not written in this boot (or is
		// damaged): only recovery may replace it, having verified.
		return false, nil
	}
	if _, err := os.Stat(segmentPath(p.dir, target.base, logExt)); err != nil {
		return false, nil // retention removed it; the next checkpoint will do
	}
	return true, p.shm.setCheckpointBytes(target)
}
