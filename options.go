package runnel

import (
	"fmt"
	"log/slog"
	"time"
)

// Durability says when an append is acknowledged.
type Durability int

const (
	// Durable acknowledges a record once it is committed and fdatasync'd:
	// it survives power loss. Concurrent senders share one fdatasync
	// (group commit). This is the default.
	Durable Durability = iota
	// Buffered acknowledges once the record is committed in the page
	// cache: visible to every process and safe from a crash of this
	// process, but lost if the machine loses power before the OS flushes.
	Buffered
	// Periodic acknowledges like Buffered and fdatasyncs each partition
	// written to at least every Options.SyncInterval: a power loss loses
	// at most that window.
	Periodic
)

func (d Durability) String() string {
	switch d {
	case Durable:
		return "durable"
	case Buffered:
		return "buffered"
	case Periodic:
		return "periodic"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure a Log. A nil *Options, and every zero field, means the
// documented default. Open copies the struct; later changes have no effect.
type Options struct {
	// Durability of acknowledged records. Default Durable.
	Durability Durability

	// SyncInterval is the fdatasync period in Periodic mode. Default
	// 100ms; ignored in the other modes. A partition whose writer waits
	// for another process's writer lock (held by a process that is
	// stopped or hung) is synced once the writer has it; the other
	// partitions are synced meanwhile.
	SyncInterval time.Duration

	// Backend selects the append path: BackendAuto (default: the backend
	// that measured faster for the Log's durability mode, pwrite for both
	// today — see the README's table), BackendIOURing (a frame and its
	// commit byte as one linked chain in one io_uring_enter, fdatasync as
	// an io_uring operation; Open fails where io_uring is unavailable) or
	// BackendPwrite. Log.Stats reports the active one.
	Backend string

	// MaxRecordBytes caps one encoded record (key, value, headers).
	// Default 1 MiB; at most 16 MiB. Larger records get ErrTooLarge.
	MaxRecordBytes int

	// MaxBatchBytes caps the frame that records queued while a write is
	// in flight are gathered into. Default 1 MiB. A record larger than
	// this still goes out, alone in its frame, and so does a batch
	// (SendBatch, SendRecordBatch), which only MaxFrameBytes bounds.
	//
	// For a SendAsync stream from one goroutine this bounds how far the
	// sender runs ahead of the writer: it blocks once the pending frame
	// is full while the last one is being written. What a streamed record
	// costs beyond that is its encoding and checksum into the frame and,
	// if it has a callback, one slot in a slice that batches reuse; a
	// keyless record to a one-partition topic skips the partitioner.
	//
	// In Durable mode it also bounds how far the writes run ahead of the
	// fdatasyncs: while four times this much is written and not yet
	// synced, the next frame waits for the sync stage (and so, once the
	// pending frame is full, does a streaming sender), which keeps the
	// records waiting for durability, and their callbacks, bounded.
	MaxBatchBytes int

	// Logger receives repairs, recoveries and the chosen backend. Default:
	// discard.
	Logger *slog.Logger

	// RetentionInterval is how often the Log enforces the retention limits
	// of the topics it has open (see TopicConfig.RetentionAge) and
	// re-reads their config from disk, letting go of those other
	// processes deleted. Default 1 minute; negative turns the background
	// check off, leaving rolls and EnforceRetention. The check waits at
	// most one interval for a partition's writer lock that another
	// process keeps (stopped with Ctrl-Z or SIGSTOP, or hung), and leaves
	// that partition to the next check.
	RetentionInterval time.Duration

	// MaxOpenFiles bounds the file descriptors the Log keeps open for its
	// partitions' files (see "Open files" in the package documentation). A
	// partition this Log appends to holds five (its active segment, its two
	// index files, and two of partition.meta); when more partitions would be
	// open than three quarters of the budget allows, the one appended to
	// least recently closes its files, and its next append opens them again.
	// A partition in use keeps its files, and so, in Periodic mode, does one
	// whose unsynced records wait for a sync lock another process holds
	// (stopped in its fdatasync, say): another partition is released
	// instead, or, if none can be, the Log stays over the budget until a
	// later append or sweep releases one. The Send that needs the room never
	// waits for another process, and no Periodic partition closes its files
	// unsynced.
	// Readers share the other quarter: a cache of segment files, least
	// recently read closed first, and any not read for 10 to 20 seconds
	// closed anyway. Default: half of the process's RLIMIT_NOFILE soft limit
	// as it is at Open (Go raises the soft limit to the hard one when a
	// program starts), at least 64. The least accepted is 16.
	MaxOpenFiles int
}

const (
	defaultSyncInterval   = 100 * time.Millisecond
	defaultMaxRecordBytes = 1 << 20
	maxMaxRecordBytes     = 16 << 20
	defaultMaxBatchBytes  = 1 << 20

	defaultRetentionInterval = time.Minute
)

// withDefaults validates o and returns a copy with every default filled in.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	switch {
	case c.Durability < Durable || c.Durability > Periodic:
		return c, fmt.Errorf("%w: durability %d", ErrInvalidArgument, int(c.Durability))
	case c.SyncInterval < 0:
		return c, fmt.Errorf("%w: negative sync interval", ErrInvalidArgument)
	case c.Backend != BackendAuto && c.Backend != BackendIOURing && c.Backend != BackendPwrite:
		return c, fmt.Errorf("%w: backend %q (want %q, %q or empty)", ErrInvalidArgument, c.Backend, BackendIOURing, BackendPwrite)
	case c.MaxRecordBytes < 0 || c.MaxRecordBytes > maxMaxRecordBytes:
		return c, fmt.Errorf("%w: max record bytes %d outside [0, %d]", ErrInvalidArgument, c.MaxRecordBytes, maxMaxRecordBytes)
	case c.MaxOpenFiles != 0 && c.MaxOpenFiles < minMaxOpenFiles:
		return c, fmt.Errorf("%w: max open files %d (want 0 for the default, or at least %d)", ErrInvalidArgument, c.MaxOpenFiles, minMaxOpenFiles)
	case c.MaxBatchBytes < 0 || c.MaxBatchBytes > maxMaxRecordBytes:
		return c, fmt.Errorf("%w: max batch bytes %d outside [0, %d]", ErrInvalidArgument, c.MaxBatchBytes, maxMaxRecordBytes)
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = defaultSyncInterval
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = defaultMaxRecordBytes
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = defaultMaxBatchBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = defaultRetentionInterval
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = defaultMaxOpenFiles()
	}
	return c, nil
}
