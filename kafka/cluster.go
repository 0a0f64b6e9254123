package kafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-log/runnel/internal/flockwait"
	"github.com/runnel-log/runnel/internal/regfile"
)

// The server's own state in the log directory, under kafka/:
//
//	kafka/cluster.id     the cluster id, made once: 22 characters of
//	                     URL-safe base64 of 16 random bytes, as Kafka's
//	kafka/producer-ids   the next free idempotent producer id; servers
//	                     take blocks of pidBlock ids under a flock, so
//	                     two servers on one directory (or one restarted)
//	                     never hand out the same id
const (
	stateDir      = "kafka"
	clusterIDFile = "cluster.id"
	pidFile       = "producer-ids"
	pidBlock      = 1000
)

// loadClusterID returns the directory's cluster id, creating it on first
// use. Two servers creating it at once agree: the id is linked into place,
// which fails for the second, which then reads the first's.
func loadClusterID(dir string) (string, error) {
	sdir := filepath.Join(dir, stateDir)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return "", fmt.Errorf("kafka: %w", err)
	}
	path := filepath.Join(sdir, clusterIDFile)
	if id, err := readClusterID(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	tmp, err := os.CreateTemp(sdir, ".cluster-id-*")
	if err != nil {
		return "", fmt.Errorf("kafka: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("kafka: write cluster id: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("kafka: write cluster id: %w", err)
	}
	if err := regfile.SyncDir(sdir); err != nil {
		return "", fmt.Errorf("kafka: %w", err)
	}
	return readClusterID(path)
}

// maxClusterIDFile bounds what is read of the cluster id's file: the id
// is 22 characters and a newline, and no damage may decide the allocation.
const maxClusterIDFile = 64

func readClusterID(path string) (string, error) {
	f, err := regfile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxClusterIDFile+1))
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) != 16 || len(data) > maxClusterIDFile {
		return "", fmt.Errorf("kafka: %s holds %.64q, not a cluster id", path, id)
	}
	return id, nil
}

// pidAllocator hands out idempotent producer ids from blocks reserved in
// kafka/producer-ids.
type pidAllocator struct {
	path string
	// turn is the allocator's mutex, a channel so that a request waiting
	// behind a reservation gives up with its ctx too.
	turn chan struct{}
	next int64
	end  int64 // next == end: reserve a new block
}

func newPIDAllocator(dir string) *pidAllocator {
	return &pidAllocator{path: filepath.Join(dir, stateDir, pidFile), turn: make(chan struct{}, 1)}
}

// pidReserveWait bounds how long an InitProducerId waits for a block of
// ids: the reservation is a write and an fsync of a small file, and a
// wait past that is for another server stopped (Ctrl-Z, SIGSTOP) or hung
// inside its own. It is well below the clients' request timeouts (30 s
// in Java's and KafkaJS's, franz-go's), so that they get an answer to
// retry rather than time out.
var pidReserveWait = 5 * time.Second

// allocate returns a producer id no server on this directory gave out
// before. It waits for another server's reservation at most until ctx
// ends, returning an error that wraps ctx's.
func (a *pidAllocator) allocate(ctx context.Context) (int64, error) {
	select {
	case a.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("kafka: producer ids: %w", ctx.Err())
	}
	defer func() { <-a.turn }()
	if a.next == a.end {
		start, err := a.reserve(ctx)
		if err != nil {
			return 0, err
		}
		a.next, a.end = start, start+pidBlock
	}
	id := a.next
	a.next++
	return id, nil
}

// testHookReserving, if set (by a test's child process), is called once
// a reservation holds the file's lock.
var testHookReserving func()

// reserve moves the file's counter on by a block, under an exclusive
// flock, durably, and returns the block's first id.
func (a *pidAllocator) reserve(ctx context.Context) (int64, error) {
	f, err := regfile.Open(a.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("kafka: producer ids: %w", err)
	}
	defer f.Close()
	// A flock, not a byte-range lock, since an older server on the
	// directory takes a flock; waited for only while ctx lasts.
	if err := flockwait.Lock(ctx, int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("kafka: lock %s: %w", a.path, err)
	}
	if testHookReserving != nil {
		testHookReserving()
	}
	// One byte past the bound: a longer file is refused, not read as
	// its head (40 digits read as their first 32 gave a counter of
	// ids handed out already).
	buf := make([]byte, maxPIDFile+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("kafka: producer ids: %w", err)
	}
	if n > maxPIDFile {
		return 0, fmt.Errorf("kafka: %s holds more than %d bytes, not a producer id", a.path, maxPIDFile)
	}
	var start int64
	if text := strings.TrimSpace(string(buf[:n])); text != "" {
		if start, err = strconv.ParseInt(text, 10, 64); err != nil || start < 0 || start > math.MaxInt64-pidBlock {
			// (Past the last block, the ids would wrap negative.)
			return 0, fmt.Errorf("kafka: %s holds %.64q, not a producer id with a block of ids after it", a.path, text)
		}
	}
	next := []byte(fmt.Sprintf("%020d\n", start+pidBlock))
	if _, err := f.WriteAt(next, 0); err != nil {
		return 0, fmt.Errorf("kafka: producer ids: %w", err)
	}
	// What was there may have been longer (more leading zeros): its rest
	// after the new counter would make the file unreadable.
	if err := f.Truncate(int64(len(next))); err != nil {
		return 0, fmt.Errorf("kafka: producer ids: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("kafka: producer ids: %w", err)
	}
	return start, nil
}

// maxPIDFile bounds what is read of the producer-id counter's file: the
// counter is 20 digits and a newline.
const maxPIDFile = 64
